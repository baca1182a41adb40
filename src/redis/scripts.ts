import type { Redis } from 'ioredis';

/**
 * The one way Crier runs Lua: every script is declared once here with a name
 * (defineScript) and registered on each connection that uses it with ioredis
 * `defineCommand`, which runs it by SHA (EVALSHA) and loads it again after a
 * Redis restart or SCRIPT FLUSH.
 */
export interface LuaScript {
  readonly name: string;
  readonly lua: string;
}

const declared = new Map<string, LuaScript>();

export function defineScript(name: string, lua: string): LuaScript {
  const earlier = declared.get(name);
  if (earlier && earlier.lua !== lua) throw new Error(`two different Lua scripts are named "${name}"`);
  const script = earlier ?? { name, lua };
  declared.set(name, script);
  return script;
}

type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown>;
type Commands = Record<string, ScriptCommand | undefined>;

const commandName = (script: LuaScript): string => `crier_${script.name}`;

/**
 * Registers every script declared so far on a new connection, before its first command (connectRedis
 * does this): the modules that declare scripts are imported by then.
 */
export function registerScripts(redis: Redis): void {
  const commands = redis as unknown as Commands;
  for (const script of declared.values()) {
    if (typeof commands[commandName(script)] !== 'function') redis.defineCommand(commandName(script), { lua: script.lua });
  }
}

/**
 * A script this connection lacks (declared after it was made, or a connection made elsewhere) is registered
 * now; an auto-pipelined connection copies its commands into each pipeline when the pipeline is made, so an
 * open pipeline would not know it: on this connection it is sent outside auto-pipelining.
 */
function registerLate(redis: Redis, script: LuaScript): void {
  redis.defineCommand(commandName(script), { lua: script.lua });
  redis.options.autoPipeliningIgnoredCommands = [...(redis.options.autoPipeliningIgnoredCommands ?? []), commandName(script)];
}

export async function runScript<T = unknown>(redis: Redis, script: LuaScript, keys: string[], args: Array<string | number>): Promise<T> {
  const commands = redis as unknown as Commands;
  if (typeof commands[commandName(script)] !== 'function') registerLate(redis, script);
  return (await (commands[commandName(script)] as ScriptCommand).call(redis, keys.length, ...keys, ...args)) as T;
}
