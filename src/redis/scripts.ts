import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Runs a Lua script by its SHA (EVALSHA), loading it on first use or after a Redis restart. */
const shas = new Map<string, string>();

export async function runScript<T = unknown>(redis: Redis, script: string, keys: string[], args: (string | number)[]): Promise<T> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return (await redis.evalsha(sha, keys.length, ...keys, ...args)) as T;
  } catch (err) {
    if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
    return (await redis.eval(script, keys.length, ...keys, ...args)) as T;
  }
}
