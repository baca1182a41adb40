import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCampaign, type CampaignDraft } from '../src/domain/campaign-file.js';
import { CAMPAIGN_QUEUE, planJobId } from '../src/scheduler.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { completedJob } from './helpers/jobs.js';

/**
 * Schedule / cancel / reschedule against real BullMQ workers on the private
 * Redis. Sends are counted twice over: the dry-run mastodon file in the outbox,
 * and every POST the webhook channel makes to a local receiver (a repeated
 * send would overwrite the outbox file, but it cannot hide a second POST).
 */

let crier: TestCrier;
let receiver: Server;
let hookUrl: string;
const posts = new Map<string, number[]>(); // campaign id → arrival times (ms)

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const id = (JSON.parse(body) as { campaign: { id: string } }).campaign.id;
      posts.set(id, [...(posts.get(id) ?? []), Date.now()]);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  crier = await startCrier(testConfig());
});

afterAll(async () => {
  await crier?.close();
  await new Promise((r) => receiver?.close(r));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A draft due at an exact instant (campaign files only go down to the second). */
function draftAt(at: Date, title = 'Race'): CampaignDraft {
  const yaml = `title: ${title}\nkind: social\nsend_at: ${londonIn(3_600_000)}\nchannels:\n  mastodon: { text: "${title}" }\n  webhook: { text: "${title}", url: "${hookUrl}" }\n`;
  return { ...parseCampaign(yaml, `${crier.config.dataDir}/race.yaml`, crier.config, { now: new Date() }), sendAt: at };
}

const inMs = (ms: number) => new Date(Date.now() + ms);

function outboxFiles(id: string): string[] {
  const dir = crier.config.outboxDir;
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(`${id}-`) && f.endsWith('.json')) : [];
}

const hashField = (id: string, field: string) => crier.handle.redis.hget(`${crier.config.redis_prefix}:campaign:${id}`, field);

/** Every send a campaign made: mastodon outbox files and webhook POSTs. */
function sends(id: string): { mastodon: number; webhook: number } {
  return { mastodon: outboxFiles(id).filter((f) => f.endsWith('-mastodon.json')).length, webhook: posts.get(id)?.length ?? 0 };
}

/** Waits until no job is waiting or running in the campaign and delivery queues. */
async function waitIdle(timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let busy = 0;
    for (const q of [CAMPAIGN_QUEUE, 'deliver-mastodon', 'deliver-webhook']) {
      const n = await crier.scheduler.queue(q).getJobCounts('active', 'waiting', 'prioritized');
      busy += (n.active ?? 0) + (n.waiting ?? 0) + (n.prioritized ?? 0);
    }
    if (busy === 0) return;
    if (Date.now() > deadline) throw new Error(`queues still busy (${busy} jobs) after ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Adds the job an older version left behind (as if it could not be removed) and returns what it did. */
async function runStaleJob(id: string, version: number): Promise<unknown> {
  const q = crier.scheduler.queue(CAMPAIGN_QUEUE);
  const jobId = `${id}:replay:v${version}`; // BullMQ allows a custom id with exactly two colons
  await q.add('campaign', { id, version }, { jobId });
  return (await completedJob(q, jobId, 5000)).returnvalue;
}

describe('cancel', () => {
  it('just before send time: the campaign never starts', async () => {
    const due = inMs(1500).getTime();
    const c = await crier.scheduler.create(draftAt(new Date(due)), { actor: 'alice' });
    // 600 ms before: on a loaded machine (three test files at once on two cores) a timer can fire a few
    // hundred ms late, and a cancel that lands after the due moment is the racing test below, not this one.
    await sleep(due - 600 - Date.now());
    await crier.scheduler.cancel(c.id, 'alice');
    expect(await hashField(c.id, 'previous_status')).toBe('scheduled');
    expect(await runStaleJob(c.id, 1)).toBe('stale');
    await sleep(due + 300 - Date.now()); // past the old send time
    await waitIdle();
    const after = await crier.show(c.id);
    expect(after.status).toBe('cancelled');
    expect(sends(c.id)).toEqual({ mastodon: 0, webhook: 0 });
    expect(after.counts.mastodon).toMatchObject({ sent: 0, pending: 0 });
    expect(await hashField(c.id, 'started_at')).toBeNull();
  });

  it('racing the due moment (20 campaigns): a cancel that found it scheduled means zero sends; otherwise consistent', async () => {
    const due = Date.now() + 400;
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => crier.scheduler.create(draftAt(new Date(due), `Race ${i}`), { actor: 'alice' })));
    const results = await Promise.all(
      made.map(async (c) => {
        await sleep(Math.max(0, due - 150 + Math.random() * 300 - Date.now()));
        try {
          await crier.scheduler.cancel(c.id, 'alice');
          return { id: c.id, cancelled: true, at: Date.now(), error: '' };
        } catch (err) {
          return { id: c.id, cancelled: false, at: Date.now(), error: (err as Error).message };
        }
      }),
    );
    await sleep(300);
    await waitIdle();
    const tally = { beforeStart: 0, whileSending: 0, tooLate: 0 };
    for (const r of results) {
      const c = await crier.show(r.id);
      const s = sends(r.id);
      if (!r.cancelled) {
        tally.tooLate++;
        expect(r.error).toMatch(/can no longer be cancelled/);
        expect(c.status).toBe('sent');
        expect(s).toEqual({ mastodon: 1, webhook: 1 });
        continue;
      }
      expect(c.status).toBe('cancelled');
      const was = await hashField(r.id, 'previous_status');
      if (was === 'scheduled') {
        tally.beforeStart++;
        expect(s).toEqual({ mastodon: 0, webhook: 0 });
        expect(await hashField(r.id, 'started_at')).toBeNull();
      } else {
        // It had started: whatever went out is counted, and nothing more than once.
        tally.whileSending++;
        expect(was).toBe('sending');
        expect(s.mastodon).toBeLessThanOrEqual(1);
        expect(s.webhook).toBeLessThanOrEqual(1);
        expect(c.counts.mastodon!.sent).toBe(s.mastodon);
        expect(c.counts.webhook!.sent).toBe(s.webhook);
        // Nothing went out long after the cancel returned: at most the delivery already in flight.
        for (const t of posts.get(r.id) ?? []) expect(t).toBeLessThanOrEqual(r.at + 1000);
      }
    }
    console.log(`cancel race: ${JSON.stringify(tally)}`);
    expect(tally.beforeStart + tally.whileSending + tally.tooLate).toBe(20);
  });
});

describe('reschedule', () => {
  it('earlier: starts once, at the new time; the old version’s job does nothing', async () => {
    const c = await crier.scheduler.create(draftAt(inMs(3000)), { actor: 'alice' });
    const at = inMs(500);
    const r = await crier.scheduler.reschedule(c.id, at, 'alice');
    expect(r).toMatchObject({ status: 'scheduled', version: 2 });
    expect(await crier.scheduler.queue(CAMPAIGN_QUEUE).getJob(planJobId(c.id, 1))).toBeUndefined();
    await crier.waitForStatus(c.id, ['sent'], 5000);
    const started = new Date((await hashField(c.id, 'started_at'))!).getTime();
    expect(started).toBeGreaterThanOrEqual(at.getTime() - 5);
    expect(started).toBeLessThan(at.getTime() + 1000);
    expect(await runStaleJob(c.id, 1)).toBe('stale');
    await waitIdle();
    expect(sends(c.id)).toEqual({ mastodon: 1, webhook: 1 });
  });

  it('later: nothing at the old time, once at the new time', async () => {
    const c = await crier.scheduler.create(draftAt(inMs(600)), { actor: 'alice' });
    const at = inMs(1500);
    await crier.scheduler.reschedule(c.id, at, 'alice');
    expect(await runStaleJob(c.id, 1)).toBe('stale');
    await sleep(Math.max(0, at.getTime() - 300 - Date.now()));
    expect((await crier.show(c.id)).status).toBe('scheduled');
    expect(sends(c.id)).toEqual({ mastodon: 0, webhook: 0 });
    await crier.waitForStatus(c.id, ['sent'], 5000);
    const started = new Date((await hashField(c.id, 'started_at'))!).getTime();
    expect(started).toBeGreaterThanOrEqual(at.getTime() - 5);
    await waitIdle();
    expect(sends(c.id)).toEqual({ mastodon: 1, webhook: 1 });
  });

  it('racing the due moment (10 campaigns): each sends exactly once', async () => {
    const due = Date.now() + 400;
    const made = await Promise.all(Array.from({ length: 10 }, (_, i) => crier.scheduler.create(draftAt(new Date(due), `Move ${i}`), { actor: 'alice' })));
    const results = await Promise.all(
      made.map(async (c) => {
        await sleep(Math.max(0, due - 150 + Math.random() * 300 - Date.now()));
        const to = inMs(200 + Math.random() * 300);
        try {
          await crier.scheduler.reschedule(c.id, to, 'alice');
          return { id: c.id, to: to.getTime(), moved: true };
        } catch (err) {
          expect((err as Error).message).toMatch(/only a scheduled, held or unapproved campaign can be rescheduled/);
          return { id: c.id, to: 0, moved: false };
        }
      }),
    );
    for (const r of results) await crier.waitForStatus(r.id, ['sent'], 5000);
    await waitIdle();
    for (const r of results) {
      expect(sends(r.id)).toEqual({ mastodon: 1, webhook: 1 });
      if (r.moved) expect(new Date((await hashField(r.id, 'started_at'))!).getTime()).toBeGreaterThanOrEqual(r.to - 5);
    }
    console.log(`reschedule race: ${results.filter((r) => r.moved).length} moved, ${results.filter((r) => !r.moved).length} already started`);
  });

  it('concurrent reschedules: one final version, one send', async () => {
    const c = await crier.scheduler.create(draftAt(inMs(2000)), { actor: 'alice' });
    const times = [300, 450, 600, 750, 900].map(inMs);
    await Promise.all(times.map((t) => crier.scheduler.reschedule(c.id, t, 'alice')));
    const now = await crier.show(c.id);
    expect(now.version).toBe(6);
    expect(times.map((t) => t.getTime())).toContain(now.sendAt.getTime());
    const final = await crier.waitForStatus(c.id, ['sent'], 5000);
    expect(final.version).toBe(6);
    expect(new Date((await hashField(c.id, 'started_at'))!).getTime()).toBeGreaterThanOrEqual(now.sendAt.getTime() - 5);
    // Let any job of an older version that survived removal come due and run.
    await sleep(Math.max(0, times[4]!.getTime() + 100 - Date.now()));
    await waitIdle();
    const jobs = await crier.scheduler.queue(CAMPAIGN_QUEUE).getJobs(['completed', 'delayed', 'waiting', 'active']);
    const mine = jobs.filter((j) => (j.data as { id: string }).id === c.id);
    expect(mine.filter((j) => j.returnvalue === 'planned').map((j) => j.id)).toEqual([planJobId(c.id, 6)]);
    expect(sends(c.id)).toEqual({ mastodon: 1, webhook: 1 });
  });

  it('refuses a time in the past and an unknown campaign', async () => {
    const c = await crier.scheduler.create(draftAt(inMs(60_000)), { actor: 'alice' });
    await expect(crier.scheduler.reschedule(c.id, inMs(-60_000), 'alice')).rejects.toThrow(/in the past/);
    await expect(crier.scheduler.reschedule('cnosuchthing', inMs(60_000), 'alice')).rejects.toThrow(/no campaign/);
    await crier.scheduler.cancel(c.id, 'alice');
  });
});

describe('approve racing reschedule', () => {
  it('the job that runs is always at the campaign’s final send_at', async () => {
    const cfg = testConfig({ yaml: 'approval:\n  kinds: [social]\n' });
    const other = await startCrier(cfg, { workers: false });
    try {
      const yaml = `title: Approve race\nkind: social\nsend_at: ${londonIn(3_600_000)}\nchannels:\n  mastodon: { text: "x" }\n`;
      const base = parseCampaign(yaml, `${cfg.dataDir}/a.yaml`, cfg, { now: new Date() });
      const made = await Promise.all(Array.from({ length: 20 }, () => other.scheduler.create({ ...base, sendAt: inMs(3_600_000) }, { actor: 'alice' })));
      expect(made.every((c) => c.status === 'awaiting_approval')).toBe(true);
      // Both orders: a reschedule landing between approve's read and its state change is the risky one.
      await Promise.all(
        made.map((c, i) => {
          const approve = () => other.scheduler.approve(c.id, 'bob');
          const reschedule = () => other.scheduler.reschedule(c.id, inMs(7_200_000), 'alice');
          return i % 2 ? Promise.all([approve(), reschedule()]) : Promise.all([reschedule(), approve()]);
        }),
      );
      const q = other.scheduler.queue(CAMPAIGN_QUEUE);
      for (const m of made) {
        const c = await other.show(m.id);
        expect(c.status).toBe('scheduled');
        const job = await q.getJob(planJobId(c.id, c.version));
        expect(job, `no job for the current version of ${c.id}`).toBeDefined();
        expect(Math.abs(job!.timestamp + (job!.delay ?? 0) - c.sendAt.getTime())).toBeLessThan(100);
      }
    } finally {
      await other.close();
    }
  });
});
