import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { findSubscriber, importSubscribers, unsubscribe } from '../src/domain/audience.js';
import { sentIds } from '../src/domain/campaigns.js';
import { startFakeMastodonApi } from './fakes/mastodon-api.js';
import { startFakeXApi, twitterEnv } from './fakes/x-api.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';
import { spawnWorker, type WorkerChild } from './helpers/worker-child.js';

/**
 * Cancel, unsubscribe and the pre-election period are checked after the wait
 * for the channel's rate, right before the transport call. A post whose
 * outcome was never learned (the worker died waiting for the answer) is
 * looked up among the account's recent posts on retry, not posted again nor
 * failed as a duplicate.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function audience(config: Config, crier: TestCrier, list: string, n: number): Promise<string[]> {
  const emails = Array.from({ length: n }, (_, i) => `${list}${i}@example.org`);
  const csv = path.join(config.dataDir, `${list}.csv`);
  writeFileSync(csv, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
  await importSubscribers(crier.handle.redis, config.redis_prefix, csv, list, { rejectsDir: config.dataDir });
  return emails;
}

const received = (sink: SmtpSink) => sink.messages.flatMap((m) => m.to);
const settle = () => new Promise((r) => setTimeout(r, 200)); // well inside the ~1 s wait for the next rate window

describe('checks right before sending', () => {
  it('an unsubscribe and a cancel during the wait for the rate limit are honoured', async () => {
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    // One message a second: each recipient waits about a second for its turn.
    const config = testConfig({ env: { SMTP_URL: sink.url }, yaml: 'channels:\n  email: { rate_per_second: 1, concurrency: 1 }\n' });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());
    const emails = await audience(config, crier, 'wait', 6);
    const c = await crier.create(`title: Wait\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: wait, subject: "Hi", body: "News." }\n`);

    await until('the second message', () => sink.count >= 2);
    await settle();
    const r2 = await findSubscriber(crier.handle.redis, config.redis_prefix, emails[2]!);
    await unsubscribe(crier.handle.redis, config.redis_prefix, r2!.id, 'test');
    await until('the third message', () => sink.count >= 3, 10_000);
    await settle();
    await crier.scheduler.cancel(c.id, 'tester');
    await new Promise((r) => setTimeout(r, 2500)); // past the next two windows
    expect(received(sink)).toEqual([emails[0], emails[1], emails[3]]);
    expect((await crier.show(c.id)).status).toBe('cancelled');
  }, 60_000);

  it('a pre-election period beginning in the middle of a send holds the campaign there; rescheduled after it, the rest go once', async () => {
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    const start = Date.now();
    const config = testConfig({
      env: { SMTP_URL: sink.url },
      yaml: `channels:\n  email: { rate_per_second: 1, concurrency: 1 }\npurdah:\n  - { from: "${londonIn(3000, new Date(start))}", to: "${londonIn(9000, new Date(start))}", reason: PCC election }\n`,
    });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());
    const emails = await audience(config, crier, 'purdah', 10);
    const c = await crier.create(`title: Purdah\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: purdah, subject: "Hi", body: "News." }\n`);
    const held = await crier.waitForStatus(c.id, ['held', 'sent'], 20_000);
    expect(held.status).toBe('held');
    expect(held.reason).toMatch(/PCC election/);
    const at = sink.count;
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(10);
    await new Promise((r) => setTimeout(r, 1500));
    expect(sink.count).toBe(at);

    // After the window: the same campaign carries on from where it stopped.
    await crier.scheduler.reschedule(c.id, new Date(Math.max(start + 10_000, Date.now() + 1500)), 'tester');
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 40_000);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 10, failed: 0, pending: 0 });
    const got = new Map<string, number>();
    for (const to of received(sink)) got.set(to, (got.get(to) ?? 0) + 1);
    expect(emails.filter((e) => got.get(e) !== 1)).toEqual([]);
  }, 90_000);

  it('an X post made while the worker died waiting for the answer: the next worker finds it, no second post, no duplicate failure', async () => {
    const creds = { appKey: 'ak', appSecret: 'as', accessToken: 'at', accessSecret: 'ts' };
    const x = await startFakeXApi({ credentials: creds });
    cleanups.push(() => x.close());
    const config = testConfig({ env: twitterEnv(x.url, creds), yaml: 'worker_lock_ms: 1500\nchannels:\n  twitter: { backoff_ms: 200 }\n' });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const children: WorkerChild[] = [];
    cleanups.push(async () => {
      for (const w of children) await w.kill('SIGKILL');
    });
    const env = { NODE_EXTRA_CA_CERTS: x.certFile, ...twitterEnv(x.url, creds) };
    x.failNext(0, { path: '/2/tweets', hang: true });
    const first = spawnWorker(config, { queues: ['deliver-twitter', 'campaigns'], env });
    children.push(first);
    await first.ready;
    const c = await crier.create(`title: Post\nkind: social\nsend_at: ${londonIn(0)}\nchannels:\n  twitter: { text: "Community speed watch results are out" }\n`);
    await until('the post made', () => x.tweets.length === 1);
    await first.kill('SIGKILL');
    const second = spawnWorker(config, { queues: ['deliver-twitter', 'campaigns'], env });
    children.push(second);
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 30_000);
    expect(done.status).toBe('sent');
    expect(x.tweets).toHaveLength(1);
    expect((await sentIds(crier.handle.redis, config.redis_prefix, c.id))['twitter:-']).toBe(x.tweets[0]!.id);
  }, 60_000);

  it('a Mastodon status made while the worker died waiting (Idempotency-Key expired): the next worker finds it, no second status', async () => {
    const m = await startFakeMastodonApi();
    cleanups.push(() => m.close());
    const config = testConfig({ env: { MASTODON_URL: m.url, MASTODON_TOKEN: m.token }, yaml: 'worker_lock_ms: 1500\nchannels:\n  mastodon: { backoff_ms: 200 }\n' });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const children: WorkerChild[] = [];
    cleanups.push(async () => {
      for (const w of children) await w.kill('SIGKILL');
    });
    m.failNext(0, { path: '/api/v1/statuses', hang: true });
    const env = { MASTODON_URL: m.url, MASTODON_TOKEN: m.token };
    const first = spawnWorker(config, { queues: ['deliver-mastodon', 'campaigns'], env });
    children.push(first);
    await first.ready;
    const c = await crier.create(`title: Toot\nkind: social\nsend_at: ${londonIn(0)}\nchannels:\n  mastodon: { text: "Speed watch: results & next steps <in Rugby>" }\n`);
    await until('the status made', () => m.statuses.length === 1);
    await first.kill('SIGKILL');
    m.forgetIdempotencyKeys();
    const second = spawnWorker(config, { queues: ['deliver-mastodon', 'campaigns'], env });
    children.push(second);
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 30_000);
    expect(done.status).toBe('sent');
    expect(m.statuses).toHaveLength(1);
    expect((await sentIds(crier.handle.redis, config.redis_prefix, c.id))['mastodon:-']).toBe(m.statuses[0]!.id);
  }, 60_000);
});
