import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emailHash, getRecipients, importSubscribers, isSuppressed, subscriberId, suppressionHash } from '../src/domain/audience.js';
import { deriveKey } from '../src/keys.js';
import { connectRedis } from '../src/redis/connection.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { londonIn } from './helpers/crier.js';
import { CLI_JS } from './helpers/dist.js';
import { killEmbeddedAndRemove, shortTempDir } from './helpers/embedded-child.js';

/**
 * Erasure is complete: after `crier subscribers forget`, no file in the data
 * dir holds the address — not the rejects file, not a preview, not an outbox
 * message, not the embedded Redis's append-only file — and the suppression
 * list keeps only a keyed hash. Real CLI processes on the embedded Redis.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) killEmbeddedAndRemove(d);
});

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dir` whose bytes contain `needle` (case-insensitive). */
function holding(dir: string, needle: string): string[] {
  return filesUnder(dir).filter((f) => statSync(f).size < 50_000_000 && readFileSync(f, 'latin1').toLowerCase().includes(needle));
}

const ZED = 'zed.personal@example.org';

describe('crier subscribers forget', () => {
  it('leaves the address in no file of the data dir: rejects, previews, outbox and the embedded AOF', async () => {
    // The team's files (CSV, campaign) in `work`, Crier's data dir beside them.
    const work = shortTempDir();
    const dir = path.join(work, 'd');
    dirs.push(dir, work);
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, CRIER_DATA_DIR: dir, CRIER_SECRET: 'erasure-test-secret-0123456789', LOG_LEVEL: 'warn' };
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [CLI_JS, ...args], { cwd: work, env, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    // Zed twice: once imported, once rejected (a name over 200 characters), so the rejects file holds the address too.
    writeFileSync(path.join(work, 'subs.csv'), `email,name,area,topics,phone\nZed.Personal@Example.org,Zebedee,Rugby,,07911 123456\nkim@example.org,Kim,Rugby,,07911 123457\n${ZED},${'Z'.repeat(201)},,,\n`);
    expect(cli('subscribers', 'import', 'subs.csv', '--list', 'news')).toMatch(/imported 2, updated 0, rejected 1/);
    expect(holding(path.join(dir, 'rejects'), ZED)).toHaveLength(1);

    writeFileSync(path.join(work, 'news.yaml'), `title: News\nkind: newsletter\nsend_at: ${londonIn(10_000)}\nchannels:\n  email: { list: news, subject: "News for {{name}}", body: "Hello {{name}}." }\n  sms: { list: news, text: "News is out." }\n`);
    const id = cli('campaign', 'create', 'news.yaml').trim().split('\n').at(-1)!;
    // A worker sends it (dry run: one .eml per subscriber in the outbox), then stops.
    const worker = spawn(process.execPath, [CLI_JS, 'worker'], { cwd: work, env, stdio: 'ignore' });
    const outbox = path.join(dir, 'outbox');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(outbox) && readdirSync(outbox).filter((f) => f.endsWith('.eml') || f.includes('-sms-')).length === 4)) {
      if (Date.now() > deadline) throw new Error('the newsletter was not sent');
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.kill('SIGTERM');
    });
    cli('campaign', 'preview', id);
    expect(holding(path.join(dir, 'preview'), ZED)).toHaveLength(1);
    expect(holding(outbox, ZED)).toHaveLength(1);
    // The dry-run text holds the phone number only (no address).
    expect(holding(outbox, '+447911123456')).toHaveLength(1);
    expect(holding(path.join(dir, 'redis'), ZED).length).toBeGreaterThan(0);

    const out = cli('subscribers', 'forget', ZED).trim().split('\n');
    expect(out).toEqual([
      'removed from 5 files (1 rejects, 4 previews and outbox)',
      'rewrote the embedded Redis append-only file: old entries are gone from disk',
      `forgotten ${ZED}`,
    ]);
    // Nothing in the data dir holds the address or the name any more; Kim's data is untouched.
    expect(holding(dir, ZED)).toEqual([]);
    expect(holding(dir, 'zebedee')).toEqual([]);
    expect(holding(dir, '+447911123456')).toEqual([]);
    expect(holding(outbox, '+447911123457')).toHaveLength(1);
    expect(holding(outbox, 'kim@example.org')).toHaveLength(1);
    expect(holding(path.join(dir, 'redis'), 'kim@example.org').length).toBeGreaterThan(0);
    expect(existsSync(path.join(dir, 'rejects'))).toBe(true);
    // The rejects file is gone (its only row was Zed's) or kept without it.
    expect(holding(path.join(dir, 'rejects'), ZED)).toEqual([]);
    // Still suppressed: a re-import does not bring Zed back.
    expect(cli('subscribers', 'import', 'subs.csv', '--list', 'news')).toMatch(/imported 0, updated 1, rejected 1, suppressed 1/);
  }, 180_000);
});

describe('the suppression hash is keyed', () => {
  it('entries are HMACs under the derived key; unkeyed entries from older versions are still honoured and replaced on import', async () => {
    const config = testConfig();
    const handle = await connectRedis(config, silentLogger());
    try {
      const { redis, prefix } = handle;
      const key = deriveKey(config.secret, 'suppression');
      expect(suppressionHash(ZED, key)).not.toBe(emailHash(ZED));
      expect(suppressionHash(ZED, key)).toMatch(/^[0-9a-f]{64}$/);
      // An entry written by an older version: the plain sha256.
      await redis.sadd(`${prefix}:suppressed`, emailHash('old@example.org'));
      expect(await isSuppressed(redis, prefix, 'old@example.org', key)).toBe(true);
      const csv = path.join(config.dataDir, 'old.csv');
      writeFileSync(csv, 'email,name,area,topics\nold@example.org,Old,,\nnew@example.org,New,,\n');
      const r = await importSubscribers(redis, prefix, csv, 'list', { rejectsDir: config.dataDir, suppressionKey: key });
      expect(r).toMatchObject({ imported: 1, suppressed: 1 });
      expect(await redis.smembers(`${prefix}:suppressed`)).toEqual([suppressionHash('old@example.org', key)]);
      expect(await getRecipients(redis, prefix, [subscriberId('new@example.org')], key)).toHaveLength(1);
    } finally {
      await handle.close();
    }
  });
});
