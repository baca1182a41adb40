import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { defineScript, runScript } from './redis/scripts.js';
import { campaignKeys, failPlanning, failUndelivered, findCampaign, type Campaign } from './domain/campaigns.js';

/**
 * Finds `sending` campaigns whose jobs are gone or failed for good, and puts
 * them right: a batch with recipients left and no live job gets a new job
 * (delivery skips whoever is done, so nobody gets it twice); a batch whose job
 * failed for good has its remaining recipients marked failed with the job's
 * reason; planning that failed for good closes its channels as failed, and
 * planning whose job is lost runs again. Safe to run from any process at any
 * time: a lock in Redis keeps two runs apart.
 */

export interface ReconcileDeps {
  config: Config;
  redis: Redis;
  log: Logger;
  queue(name: string): Queue;
  deliverQueueName(channel: string): string;
  campaignQueue: string;
  planJobId(id: string, version: number): string;
  /** Adds the campaign's plan job again (due now). */
  replan(c: Campaign): Promise<void>;
  deliverJobOptions(channel: string, jobId: string): Parameters<Queue['add']>[2];
  now(): Date;
}

const LIVE = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

export interface ReconcileReport {
  readded: number;
  failed: number;
  replanned: number;
}

const LOCK_MS = 120_000;
const lockKey = (prefix: string) => `${prefix}:reconcile-lock`;

// Deletes the lock only if it is still this holder's (it may have expired and been taken by another).
const UNLOCK = defineScript('reconcile_unlock', `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);

async function takeLock(redis: Redis, prefix: string, token: string): Promise<boolean> {
  return (await redis.set(lockKey(prefix), token, 'PX', LOCK_MS, 'NX')) === 'OK';
}

async function dropLock(redis: Redis, prefix: string, token: string): Promise<void> {
  await runScript(redis, UNLOCK, [lockKey(prefix)], [token]);
}

/**
 * Runs `fn` holding the reconcile lock, waiting up to `waitMs` for it. `campaign
 * retry` puts a campaign back to `sending` and registers its new jobs under
 * it, so a reconcile run never sees the campaign between the two and adds a
 * second job for the same batch.
 */
export async function whileReconcileLocked<T>(redis: Redis, prefix: string, fn: () => Promise<T>, waitMs = 30_000): Promise<T> {
  const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  const deadline = Date.now() + waitMs;
  while (!(await takeLock(redis, prefix, token))) {
    if (Date.now() > deadline) throw new Error(`another Crier process has held ${lockKey(prefix)} for over ${waitMs / 1000} s (a reconcile run); try again`);
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    return await fn();
  } finally {
    await dropLock(redis, prefix, token);
  }
}

export async function reconcileSending(deps: ReconcileDeps, campaigns: Campaign[]): Promise<ReconcileReport> {
  const report: ReconcileReport = { readded: 0, failed: 0, replanned: 0 };
  const sending = campaigns.filter((c) => c.status === 'sending');
  if (sending.length === 0) return report;
  const prefix = deps.config.redis_prefix;
  const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  if (!(await takeLock(deps.redis, prefix, token))) return report;
  try {
    // Read again under the lock: a retry may have changed the campaign since the list was read.
    for (const c of sending) {
      const now = await findCampaign(deps.redis, prefix, c.id);
      if (now?.status === 'sending') await reconcileOne(deps, now, report);
    }
  } finally {
    await dropLock(deps.redis, prefix, token);
  }
  if (report.readded + report.failed + report.replanned > 0) deps.log.warn({ ...report }, 'reconciled sending campaigns');
  return report;
}

async function reconcileOne(deps: ReconcileDeps, c: Campaign, report: ReconcileReport): Promise<void> {
  const { redis, config } = deps;
  const prefix = config.redis_prefix;
  const k = campaignKeys(prefix, c.id);
  const counts = await redis.hgetall(k.counts);
  const unplanned = Object.keys(c.channels).filter((ch) => counts[`${ch}:planned`] !== '1');
  if (unplanned.length > 0) {
    const job = await deps.queue(deps.campaignQueue).getJob(deps.planJobId(c.id, c.version));
    const state = job ? await job.getState() : 'unknown';
    if (state === 'failed') {
      await failPlanning(redis, prefix, c, `planning failed: ${job?.failedReason ?? 'unknown error'}`, deps.now());
      report.failed++;
    } else if (!LIVE.has(state)) {
      if (job) await job.remove().catch(() => undefined);
      await deps.replan(c);
      report.replanned++;
    }
  }
  const planned = new Set(Object.keys(c.channels).filter((ch) => !unplanned.includes(ch)));
  const n = await readdFinishedBatches(
    { redis, prefix, deliverQueue: (ch) => deps.queue(deps.deliverQueueName(ch)), deliverJobOptions: deps.deliverJobOptions, now: deps.now },
    c.id,
    planned,
  );
  report.readded += n.readded;
  report.failed += n.failed;
}

export interface BatchDeps {
  redis: Redis;
  prefix: string;
  deliverQueue(channel: string): Queue;
  deliverJobOptions(channel: string, jobId: string): Parameters<Queue['add']>[2];
  now(): Date;
}

/**
 * For each batch of the given channels with recipients left and no live job: a new job, or, when its job
 * failed for good, the rest marked failed with the job's reason. Also used when a campaign held in the
 * middle of its send starts again (its batches' jobs had finished early).
 */
export async function readdFinishedBatches(deps: BatchDeps, campaignId: string, channels: Set<string>): Promise<{ readded: number; failed: number }> {
  const { redis, prefix } = deps;
  const k = campaignKeys(prefix, campaignId);
  const out = { readded: 0, failed: 0 };
  const jobIds = await redis.hgetall(k.jobs);
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(k.batches, cursor, 'COUNT', 200);
    cursor = next;
    for (let i = 0; i < flat.length; i += 2) {
      const field = flat[i]!;
      const channel = field.slice(0, field.indexOf(':'));
      if (!channels.has(channel)) continue;
      const queue = deps.deliverQueue(channel);
      const jobId = jobIds[field] ?? `${campaignId}:${field}`;
      const job = await queue.getJob(jobId);
      const state = job ? await job.getState() : 'unknown';
      if (LIVE.has(state)) continue;
      // Read after the job's state: a job that finished just now has marked its recipients.
      const ids = flat[i + 1]!.split(',').filter(Boolean);
      const done = ids.length > 0 ? await redis.smismember(k.done(channel), ...ids) : [];
      if (!done.some((d) => d !== 1)) continue;
      if (state === 'failed') {
        const reason = `delivery job failed: ${job?.failedReason ?? 'unknown error'}`;
        await failUndelivered(redis, prefix, campaignId, channel, field, reason, deps.now());
        out.failed++;
      } else {
        // Completed with recipients left, or gone: a new job (a new id, since a finished job's id is taken).
        const newId = `${campaignId}:${field}-re${Date.now().toString(36)}${i}`;
        await queue.add('deliver', { campaignId, channel, batch: field }, deps.deliverJobOptions(channel, newId));
        await redis.hset(k.jobs, field, newId);
        out.readded++;
      }
    }
  } while (cursor !== '0');
  return out;
}
