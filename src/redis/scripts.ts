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

const registering = new WeakMap<Redis, Promise<void>>();

/**
 * Registers every script declared so far that this connection lacks. An auto-pipelined
 * connection copies its commands into each pipeline when the pipeline is made, so after
 * registering we wait for the pipeline of this tick to go before using the new commands.
 */
function register(redis: Redis): Promise<void> {
  const commands = redis as unknown as Commands;
  for (const script of declared.values()) {
    if (typeof commands[commandName(script)] !== 'function') redis.defineCommand(commandName(script), { lua: script.lua });
  }
  const settled = new Promise<void>((resolve) => setImmediate(resolve));
  registering.set(redis, settled);
  return settled;
}

export async function runScript<T = unknown>(redis: Redis, script: LuaScript, keys: string[], args: Array<string | number>): Promise<T> {
  const commands = redis as unknown as Commands;
  if (typeof commands[commandName(script)] !== 'function') await register(redis);
  else await registering.get(redis);
  return (await (commands[commandName(script)] as ScriptCommand).call(redis, keys.length, ...keys, ...args)) as T;
}
