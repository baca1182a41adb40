import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { facebookEnv, startFakeGraphApi } from './fakes/graph-api.js';
import { notifyEnv, startFakeNotifyApi, type FakeNotifyApi } from './fakes/notify-api.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { runCrier } from './helpers/metrics.js';
import { spawnWorker, type WorkerChild } from './helpers/worker-child.js';

/**
 * A campaign on the Facebook Page and by SMS, end to end against fakes of
 * the Graph API and GOV.UK Notify: the worker is killed (-9) with the
 * Facebook post in flight and texts half sent; a new worker finishes. The Page
 * gets one post, every member with a mobile number gets their text (repeats
 * bounded by the texts in flight), members without one get none.
 */

const MEMBERS = 150;
const CONCURRENCY = 2;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Two in three members give a number, written the ways people write them. */
async function importMembers(config: Config, crier: TestCrier): Promise<string[]> {
  const phones: string[] = [];
  const rows = Array.from({ length: MEMBERS }, (_, i) => {
    if (i % 3 === 2) return `m${i}@example.org,Member ${i},Rugby,roads,`;
    const digits = String(100_000 + i);
    phones.push(`+447400${digits}`);
    return `m${i}@example.org,Member ${i},Rugby,roads,${i % 2 ? `+44 7400 ${digits}` : `07400 ${digits}`}`;
  });
  const file = path.join(config.dataDir, 'alerts.csv');
  writeFileSync(file, `email,name,area,topics,phone\n${rows.join('\n')}\n`);
  const r = await importSubscribers(crier.handle.redis, config.redis_prefix, file, 'alerts', { rejectsDir: config.dataDir });
  expect(r).toMatchObject({ imported: MEMBERS, rejected: 0 });
  return phones;
}

function tally(notify: FakeNotifyApi): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of notify.texts) m.set(t.to, (m.get(t.to) ?? 0) + 1);
  return m;
}

const campaign = (text: string) =>
  `title: Road closure\nkind: community\nsend_at: ${londonIn(800)}\nchannels:\n` +
  `  facebook: { text: "${text}", link: "https://example.org/roads" }\n` +
  `  sms: { list: alerts, areas: [Rugby], text: "${text} Details: example.org/roads" }\n`;

describe('Facebook and SMS through a worker killed mid-send', () => {
  it('posts once and texts each member with a number once (repeats bounded by the texts in flight)', async () => {
    const graph = await startFakeGraphApi();
    const notify = await startFakeNotifyApi();
    cleanups.push(() => graph.close(), () => notify.close());
    const env = { ...facebookEnv(graph), ...notifyEnv(notify) };
    const config = testConfig({
      env,
      yaml: `worker_lock_ms: 2000\nchannels:\n  sms: { rate_per_second: 40, concurrency: ${CONCURRENCY}, backoff_ms: 200 }\n  facebook: { backoff_ms: 200 }\n`,
    });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const phones = await importMembers(config, crier);

    graph.holdPostReplies = true;
    const first = spawnWorker(config, { env });
    const children: WorkerChild[] = [first];
    cleanups.push(async () => {
      for (const c of children) await c.kill('SIGKILL');
    });
    await first.ready;
    const c = await crier.create(campaign('The A426 is closed tonight.'));

    await until(() => graph.posts.length === 1 && notify.texts.length >= phones.length / 2, 30_000, 'the post made and half the texts');
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    const atKill = notify.texts.length;
    expect(atKill).toBeLessThan(phones.length);
    graph.holdPostReplies = false;

    const second = spawnWorker(config, { env });
    children.push(second);
    await second.ready;
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 40_000);
    expect(done.status, JSON.stringify(done.counts)).toBe('sent');
    expect(done.counts.facebook).toMatchObject({ sent: 1, failed: 0, pending: 0 });
    expect(done.counts.sms).toMatchObject({ sent: phones.length, failed: 0, pending: 0 });

    expect(graph.posts).toHaveLength(1);
    expect(graph.posts[0]?.message).toBe('The A426 is closed tonight.');
    // The second worker found the post the first one made (its answer never came) instead of posting again.
    expect(graph.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/posts'))).toHaveLength(1);
    expect(graph.requests.filter((r) => r.path.endsWith('/feed'))).toHaveLength(1);
    const got = tally(notify);
    expect(phones.filter((p) => !got.has(p))).toEqual([]);
    expect([...got.keys()].filter((p) => !phones.includes(p))).toEqual([]);
    const repeats = [...got.values()].reduce((a, n) => a + n - 1, 0);
    expect(repeats).toBeLessThanOrEqual(CONCURRENCY);
    expect(notify.authFailures).toBe(0);
    if (process.env.RECOVERY_STATS) console.info({ atKill, repeats });
    await second.kill('SIGTERM');
  }, 90_000);
});

describe('Facebook errors on a live campaign', () => {
  it('a rate-limit code pauses the channel and the post goes out after; 190 surfaces "reconnect account"', async () => {
    const graph = await startFakeGraphApi();
    cleanups.push(() => graph.close());
    const config = testConfig({ env: facebookEnv(graph), yaml: 'channels:\n  facebook: { backoff_ms: 200 }\n' });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());

    // Meta says access returns in 0 minutes: the queue still pauses (a second at least), then resumes.
    graph.failNext(32, { path: '/feed', regainMinutes: 0 });
    const limited = await crier.create(`title: Limited\nkind: social\nsend_at: ${londonIn(500)}\nchannels:\n  facebook: { text: "After the pause" }\n`);
    const done = await crier.waitForStatus(limited.id, ['sent', 'partially_failed', 'failed'], 20_000);
    expect(done.status).toBe('sent');
    expect(done.counts.facebook).toMatchObject({ sent: 1, failed: 0 });
    const feedCalls = graph.requests.filter((r) => r.path.endsWith('/feed'));
    expect(feedCalls).toHaveLength(2);
    expect(graph.posts.map((p) => p.message)).toEqual(['After the pause']);

    graph.failNext(190, { path: '/feed' });
    const expired = await crier.create(`title: Expired\nkind: social\nsend_at: ${londonIn(500)}\nchannels:\n  facebook: { text: "Never posted" }\n`);
    const failed = await crier.waitForStatus(expired.id, ['sent', 'partially_failed', 'failed'], 20_000);
    expect(failed.status).toBe('failed');
    expect(failed.counts.facebook?.error).toMatch(/^reconnect account: Facebook refused the Page token/);
    expect(graph.requests.filter((r) => r.path.endsWith('/feed'))).toHaveLength(3);

    // What the team sees: `crier campaign show`.
    const show = await runCrier(config, ['campaign', 'show', expired.id]);
    expect(show.stdout).toMatch(/reconnect account/);
  }, 60_000);

  it('the rate-limit pause holds the queue: the retry waits for the reset', async () => {
    const graph = await startFakeGraphApi();
    cleanups.push(() => graph.close());
    const config = testConfig({ env: facebookEnv(graph), yaml: 'channels:\n  facebook: { backoff_ms: 50 }\n' });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());
    graph.failNext(613, { path: '/feed', regainMinutes: 0 });
    const c = await crier.create(`title: Paused\nkind: social\nsend_at: ${londonIn(300)}\nchannels:\n  facebook: { text: "Paused then posted" }\n`);
    await crier.waitForStatus(c.id, ['sent'], 20_000);
    const [limitedAt, postedAt] = graph.requests.filter((r) => r.path.endsWith('/feed')).map((r) => r.at);
    // A transient retry would come after 50 ms; the pause is at least the 1 s floor.
    expect(postedAt! - limitedAt!).toBeGreaterThanOrEqual(900);
  });
});

describe('campaign preview for SMS', () => {
  it('shows the segments, the encoding and the cost for the members with a number', async () => {
    const config = testConfig({ yaml: 'sms:\n  cost_per_segment: 0.0227\n' });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const phones = await importMembers(config, crier);
    const text = `Don’t leave valuables in your car. ${'x'.repeat(60)}`;
    const c = await crier.create(`title: Preview\nkind: community\nsend_at: ${londonIn(86_400_000)}\nchannels:\n  sms: { list: alerts, text: "${text}" }\n  facebook: { text: "Preview post" }\n`);
    const out = await runCrier(config, ['campaign', 'preview', c.id]);
    expect(out.code).toBe(0);
    const segments = Math.ceil([...text].length / 67);
    expect(out.stdout).toContain(
      `${segments} segments (UCS-2 because of "’", ${[...text].length} characters) × ${phones.length} recipients with a mobile number = ${segments * phones.length} segments (≈ £${(segments * phones.length * 0.0227).toFixed(2)} at £0.0227 a segment)`,
    );
    expect(out.stdout).toMatch(/^sms +\S+-sms-\S+\.json {2}\(to m0@example\.org\)$/m);
    expect(out.stdout).toMatch(/^facebook +\S+-facebook\.json$/m);
  });
});
