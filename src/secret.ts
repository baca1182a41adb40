import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withOverrides, type Config } from './config.js';
import type { Logger } from './log.js';

/**
 * CRIER_SECRET signs unsubscribe links and webhooks. A newcomer need not set
 * one: a random secret is made once in the data dir and reused, so links stay
 * valid across restarts.
 */
export function ensureSecret(config: Config, log: Logger): Config {
  if (config.secret) return config;
  const file = path.join(config.dataDir, 'secret');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
      log.info({ file }, 'generated a signing secret (set CRIER_SECRET to choose your own)');
    } catch (err) {
      // another Crier process made it first: use theirs
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return withOverrides(config, { secret: readFileSync(file, 'utf8').trim() });
}
