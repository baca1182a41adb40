import { randomBytes } from 'node:crypto';
import { withOverrides, type Config } from './config.js';
import type { Logger } from './log.js';
import type { RedisHandle } from './redis/connection.js';

/**
 * The secret every per-purpose key is derived from (src/keys.ts): unsubscribe
 * links, webhook signatures, the suppression hash. CRIER_SECRET when set;
 * otherwise one random secret generated once and kept in Redis, so every
 * process on every machine sharing REDIS_URL agrees (a link signed by one
 * worker is accepted by a server anywhere else). Set CRIER_SECRET in
 * production: a secret kept beside the data it protects protects it less.
 */
export async function ensureSecret(config: Config, handle: RedisHandle, log: Logger): Promise<Config> {
  if (config.secret) return config;
  const key = `${handle.prefix}:secret`;
  let secret = await handle.redis.get(key);
  if (!secret) {
    // SET NX: when several processes start at once, the first one's secret is everyone's.
    const made = await handle.redis.set(key, randomBytes(32).toString('hex'), 'NX');
    if (made === 'OK') log.info('generated a secret and kept it in Redis (set CRIER_SECRET to choose your own)');
    secret = await handle.redis.get(key);
  }
  if (!secret) throw new Error(`the secret in Redis (${key}) vanished as it was made`);
  return withOverrides(config, { secret });
}
