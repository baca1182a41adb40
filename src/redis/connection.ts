import type { RedisOptions as QueueConnection } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { DependencyError } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureEmbeddedRedis, ping as pingSocket, type EmbeddedRedis } from './embedded.js';
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

export interface ConnectOptions {
  /**
   * Long-running processes (`crier start`, `crier worker`) watch the embedded
   * redis-server and start it again (on its AOF) if it dies; every connection
   * then reconnects by itself. Checked every `superviseMs` (default 1 s);
   * two failed checks in a row count as gone.
   */
  supervise?: boolean;
  superviseMs?: number;
}

export async function connectRedis(config: Config, log: Logger, opts: ConnectOptions = {}): Promise<RedisHandle> {
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
  let supervising: NodeJS.Timeout | undefined;
  // The supervisor's check in progress: close() waits for it, so a server it is starting again is released too.
  let tick: Promise<void> = Promise.resolve();
  if (embedded && opts.supervise) {
    let current = embedded;
    let misses = 0;
    let busy = false;
    supervising = setInterval(() => {
      if (busy) return;
      busy = true;
      tick = (async () => {
        const state = await pingSocket(current.socketPath);
        misses = state === 'down' ? misses + 1 : 0;
        if (misses < 2) return;
        log.warn({ socket: current.socketPath }, 'the embedded redis-server is gone: starting it again on its AOF');
        // Under the start lock: if another Crier process got there first, this one only claims it.
        current = await ensureEmbeddedRedis(config.dataDir, log);
        embedded = current;
        misses = 0;
        log.info({ socket: current.socketPath }, 'embedded redis-server running again');
      })()
        .catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'could not start the embedded redis-server again; will keep trying'))
        .finally(() => {
          busy = false;
        });
    }, opts.superviseMs ?? 1000);
    supervising.unref();
  }
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
      clearInterval(supervising);
      await tick;
      await Promise.all(extra.map((r) => r.quit().catch(() => r.disconnect())));
      if (embedded) await embedded.release(redis);
      else await redis.quit().catch(() => redis.disconnect());
    },
  };
}
