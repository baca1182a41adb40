import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { startFakeXApi, twitterEnv, type FakeXApi } from './fakes/x-api.js';
import { testConfig } from './helpers/context.js';
import { londonIn } from './helpers/crier.js';
import { CLI_JS } from './helpers/dist.js';
import { freePort } from './helpers/redis-server.js';

/**
 * Any worker on any machine: two Crier processes with different data dirs and
 * working directories share only REDIS_URL (and the same config file, as two
 * machines would). Images are stored with the campaign when it is created, so
 * the worker that posts never needs the file; the secret lives in Redis, so an
 * unsubscribe link signed by one process is accepted by the other.
 */

// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const creds = { appKey: 'm-app-key', appSecret: 'm-app-secret', accessToken: 'm-access-token', accessSecret: 'm-access-secret' };

interface Machine {
  dir: string;
  env: NodeJS.ProcessEnv;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
let fake: FakeXApi | undefined;

afterAll(async () => {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
  await fake?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function machine(configYaml: string, env: Record<string, string>): Machine {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-machine-'));
  dirs.push(dir);
  // The config file is found in the working directory (crier.config.yaml); the data dir is ./data there.
  writeFileSync(path.join(dir, 'crier.config.yaml'), configYaml);
  return { dir, env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'info', ...env } };
}

function cli(m: Machine, args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI_JS, ...args], { cwd: m.dir, env: m.env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts `crier <args>` in the machine's directory; resolves once it says it is running. */
async function daemon(m: Machine, args: string[]): Promise<{ lines: string[] }> {
  const child = spawn(process.execPath, [CLI_JS, ...args], { cwd: m.dir, env: m.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crier ${args.join(' ')} did not start:\n${lines.join('\n')}`)), 30_000);
    const onLine = (line: string) => {
      lines.push(line);
      if (/is running/.test(line)) {
        clearTimeout(timer);
        resolve();
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`crier ${args.join(' ')} exited (${code}):\n${lines.join('\n')}`)));
  });
  return { lines };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('two machines sharing only REDIS_URL', () => {
  it('posts an image whose file is gone after create, and a link signed on one machine unsubscribes on the other', async () => {
    fake = await startFakeXApi({ credentials: creds });
    const config = `redis_prefix: m${randomBytes(5).toString('hex')}\n`;
    const port = await freePort();
    const shared = { PUBLIC_URL: `http://127.0.0.1:${port}`, ...twitterEnv(fake.url, creds), NODE_EXTRA_CA_CERTS: fake.certFile };
    const a = machine(config, shared);
    const b = machine(config, { ...shared, PORT: String(port), HOST: '127.0.0.1' });

    writeFileSync(path.join(a.dir, 'news.csv'), 'email,name,area,topics\nreader@example.org,Reader,,\n');
    expect(cli(a, ['subscribers', 'import', 'news.csv', '--list', 'news']).out).toMatch(/imported 1/);
    writeFileSync(path.join(a.dir, 'pic.png'), PNG);
    // send_at is set just before each create, far enough ahead for a slow CLI start.
    const at = () => londonIn(10_000);
    writeFileSync(
      path.join(a.dir, 'social.yaml'),
      `title: Poster\nkind: social\nsend_at: ${at()}\nchannels:\n  twitter: { text: "New poster", images: [{ file: pic.png, alt: "Poster: safer streets week" }] }\n`,
    );
    const created = cli(a, ['campaign', 'create', 'social.yaml']);
    expect(created.code, created.err).toBe(0);
    const socialId = created.out.trim().split('\n').at(-1)!;
    writeFileSync(path.join(a.dir, 'news.yaml'), `title: News\nkind: newsletter\nsend_at: ${at()}\nchannels:\n  email: { list: news, subject: "News", body: "Hello." }\n`);
    const news = cli(a, ['campaign', 'create', 'news.yaml']);
    expect(news.code, news.err).toBe(0);
    const newsId = news.out.trim().split('\n').at(-1)!;
    unlinkSync(path.join(a.dir, 'pic.png'));

    // Machine A plans both campaigns and sends the email (dry run: an .eml in its outbox); it cannot post to X.
    await daemon(a, ['worker', '--queues', 'campaigns,deliver-email']);
    const outboxA = path.join(a.dir, 'data', 'outbox');
    const eml = await until('the newsletter .eml on machine A', () => {
      const f = existsSync(outboxA) ? readdirSync(outboxA).find((x) => x.endsWith('.eml')) : undefined;
      return f ? readFileSync(path.join(outboxA, f), 'utf8') : undefined;
    });
    const show = (id: string) => JSON.parse(cli(a, ['campaign', 'show', id, '--json']).out) as { status: string; channels: Record<string, { sent: number; failed: number }> };
    await until('the newsletter to be sent', () => (show(newsId).status === 'sent' ? true : undefined));
    expect(show(socialId).status).toBe('sending');
    expect(fake.tweets).toHaveLength(0);

    // Machine B (another data dir, another working directory, no image file) posts it with the stored bytes.
    await daemon(b, ['start']);
    await until('the post on X', () => (fake!.tweets.length > 0 ? true : undefined));
    await until('the social campaign to finish', () => (['sent', 'failed', 'partially_failed'].includes(show(socialId).status) ? true : undefined));
    expect(show(socialId)).toMatchObject({ status: 'sent', channels: { twitter: { sent: 1, failed: 0 } } });
    expect(fake.tweets[0]).toMatchObject({ text: 'New poster' });
    expect(fake.tweets[0]!.mediaIds).toHaveLength(1);
    const media = fake.media.get(fake.tweets[0]!.mediaIds[0]!)!;
    expect(media).toMatchObject({ mediaType: 'image/png', totalBytes: PNG.length, alt: 'Poster: safer streets week' });

    // The unsubscribe link A signed is accepted by B's server.
    const link = /^List-Unsubscribe: <([^>]+)>/m.exec(eml.replace(/\r?\n[ \t]+/g, ' '))?.[1];
    expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/u/`));
    const res = await fetch(link!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(res.status).toBe(200);
    expect(cli(a, ['subscribers', 'export', '--list', 'news']).out).toMatch(/reader@example\.org,Reader,,,unsubscribed/);
    // Neither data dir holds a secret file: the one secret is in Redis.
    expect(existsSync(path.join(a.dir, 'data', 'secret'))).toBe(false);
    expect(existsSync(path.join(b.dir, 'data', 'secret'))).toBe(false);
  }, 120_000);
});

describe('images are checked against the network limits when the campaign is created', () => {
  const draft = (dir: string, channel: string, file: string) =>
    parseCampaign(`title: Img\nkind: social\nsend_at: 2030-01-01 09:00\nchannels:\n  ${channel}: { text: "x", images: [{ file: ${file}, alt: "a" }] }\n`, path.join(dir, 'c.yaml'), testConfig(), { now: new Date() });
  const problem = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };

  it('stores the bytes by sha256; refuses a non-image and an image over the network limit, naming file, line and field', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-img-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'ok.png'), PNG);
    writeFileSync(path.join(dir, 'fake.png'), 'this is text, not a picture');
    // 6 MB with a PNG signature: over X's 5 MB, under Mastodon's 16 MB.
    writeFileSync(path.join(dir, 'big.png'), Buffer.concat([PNG, Buffer.alloc(6 * 1024 * 1024)]));
    const ok = draft(dir, 'twitter', 'ok.png');
    const image = (ok.channels.twitter!.images as Array<Record<string, unknown>>)[0]!;
    expect(image).toMatchObject({ file: 'ok.png', type: 'image/png', bytes: PNG.length });
    expect(ok.media?.get(String(image.sha256))).toEqual(PNG);
    expect(problem(() => draft(dir, 'twitter', 'fake.png'))).toMatch(/c\.yaml:5, field "channels\.twitter\.images\.0\.file": .*fake\.png is not a PNG, JPEG, GIF or WebP image/);
    expect(problem(() => draft(dir, 'twitter', 'big.png'))).toMatch(/6\.0 MB; this network takes image\/png images up to 5 MB/);
    expect(problem(() => draft(dir, 'mastodon', 'big.png'))).toBe('');
  });
});
