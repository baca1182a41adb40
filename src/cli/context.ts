import { loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { connectRedis, type RedisHandle } from '../redis/connection.js';
import { ensureSecret } from '../secret.js';

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
  const config = ensureSecret(loaded, log);
  const redis = await connectRedis(config, log);
  try {
    return await fn({ config, log, redis, out: (line) => process.stdout.write(`${line}\n`) });
  } finally {
    await redis.close();
  }
}
