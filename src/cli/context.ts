import { loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { connectRedis, type RedisHandle } from '../redis/connection.js';
import { ensureSecret } from '../secret.js';
import { writeLine } from './output.js';

/** What a CLI command gets: the frozen config, a logger, Redis. */
export interface CliContext {
  config: Config;
  log: Logger;
  redis: RedisHandle;
  /** Prints a line for the user (stdout). */
  out(line: string): void;
}

/** Loads config, connects Redis, runs `fn`, always closes. Errors propagate to main's handler. */
export async function withContext<T>(fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const loaded = loadConfig();
  const log = createLogger(loaded.logLevel === 'info' ? 'warn' : loaded.logLevel);
  const redis = await connectRedis(loaded, log);
  try {
    const config = await ensureSecret(loaded, redis, log);
    return await fn({ config, log, redis, out: (line) => void writeLine(line) });
  } finally {
    await redis.close();
  }
}
