import type { RedisOptions as QueueConnection } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { DependencyError } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureEmbeddedRedis, type EmbeddedRedis } from './embedded.js';
import { registerScripts } from './scripts.js';

/**
 * How every part of Crier reaches Redis: REDIS_URL when given, else the
 * embedded redis-server in the data dir (started by whichever Crier process
 * needs it first, shared by the rest).
 */
export interface RedisHandle {
  /** Options for new connections; BullMQ queues and workers make their own from these. */
  options: RedisOptions & QueueConnection;
  /** A general-purpose connection for domain reads and writes. */
  redis: Redis;
  prefix: string;
  /** Opens another connection (blocking readers, subscribers). */
  duplicate(extra?: RedisOptions): Redis;
  close(): Promise<void>;
}

interface Endpoint {
  host?: string;
  port?: number;
  path?: string;
  username?: string;
  password?: string;
  db?: number;
  tls?: object;
}

function optionsFromUrl(url: string): Endpoint {
  const u = new URL(url);
  const opts: Endpoint = {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
  };
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  const db = u.pathname.replace('/', '');
  if (db) opts.db = Number(db);
  if (u.protocol === 'rediss:') opts.tls = {};
  return opts;
}

/** Capped backoff, forever: 200 ms, 400 ms … then every 5 s. */
export function reconnectDelay(times: number): number {
  return Math.min(times * 200, 5000);
}

async function ping(redis: Redis, where: string): Promise<void> {
  try {
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    const msg = err instanceof Error ? err.message : String(err);
    throw new DependencyError(`cannot reach Redis at ${where}: ${msg}`);
  }
}

export async function connectRedis(config: Config, log: Logger): Promise<RedisHandle> {
  let embedded: EmbeddedRedis | undefined;
  let base: Endpoint;
  let where: string;
  if (config.redisUrl) {
    base = optionsFromUrl(config.redisUrl);
    where = `${base.host}:${base.port}`;
  } else {
    embedded = await ensureEmbeddedRedis(config.dataDir, log);
    base = { path: embedded.socketPath };
    where = embedded.socketPath;
  }
  const options: RedisOptions & QueueConnection = {
    ...base,
    // BullMQ workers need this; harmless elsewhere.
    maxRetriesPerRequest: null,
    connectionName: `crier:${process.pid}`,
    // A long-lived connection never gives up: an outage of any length ends when Redis is back.
    retryStrategy: reconnectDelay,
  };
  // The first connection fails fast (a CLI command exits 2 at once); once up, it reconnects like the rest.
  let up = false;
  const redis = new Redis({ ...options, lazyConnect: true, enableAutoPipelining: true, retryStrategy: (times) => (up ? reconnectDelay(times) : null) });
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  registerScripts(redis);
  try {
    await redis.connect();
  } catch {
    // ping() below produces the user-facing error
  }
  await ping(redis, where);
  up = true;
  const extra: Redis[] = [];
  return {
    options,
    redis,
    prefix: config.redis_prefix,
    duplicate(more?: RedisOptions) {
      const r = new Redis({ ...options, ...more });
      registerScripts(r);
      r.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
      extra.push(r);
      return r;
    },
    async close() {
      await Promise.all(extra.map((r) => r.quit().catch(() => r.disconnect())));
      if (embedded) await embedded.release(redis);
      else await redis.quit().catch(() => redis.disconnect());
    },
  };
}
