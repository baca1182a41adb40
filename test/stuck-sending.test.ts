import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { beginSending, campaignKeys } from '../src/domain/campaigns.js';
import { whileReconcileLocked } from '../src/reconcile.js';
import { CAMPAIGN_QUEUE, deliverQueueName, type CampaignJobData } from '../src/scheduler.js';
import { startWorkers } from '../workers/index.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { startSmtpSink } from './helpers/smtp-sink.js';

/**
 * No campaign stays `sending` because its jobs were lost or failed for good:
 * reconcile() re-adds a lost batch, marks a failed batch's recipients failed
 * with the job's reason, and closes a channel whose planning failed for good;
 * `campaign retry` then sends what is left, once.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

async function audience(config: Config, crier: TestCrier, list: string, n: number): Promise<string[]> {
  const emails = Array.from({ length: n }, (_, i) => `${list}${i}@example.org`);
  const csv = path.join(config.dataDir, `${list}.csv`);
  writeFileSync(csv, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
  await importSubscribers(crier.handle.redis, config.redis_prefix, csv, list, { rejectsDir: config.dataDir });
  return emails;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('no campaign stuck in sending', () => {
  it('a lost delivery job is re-added and a failed one marks its recipients failed; retry sends the rest once', async () => {
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    const config = testConfig({ env: { SMTP_URL: sink.url }, yaml: 'batch_size: 10\n' });
    // Planning only: the delivery jobs wait in their queue.
    const crier = await startCrier(config, { queues: [CAMPAIGN_QUEUE] });
    cleanups.push(() => crier.close());
    const emails = await audience(config, crier, 'stuck', 30);
    const c = await crier.create(`title: Stuck\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: stuck, subject: "Hi", body: "News." }\n`);
    const k = campaignKeys(config.redis_prefix, c.id);
    await until('planned', async () => (await crier.handle.redis.hget(k.counts, 'email:planned')) === '1');
    const queue = crier.scheduler.queue(deliverQueueName('email'));
    // Batch 1's job is lost (as with Redis data lost); batches 0 and 2 fail for good in a process that then dies.
    await queue.remove(`${c.id}:email:1`);
    const doomed = new Worker(deliverQueueName('email'), async () => {
      throw new UnrecoverableError('relay exploded');
    }, { connection: crier.handle.options, prefix: config.redis_prefix });
    await until('two failed jobs', async () => (await queue.getFailedCount()) === 2);
    await doomed.close();
    expect((await crier.show(c.id)).status).toBe('sending');

    const pool = startWorkers({ config, handle: crier.handle, log: silentLogger(), queues: [deliverQueueName('email')] });
    cleanups.push(() => pool.close());
    await crier.scheduler.reconcile();
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 20_000);
    expect(done.status).toBe('partially_failed');
    expect(done.counts.email).toMatchObject({ sent: 10, failed: 20, pending: 0 });
    expect(done.counts.email?.error).toMatch(/delivery job failed: relay exploded/);

    // Retry racing reconcile runs (another process's timer): one job per batch, never two.
    await pool.close();
    await Promise.all([crier.scheduler.retry(c.id, 'tester'), crier.scheduler.reconcile(), crier.scheduler.reconcile(), crier.scheduler.reconcile()]);
    const live = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active']);
    const perBatch = new Map<string, number>();
    for (const j of live) perBatch.set((j.data as { batch: string }).batch, (perBatch.get((j.data as { batch: string }).batch) ?? 0) + 1);
    expect([...perBatch.values()].every((n) => n === 1)).toBe(true);
    const pool2 = startWorkers({ config, handle: crier.handle, log: silentLogger(), queues: [deliverQueueName('email')] });
    cleanups.push(() => pool2.close());
    const again = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 20_000);
    expect(again.status).toBe('sent');
    expect(again.counts.email).toMatchObject({ sent: 30, failed: 0, pending: 0 });
    const got = new Map<string, number>();
    for (const m of sink.messages) for (const to of m.to) got.set(to, (got.get(to) ?? 0) + 1);
    expect(emails.filter((e) => got.get(e) !== 1)).toEqual([]);
  }, 60_000);

  it('planning that fails for good after the campaign started: failed with the reason, and retry plans and sends it', async () => {
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    const config = testConfig({ env: { SMTP_URL: sink.url }, yaml: 'batch_size: 10\n' });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const emails = await audience(config, crier, 'plan', 15);
    // A planner that starts the campaign and then dies for good.
    const doomed = new Worker<CampaignJobData>(CAMPAIGN_QUEUE, async (job) => {
      await beginSending(crier.handle.redis, config.redis_prefix, job.data.id, job.data.version, '', new Date());
      throw new UnrecoverableError('audience store unreadable');
    }, { connection: crier.handle.options, prefix: config.redis_prefix });
    const c = await crier.create(`title: Plan\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: plan, subject: "Hi", body: "News." }\n`);
    const planQueue = crier.scheduler.queue(CAMPAIGN_QUEUE);
    await until('the plan job failed', async () => (await planQueue.getFailedCount()) === 1);
    await doomed.close();
    expect((await crier.show(c.id)).status).toBe('sending');

    await crier.scheduler.reconcile();
    const failed = await crier.show(c.id);
    expect(failed.status).toBe('failed');
    expect(failed.counts.email?.error).toMatch(/planning failed: audience store unreadable/);

    const pool = startWorkers({ config, handle: crier.handle, log: silentLogger() });
    cleanups.push(() => pool.close());
    await crier.scheduler.retry(c.id, 'tester');
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 20_000);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 15, failed: 0, pending: 0 });
    const got = new Map<string, number>();
    for (const m of sink.messages) for (const to of m.to) got.set(to, (got.get(to) ?? 0) + 1);
    expect(emails.filter((e) => got.get(e) !== 1)).toEqual([]);
  }, 60_000);

  it('campaign retry waits for a reconcile run in progress (one lock for both)', async () => {
    const config = testConfig();
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    await audience(config, crier, 'wait', 3);
    const c = await crier.create(`title: Wait\nkind: newsletter\nsend_at: ${londonIn(3_600_000)}\nchannels:\n  email: { list: wait, subject: "Hi", body: "News." }\n`);
    let release = () => {};
    const held = whileReconcileLocked(crier.handle.redis, config.redis_prefix, () => new Promise<void>((r) => (release = r)));
    await until('lock held', async () => (await crier.handle.redis.exists(`${config.redis_prefix}:reconcile-lock`)) === 1);
    let finished = false;
    const retry = crier.scheduler.retry(c.id, 'tester').then(
      () => (finished = true),
      () => (finished = true),
    );
    await new Promise((r) => setTimeout(r, 400));
    expect(finished).toBe(false);
    release();
    await held;
    await retry;
    expect(finished).toBe(true);
    expect(await crier.handle.redis.exists(`${config.redis_prefix}:reconcile-lock`)).toBe(0);
  });
});
