import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';

export interface TestConfigOptions {
  /** Extra environment (SMTP_URL, TWITTER_API_BASE …). */
  env?: Record<string, string>;
  /** Extra YAML appended to the config file (channels:, purdah: …). */
  yaml?: string;
}

/**
 * A config for one test: the run's private Redis, a unique key prefix (so tests
 * never see each other's keys), a temp data dir, silent logs.
 */
export function testConfig(opts: TestConfigOptions = {}): Config {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crier-test-data-'));
  const prefix = `t${randomBytes(5).toString('hex')}`;
  const file = path.join(dataDir, 'crier.config.yaml');
  writeFileSync(file, `redis_prefix: ${prefix}\n${opts.yaml ?? ''}\n`);
  return loadConfig({
    REDIS_URL: inject('redisUrl'),
    CRIER_DATA_DIR: dataDir,
    CRIER_CONFIG: file,
    CRIER_SECRET: 'test-secret-0123456789abcdef',
    LOG_LEVEL: 'silent',
    ...opts.env,
  });
}

export function silentLogger(): Logger {
  return createLogger('silent');
}
