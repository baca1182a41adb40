import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { CAMPAIGN_QUEUE, planJobId } from '../src/scheduler.js';
import { testConfig } from './helpers/context.js';
import { CLI_JS } from './helpers/dist.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';

/**
 * A campaign scheduled before a restart fires once after it: in-process
 * (close Crier, start another) and through the real CLI (`crier start`
 * stopped with SIGTERM and started again).
 */

const mainJs = CLI_JS;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Newest modification time of the sources dist/ is built from. */

/**
 * Builds dist/ unless it is newer than every source (`npm test` has just built it).
 * A lock directory keeps two test files from running tsc over each other.
 */

/** Counts webhook POSTs per campaign: a repeated send cannot hide behind an overwritten outbox file. */
let receiver: Server;
let hookUrl: string;
const posts = new Map<string, number>();

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const id = (JSON.parse(body) as { campaign: { id: string } }).campaign.id;
      posts.set(id, (posts.get(id) ?? 0) + 1);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
}, 60_000);

afterAll(async () => {
  await new Promise((r) => receiver?.close(r));
});

const campaignYaml = (sendAt: string, title = 'Restart') =>
  `title: ${title}\nkind: social\nsend_at: ${sendAt}\nchannels:\n  mastodon: { text: "${title}" }\n  webhook: { text: "${title}", url: "${hookUrl}" }\n`;

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('restart in-process', () => {
  let a: TestCrier | undefined;
  let b: TestCrier | undefined;
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('a campaign scheduled before the restart fires once after it', async () => {
    const config = testConfig();
    a = await startCrier(config);
    const yaml = campaignYaml(londonIn(3_600_000));
    const draft = { ...parseCampaign(yaml, path.join(config.dataDir, 'c.yaml'), config, { now: new Date() }), sendAt: new Date(Date.now() + 1500) };
    const c = await a.scheduler.create(draft, { actor: 'alice' });
    await a.close();
    a = undefined;
    b = await startCrier(config);
    const done = await b.waitForStatus(c.id, ['sent', 'failed', 'partially_failed'], 10_000);
    expect(done.status).toBe('sent');
    await sleep(200);
    expect(readdirSync(config.outboxDir).filter((f) => f.startsWith(c.id))).toEqual([`${c.id}-mastodon.json`]);
    expect(posts.get(c.id)).toBe(1);
    await b.close();
    b = undefined;
  });

  it('a campaign whose job was lost gets it back from reconcile() and fires once', async () => {
    const config = testConfig();
    a = await startCrier(config, { workers: false });
    const draft = { ...parseCampaign(campaignYaml(londonIn(3_600_000), 'Lost'), path.join(config.dataDir, 'c.yaml'), config, { now: new Date() }), sendAt: new Date(Date.now() + 800) };
    const c = await a.scheduler.create(draft, { actor: 'alice' });
    await a.scheduler.queue(CAMPAIGN_QUEUE).remove(planJobId(c.id, 1));
    await a.close();
    a = undefined;
    b = await startCrier(config);
    expect(await b.scheduler.reconcile()).toBe(1);
    expect(await b.scheduler.reconcile()).toBe(0);
    expect((await b.waitForStatus(c.id, ['sent', 'failed'], 10_000)).status).toBe('sent');
    await sleep(200);
    expect(posts.get(c.id)).toBe(1);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('restart of `crier start` (the built CLI)', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crier-restart-cli-'));
  const configFile = path.join(dataDir, 'crier.config.yaml');
  writeFileSync(configFile, `redis_prefix: r${randomBytes(5).toString('hex')}\n`);
  const env = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: inject('redisUrl'),
    PORT: '0',
    HOST: '127.0.0.1',
    CRIER_DATA_DIR: dataDir,
    CRIER_CONFIG: configFile,
    CRIER_USER: 'tester',
    LOG_LEVEL: 'info',
  });
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  function cli(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [mainJs, ...args], { cwd: dataDir, env: env() });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Spawns `crier start` and resolves once it says it is running. */
  async function start(): Promise<{ child: ChildProcess; exited: Promise<number | null>; log: () => string }> {
    const child = spawn(process.execPath, [mainJs, 'start'], { cwd: dataDir, env: env() });
    children.push(child);
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await until('crier start to be running', () => (log.includes('crier is running') ? true : child.exitCode !== null ? Promise.reject(new Error(log)) : undefined), 30_000);
    return { child, exited, log: () => log };
  }

  it('SIGTERM, start again: the campaign fires once, within ~1 s of send_at', async () => {
    const first = await start();
    const sendAt = londonIn(5000);
    const file = path.join(dataDir, 'restart.yaml');
    writeFileSync(file, campaignYaml(sendAt, 'CLI restart'));
    const created = await cli('campaign', 'create', file);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^c[a-z0-9]+$/);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.log()).toContain('stopping');

    const second = await start();
    const due = (JSON.parse((await cli('campaign', 'show', id, '--json')).stdout) as { send_at: string }).send_at;
    const readyBeforeDue = Date.now() < new Date(due).getTime();
    const outbox = path.join(dataDir, 'outbox');
    const mastodonFile = path.join(outbox, `${id}-mastodon.json`);
    await until('the outbox file', () => (existsSync(mastodonFile) ? true : undefined), 20_000);
    const lateMs = statSync(mastodonFile).mtimeMs - new Date(due).getTime();
    console.log(`outbox file written ${Math.round(lateMs)} ms after send_at (restarted Crier was ${readyBeforeDue ? '' : 'NOT '}up before send_at)`);
    expect(lateMs).toBeGreaterThanOrEqual(-5);
    if (readyBeforeDue) expect(lateMs).toBeLessThan(1000);

    const show = await until('status sent', async () => {
      const r = await cli('campaign', 'show', id, '--json');
      const v = JSON.parse(r.stdout) as { status: string };
      return v.status === 'sent' ? v : undefined;
    });
    expect(show).toMatchObject({
      id,
      title: 'CLI restart',
      kind: 'social',
      status: 'sent',
      send_at: due,
      channels: { mastodon: { sent: 1, failed: 0, pending: 0, skipped: 0 }, webhook: { sent: 1, failed: 0, pending: 0, skipped: 0 } },
    });
    expect(readdirSync(outbox).filter((f) => f.startsWith(id))).toEqual([`${id}-mastodon.json`]);
    expect(JSON.parse(readFileSync(mastodonFile, 'utf8'))).toBeTruthy();
    expect(posts.get(id)).toBe(1);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 90_000);
});
