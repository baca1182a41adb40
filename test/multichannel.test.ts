import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTwitterAdapter } from '../channels/twitter/index.js';
import { verifyWebhookSignature } from '../channels/webhook/index.js';
import { importSubscribers } from '../src/domain/audience.js';
import { createLogger } from '../src/log.js';
import { startWorkers, type WorkerPool } from '../workers/index.js';
import { startFakeMastodonApi, type FakeMastodonApi } from './fakes/mastodon-api.js';
import { startFakeXApi, twitterEnv, type FakeXApi } from './fakes/x-api.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * One campaign on email + X + Mastodon + webhook through the real queue and
 * workers, against a real SMTP server and local fakes of each network's API.
 */

interface Hook {
  headers: IncomingHttpHeaders;
  raw: string;
}

interface Receiver {
  url: string;
  received: Hook[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Hook[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const creds = { appKey: 'mc-app-key', appSecret: 'mc-app-secret', accessToken: 'mc-access-token', accessSecret: 'mc-access-secret' };
const HOOK_SECRET = 'multichannel-hook-secret';

interface World {
  crier: TestCrier;
  pool: WorkerPool;
  sink: SmtpSink;
  x: FakeXApi;
  mastodon: FakeMastodonApi;
  hook: Receiver;
}

let world: World | undefined;

afterEach(async () => {
  if (!world) return;
  const w = world;
  world = undefined;
  await w.pool.close();
  await w.crier.close();
  await Promise.all([w.sink.close(), w.x.close(), w.mastodon.close(), w.hook.close()]);
});

async function startWorld(): Promise<World> {
  const [sink, x, mastodon, hook] = await Promise.all([startSmtpSink(), startFakeXApi({ credentials: creds }), startFakeMastodonApi(), startReceiver()]);
  const config = testConfig({
    env: {
      SMTP_URL: sink.url,
      ...twitterEnv(x.url, creds),
      MASTODON_URL: mastodon.url,
      MASTODON_TOKEN: mastodon.token,
    },
    yaml: `webhook:\n  url: ${hook.url}\n  secret: ${HOOK_SECRET}\nchannels:\n  twitter: { backoff_ms: 200 }\n  mastodon: { backoff_ms: 200 }\n`,
  });
  const crier = await startCrier(config, { workers: false });
  // The X fake's certificate is made at test time, after NODE_EXTRA_CA_CERTS could be read: pass it as `ca`.
  const pool = startWorkers({
    config,
    handle: crier.handle,
    log: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    adapters: { twitter: (c) => createTwitterAdapter(c, { ca: x.ca }) },
  });
  const csv = path.join(config.dataDir, 'news.csv');
  writeFileSync(csv, 'email,name,area,topics\nreader@example.org,Sam Reader,Rugby,burglary\n');
  await importSubscribers(crier.handle.redis, config.redis_prefix, csv, 'news', { rejectsDir: config.dataDir });
  world = { crier, pool, sink, x, mastodon, hook };
  return world;
}

function campaignYaml(tag: string, channels = ['email', 'twitter', 'mastodon', 'webhook']): string {
  const parts: Record<string, string> = {
    email: `  email: { list: news, subject: "Station open day ${tag}", body: "Come and meet the team." }`,
    twitter: `  twitter: { text: "Station open day ${tag} on X" }`,
    mastodon: `  mastodon: { text: "Station open day ${tag} on Mastodon" }`,
    webhook: `  webhook: { text: "Station open day ${tag}" }`,
  };
  return `title: Open day ${tag}\nkind: social\nsend_at: ${londonIn(1000)}\nchannels:\n${channels.map((c) => parts[c]).join('\n')}\n`;
}

/** Records when each item was pushed onto a fake's list (a post made, a request received). */
function stamps<T>(list: T[]): number[] {
  const times: number[] = [];
  const push = list.push.bind(list);
  list.push = (...items: T[]) => {
    for (let i = 0; i < items.length; i++) times.push(Date.now());
    return push(...items);
  };
  return times;
}

const FINAL = ['sent', 'partially_failed', 'failed'];

describe('a campaign on email + X + Mastodon + webhook', () => {
  it('goes out on all four, once each, with per-channel counts and a verifiable webhook signature', async () => {
    const w = await startWorld();
    const c = await w.crier.create(campaignYaml('A'));
    const done = await w.crier.waitForStatus(c.id, FINAL);
    expect(done.status).toBe('sent');
    for (const ch of ['email', 'twitter', 'mastodon', 'webhook']) {
      expect(done.counts[ch], ch).toEqual({ sent: 1, failed: 0, pending: 0, skipped: 0 });
    }
    expect(w.sink.count).toBe(1);
    expect(w.sink.messages[0]!.to).toEqual(['reader@example.org']);
    expect(w.sink.messages[0]!.parsed?.subject).toBe('Station open day A');
    expect(w.x.tweets.map((t) => t.text)).toEqual(['Station open day A on X']);
    expect(w.mastodon.statuses.map((s) => s.text)).toEqual(['Station open day A on Mastodon']);
    expect(w.mastodon.statuses[0]!.idempotencyKey).toBe(`${c.id}:mastodon:-`);
    expect(w.hook.received).toHaveLength(1);
    const hook = w.hook.received[0]!;
    expect(verifyWebhookSignature(HOOK_SECRET, String(hook.headers['x-crier-timestamp']), hook.raw, String(hook.headers['x-crier-signature']))).toBe(true);
    expect(verifyWebhookSignature('some-other-secret', String(hook.headers['x-crier-timestamp']), hook.raw, String(hook.headers['x-crier-signature']))).toBe(false);
    expect(JSON.parse(hook.raw)).toMatchObject({ campaign: { id: c.id, title: 'Open day A', kind: 'social' }, channel: 'webhook', text: 'Station open day A' });
  });

  it('one channel failing permanently (X duplicate) leaves the others sent and the campaign partially_failed', async () => {
    const w = await startWorld();
    w.x.failNext(403, { path: '/2/tweets' });
    const c = await w.crier.create(campaignYaml('B'));
    const done = await w.crier.waitForStatus(c.id, FINAL);
    expect(done.status).toBe('partially_failed');
    expect(done.counts.twitter).toMatchObject({ sent: 0, failed: 1, pending: 0 });
    expect(done.counts.twitter!.error).toMatch(/duplicate/i);
    for (const ch of ['email', 'mastodon', 'webhook']) expect(done.counts[ch], ch).toEqual({ sent: 1, failed: 0, pending: 0, skipped: 0 });
    expect(w.x.tweets).toHaveLength(0);
    // Permanent: one try, no retry.
    expect(w.x.requests.filter((r) => r.path === '/2/tweets')).toHaveLength(1);
    expect([w.sink.count, w.mastodon.statuses.length, w.hook.received.length]).toEqual([1, 1, 1]);
  });

  it('X 429 with x-rate-limit-reset: the post goes out once, after the reset', async () => {
    const w = await startWorld();
    const requestTimes = stamps(w.x.requests);
    const tweetTimes = stamps(w.x.tweets);
    w.x.failNext(429, { path: '/2/tweets', resetInSeconds: 2 });
    const c = await w.crier.create(campaignYaml('C'));
    const done = await w.crier.waitForStatus(c.id, FINAL, 20_000);
    expect(done.status).toBe('sent');
    expect(done.counts.twitter).toEqual({ sent: 1, failed: 0, pending: 0, skipped: 0 });
    expect(w.x.tweets.map((t) => t.text)).toEqual(['Station open day C on X']);
    const first = w.x.requests.findIndex((r) => r.path === '/2/tweets');
    // The fake's reset is the epoch second now+2 at the time of the 429.
    const resetMs = (Math.floor(requestTimes[first]! / 1000) + 2) * 1000;
    expect(tweetTimes[0]).toBeGreaterThanOrEqual(resetMs);
    expect(tweetTimes[0]! - resetMs).toBeLessThan(3000);
    expect([w.sink.count, w.mastodon.statuses.length, w.hook.received.length]).toEqual([1, 1, 1]);
  });

  it('Mastodon 429 with X-RateLimit-Reset: the status is posted once, after the reset', async () => {
    const w = await startWorld();
    const requestTimes = stamps(w.mastodon.requests);
    const statusTimes = stamps(w.mastodon.statuses);
    w.mastodon.failNext(429, { path: '/api/v1/statuses', resetInSeconds: 2 });
    const c = await w.crier.create(campaignYaml('D'));
    const done = await w.crier.waitForStatus(c.id, FINAL, 20_000);
    expect(done.status).toBe('sent');
    expect(done.counts.mastodon).toEqual({ sent: 1, failed: 0, pending: 0, skipped: 0 });
    expect(w.mastodon.statuses).toHaveLength(1);
    const first = w.mastodon.requests.findIndex((r) => r.path === '/api/v1/statuses');
    expect(statusTimes[0]).toBeGreaterThanOrEqual(requestTimes[first]! + 2000);
    expect(statusTimes[0]! - requestTimes[first]!).toBeLessThan(5000);
    expect([w.sink.count, w.x.tweets.length, w.hook.received.length]).toEqual([1, 1, 1]);
  });

  it('401 surfaces "reconnect account": partially_failed with others sent, failed when it is the only channel', async () => {
    const w = await startWorld();
    w.x.failNext(401, { path: '/2/tweets' });
    const c = await w.crier.create(campaignYaml('E'));
    const done = await w.crier.waitForStatus(c.id, FINAL);
    expect(done.status).toBe('partially_failed');
    expect(done.counts.twitter).toMatchObject({ sent: 0, failed: 1, pending: 0 });
    expect(done.counts.twitter!.error).toMatch(/reconnect account/);

    w.mastodon.failNext(401, { path: '/api/v1/statuses' });
    const only = await w.crier.create(campaignYaml('F', ['mastodon']));
    const failed = await w.crier.waitForStatus(only.id, FINAL);
    expect(failed.status).toBe('failed');
    expect(failed.counts.mastodon!.error).toMatch(/reconnect account/);
    expect(w.mastodon.statuses.map((s) => s.text)).toEqual(['Station open day E on Mastodon']);
  });
});
