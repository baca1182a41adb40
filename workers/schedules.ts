import { Queue, Worker, type Job } from 'bullmq';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { RedisHandle } from '../src/redis/connection.js';
import { RECURRING_QUEUE, runSeries, type RecurringDeps, type SeriesJobData } from '../src/recurring.js';
import { Scheduler } from '../src/scheduler.js';
import { fetchFeed, FeedUnavailable } from '../src/domain/website-feed.js';
import { weekBefore } from '../src/digest/model.js';
import { sendDigest, type DigestDeps } from '../src/digest/send.js';
import { monthOf, NEWSLETTER_QUEUE, NEWSLETTER_SCHEDULER_ID, runNewsletter, type NewsletterDeps } from '../src/newsletter.js';

/**
 * Workers for what runs on Crier's own clock, each fed by BullMQ job
 * schedulers (cron in the team's time zone): recurring campaigns, the
 * monthly newsletter run and the weekly digest. The run
 * handlers take the occurrence instant from the job (prevMillis), so a run
 * that fires late or is retried still works on the occurrence it was for.
 */

export const DIGEST_QUEUE = 'digest';
export const DIGEST_SCHEDULER_ID = 'digest-weekly';
export const SCHEDULE_QUEUES: string[] = [RECURRING_QUEUE, NEWSLETTER_QUEUE, DIGEST_QUEUE];

export interface ScheduleWorkerOptions {
  config: Config;
  handle: RedisHandle;
  log: Logger;
  now: () => Date;
  queues: string[];
  lock: { lockDuration: number; stalledInterval: number };
}

/** The instant a job scheduler's job was due: its occurrence, whatever time it runs. */
export function occurrenceOf(job: Job, now: Date): Date {
  const due = job.opts.prevMillis;
  return typeof due === 'number' && due > 0 ? new Date(due) : now;
}

export function startScheduleWorkers(opts: ScheduleWorkerOptions): { workers: Worker[]; close(): Promise<void> } {
  const { config, handle, log, now } = opts;
  const scheduler = new Scheduler(config, handle, log, now);
  const deps: RecurringDeps = { config, redis: handle.redis, scheduler, log, now };
  const workers: Worker[] = [];
  const processors: Record<string, (job: Job) => Promise<unknown>> = {
    [RECURRING_QUEUE]: (job: Job<SeriesJobData>) => runSeries(deps, job.data.series, occurrenceOf(job, now())),
    [NEWSLETTER_QUEUE]: (job: Job) => newsletterJob(job, { ...deps }),
    [DIGEST_QUEUE]: (job: Job) => digestJob(job, { config, redis: handle.redis, log, now }),
  };
  for (const name of opts.queues) {
    const processor = processors[name];
    if (!processor) continue;
    const w = new Worker(name, processor, { connection: handle.options, prefix: config.redis_prefix, concurrency: 2, ...opts.lock });
    w.on('error', (err) => log.warn({ queue: name, err: err.message }, 'worker error'));
    w.on('failed', (job, err) => log.error({ queue: name, jobId: job?.id, err: err.message }, 'scheduled run failed'));
    workers.push(w);
  }
  // The configured schedules are (re)registered by whoever serves their queue, so a config change applies on restart.
  const ready = registerSchedules(config, opts.queues, (name) => scheduler.queue(name)).catch((err: Error) => log.error({ err: err.message }, 'cannot register job schedulers'));
  return {
    workers,
    async close() {
      await ready;
      await Promise.all(workers.map((w) => w.close()));
      await scheduler.close();
    },
  };
}

export async function registerSchedules(config: Config, queues: string[], queue: (name: string) => Queue): Promise<void> {
  if (queues.includes(DIGEST_QUEUE)) {
    if (config.digest.recipients.length > 0) {
      await queue(DIGEST_QUEUE).upsertJobScheduler(
        DIGEST_SCHEDULER_ID,
        { pattern: config.digest.cron, tz: config.timezone },
        { name: 'digest', data: {}, opts: { attempts: 8, backoff: { type: 'exponential', delay: 60_000 }, removeOnComplete: { count: 60 }, removeOnFail: { age: 90 * 24 * 3600 } } },
      );
    } else {
      await queue(DIGEST_QUEUE).removeJobScheduler(DIGEST_SCHEDULER_ID);
    }
  }
  if (queues.includes(NEWSLETTER_QUEUE)) {
    const n = config.newsletter;
    if (n.enabled ?? n.feed_url !== undefined) {
      await queue(NEWSLETTER_QUEUE).upsertJobScheduler(
        NEWSLETTER_SCHEDULER_ID,
        { pattern: n.cron, tz: config.timezone },
        { name: 'newsletter', data: {}, opts: { attempts: n.feed_attempts, backoff: { type: 'exponential', delay: n.feed_retry_ms }, removeOnComplete: { count: 50 }, removeOnFail: { age: 90 * 24 * 3600 } } },
      );
    } else {
      await queue(NEWSLETTER_QUEUE).removeJobScheduler(NEWSLETTER_SCHEDULER_ID);
    }
  }
}

/**
 * One try at the feed per job attempt: while tries remain, a feed that is
 * down fails the job so BullMQ retries it with backoff; the last try drafts
 * the newsletter with what it has and names what is missing.
 */
export async function newsletterJob(job: Job, deps: NewsletterDeps): Promise<{ campaign: string; month: string; missing: string }> {
  const { config } = deps;
  const attempts = job.opts.attempts ?? 1;
  const last = job.attemptsMade + 1 >= attempts;
  const month = monthOf(occurrenceOf(job, deps.now()), config.timezone);
  const r = await runNewsletter(deps, {
    month,
    feed: async () => {
      try {
        return await fetchFeed(config.newsletter.feed_url ?? '', config.newsletter.feed_timeout_ms);
      } catch (err) {
        if (err instanceof FeedUnavailable && !last) throw new Error(`${err.message} (try ${job.attemptsMade + 1} of ${attempts}; will retry)`);
        throw err;
      }
    },
  });
  return { campaign: r.campaign.id, month: r.month, missing: r.missing };
}

/**
 * The weekly digest: reports the last complete week before the occurrence.
 * Recipients who already had it are skipped, so a retry sends only to those
 * the mail server did not take; a transient failure fails the job to retry.
 */
export async function digestJob(job: Job, deps: DigestDeps): Promise<{ week: string; sent: number; skipped: number; failed: number }> {
  const week = weekBefore(occurrenceOf(job, deps.now()), deps.config.timezone);
  const r = await sendDigest(deps, week);
  const retry = r.failed.filter((f) => f.transient);
  if (retry.length > 0) throw new Error(`digest ${week.key} not sent to ${retry.map((f) => f.to).join(', ')}: ${retry[0]!.reason}`);
  return { week: week.key, sent: r.sent.length, skipped: r.skipped.length, failed: r.failed.length };
}
