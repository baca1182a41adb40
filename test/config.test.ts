import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { UserError } from '../src/errors.js';

/** Config errors: each one a UserError (exit 1) that names the file, the key and the problem. */

const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-config-test-'));
let n = 0;

function configFile(yaml: string): string {
  const file = path.join(dir, `crier-${++n}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

function loadError(yaml: string | undefined, env: Record<string, string> = {}): UserError {
  const e: Record<string, string> = { CRIER_DATA_DIR: dir, ...env };
  if (yaml !== undefined) e.CRIER_CONFIG = configFile(yaml);
  try {
    loadConfig(e, dir);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const u = err as UserError;
    expect(u.exitCode).toBe(1);
    // Times inside the config are checked by the shared time parser, which reports CRIER_ERR_INPUT.
    expect(['CRIER_ERR_CONFIG', 'CRIER_ERR_INPUT']).toContain(u.code);
    return u;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('accepts a valid file and freezes the result', () => {
    const file = configFile('redis_prefix: ok\ntimezone: America/New_York\nbatch_size: 50\nchannels:\n  email: { concurrency: 3 }\n');
    const c = loadConfig({ CRIER_CONFIG: file, CRIER_DATA_DIR: dir, PORT: '0' }, dir);
    expect(c.redis_prefix).toBe('ok');
    expect(c.timezone).toBe('America/New_York');
    expect(c.batch_size).toBe(50);
    expect(c.port).toBe(0);
    expect(c.channelSettings('email').concurrency).toBe(3);
    expect(c.channelSettings('twitter').concurrency).toBe(10);
    expect(c.outboxDir).toBe(path.join(dir, 'outbox'));
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads ./crier.config.yaml when CRIER_CONFIG is unset', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'crier-config-cwd-'));
    writeFileSync(path.join(cwd, 'crier.config.yaml'), 'redis_prefix: fromcwd\n');
    expect(loadConfig({}, cwd).redis_prefix).toBe('fromcwd');
  });

  it('invalid YAML: names the file and the line', () => {
    const err = loadError('redis_prefix: ok\ntimezone: Europe/London\nchannels:\n  email: { concurrency: 3\nbatch_size: 5\n');
    expect(err.where.file).toMatch(/crier-\d+\.yaml$/);
    expect(err.where.line).toBeGreaterThanOrEqual(4);
    expect(err.where.line).toBeLessThanOrEqual(5);
    expect(err.message).toMatch(/^.*crier-\d+\.yaml:\d+: not valid YAML/);
    expect(err.message).not.toMatch(/:\s*$/);
  });

  it('unknown key: names the key itself', () => {
    const err = loadError('redis_prefix: ok\nbatchsize: 10\n');
    expect(err.where.field).toBe('batchsize');
    expect(err.message).toContain('field "batchsize"');
    expect(err.message).toContain('unknown key');
  });

  it('unknown nested key: names the full path', () => {
    const err = loadError('channels:\n  email:\n    concurency: 3\n');
    expect(err.where.field).toBe('channels.email.concurency');
  });

  it('wrong type: names the key and what was expected', () => {
    const err = loadError('batch_size: lots\n');
    expect(err.where.field).toBe('batch_size');
    expect(err.message).toMatch(/expected number/);
    const err2 = loadError('approval:\n  kinds: [newsletter, bulletin]\n');
    expect(err2.where.field).toBe('approval.kinds.1');
  });

  it('bad time zone: names timezone', () => {
    const err = loadError('timezone: Europe/Atlantis\n');
    expect(err.where.field).toBe('timezone');
    expect(err.message).toContain('Europe/Atlantis');
  });

  it('bad purdah window: end before start, bad time, DST gap', () => {
    const backwards = loadError('purdah:\n  - { from: 2027-05-01 00:00, to: 2027-04-01 00:00 }\n');
    expect(backwards.where.field).toBe('purdah.0.to');
    expect(backwards.message).toContain('after');
    const notATime = loadError('purdah:\n  - { from: 2027-04-01 00:00, to: 2027-05-01 00:00 }\n  - { from: "next week", to: 2027-05-01 00:00 }\n');
    expect(notATime.where.field).toBe('purdah.1.from');
    const gap = loadError('purdah:\n  - { from: 2027-03-28 01:30, to: 2027-05-01 00:00 }\n');
    expect(gap.where.field).toBe('purdah.0.from');
    expect(gap.message).toContain('does not exist');
  });

  it('bad environment: PORT=abc names PORT; a short CRIER_SECRET names it too', () => {
    const port = loadError(undefined, { PORT: 'abc' });
    expect(port.where).toMatchObject({ file: 'environment', field: 'PORT' });
    expect(port.message).toContain('PORT');
    const secret = loadError(undefined, { CRIER_SECRET: 'short' });
    expect(secret.where.field).toBe('CRIER_SECRET');
    expect(secret.message).toContain('16');
    const url = loadError(undefined, { REDIS_URL: 'not a url' });
    expect(url.where.field).toBe('REDIS_URL');
  });

  it('a configuration file that cannot be read', () => {
    const err = loadError(undefined, { CRIER_CONFIG: path.join(dir, 'missing.yaml') });
    expect(err.where.file).toBe(path.join(dir, 'missing.yaml'));
    expect(err.message).toContain('cannot read');
  });
});
