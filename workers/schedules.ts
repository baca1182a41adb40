import { Worker, type Job } from 'bullmq';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { RedisHandle } from '../src/redis/connection.js';
import { RECURRING_QUEUE, runSeries, type RecurringDeps, type SeriesJobData } from '../src/recurring.js';
import { Scheduler } from '../src/scheduler.js';

/**
 * Workers for what runs on Crier's own clock, each fed by BullMQ job
 * schedulers (cron in the team's time zone): recurring campaigns. The run
 * handlers take the occurrence instant from the job (prevMillis), so a run
 * that fires late or is retried still works on the occurrence it was for.
 */

export const SCHEDULE_QUEUES: string[] = [RECURRING_QUEUE];

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
  for (const name of opts.queues) {
    if (name !== RECURRING_QUEUE) continue;
    const w = new Worker<SeriesJobData>(name, (job: Job<SeriesJobData>) => runSeries(deps, job.data.series, occurrenceOf(job, now())), {
      connection: handle.options,
      prefix: config.redis_prefix,
      concurrency: 2,
      ...opts.lock,
    });
    w.on('error', (err) => log.warn({ queue: name, err: err.message }, 'worker error'));
    w.on('failed', (job, err) => log.error({ queue: name, jobId: job?.id, err: err.message }, 'scheduled run failed'));
    workers.push(w);
  }
  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await scheduler.close();
    },
  };
}
