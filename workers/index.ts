import { Queue, Worker, type Job } from 'bullmq';
import type { ChannelAdapter } from '../channels/adapter.js';
import { channelDefinition, channelNames } from '../channels/registry.js';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { RedisHandle } from '../src/redis/connection.js';
import { CAMPAIGN_QUEUE, deliverQueueName, type CampaignJobData, type DeliverJobData } from '../src/scheduler.js';
import { PausedForRateLimit, processDeliverJob, type DeliverDeps } from './deliver.js';
import { processCampaignJob } from './plan.js';
import { onDeliverJobFailed, onPlanJobFailed } from './failsafe.js';
import { guardChannel, type ChannelGuard } from './channel-guard.js';
import { specialDeliveries } from './specials.js';
import { COLLECT_QUEUE, startCollectWorker, type CollectWorker } from './collect/worker.js';
import { SCHEDULE_QUEUES, startScheduleWorkers } from './schedules.js';
import { wakeOnDueTimes, type Waker } from './waker.js';

/** The queue names a worker process can serve: `campaigns`, `deliver-<channel>` and `collect`. */
export function allQueueNames(): string[] {
  return [CAMPAIGN_QUEUE, ...channelNames().map(deliverQueueName), COLLECT_QUEUE, ...SCHEDULE_QUEUES];
}

export interface WorkerPool {
  /** Waits for in-flight jobs to finish, then closes adapters and queues. */
  close(): Promise<void>;
  workers: Worker[];
}

export interface StartWorkersOptions {
  config: Config;
  handle: RedisHandle;
  log: Logger;
  queues?: string[];
  now?: () => Date;
  /**
   * Replaces the registry's adapter factory for the channels named. Tests use it to give
   * the X adapter a private CA (`ca`), since NODE_EXTRA_CA_CERTS is read only at process start.
   */
  adapters?: Partial<Record<string, (config: Config) => ChannelAdapter>>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startWorkers(opts: StartWorkersOptions): WorkerPool {
  const { config, handle, log } = opts;
  const now = opts.now ?? (() => new Date());
  const prefix = config.redis_prefix;
  const wanted = opts.queues ?? allQueueNames();
  const known = new Set(allQueueNames());
  const queues = new Map<string, Queue>();
  const queue = (name: string) => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: handle.options, prefix });
      q.on('error', (err) => log.debug({ queue: name, err: err.message }, 'queue connection error'));
      queues.set(name, q);
    }
    return q;
  };
  const adapters: ChannelAdapter[] = [];
  const workers: Worker[] = [];
  const guards: ChannelGuard[] = [];
  const collectors: CollectWorker[] = [];
  // Delayed jobs (a campaign's send time, an embargo) start on time, not on Redis's next 100 ms tick.
  const wakers: Waker[] = [];
  // A killed worker's active jobs are retried once their lock lapses and the stalled check runs.
  // Every recipient is marked as it goes, so a batch picked up again repeats at most its message in
  // flight: a job may stall many times (each a machine that died holding it) before BullMQ gives up
  // on it (BullMQ's default, 1, failed whole batches when two workers died holding the same one).
  const lock = { lockDuration: config.worker_lock_ms, stalledInterval: config.worker_lock_ms, maxStalledCount: 20 };
  const onError = (name: string) => (err: Error) => log.warn({ queue: name, err: err.message }, 'worker error');
  // Recurring campaigns, the newsletter run and the digest: job-scheduler queues (workers/schedules.ts).
  const schedules = startScheduleWorkers({ config, handle, log, now, queues: wanted.filter((q) => SCHEDULE_QUEUES.includes(q)), lock });
  workers.push(...schedules.workers);

  for (const name of wanted) {
    if (!known.has(name)) throw new Error(`unknown queue ${name}`);
    if (name === COLLECT_QUEUE) {
      collectors.push(startCollectWorker({ config, handle, log, now: opts.now }));
      continue;
    }
    if (SCHEDULE_QUEUES.includes(name)) continue;
    if (name === CAMPAIGN_QUEUE) {
      const w = new Worker<CampaignJobData>(
        name,
        (job: Job<CampaignJobData>) => processCampaignJob(job, { config, redis: handle.redis, log, now, deliverQueue: (ch) => queue(deliverQueueName(ch)) }),
        { connection: handle.options, prefix, concurrency: 20, ...lock },
      );
      w.on('error', onError(name));
      w.on('failed', onPlanJobFailed(handle.redis, prefix, log));
      workers.push(w);
      wakers.push(wakeOnDueTimes(handle.redis, prefix, name, log));
      continue;
    }
    const channel = name.slice('deliver-'.length);
    const settings = config.channelSettings(channel);
    const adapter = (opts.adapters?.[channel] ?? channelDefinition(channel)!.create)(config);
    adapters.push(adapter);
    const guard = guardChannel({ channel, adapter, queue: queue(name), redis: handle.redis, prefix, log });
    guards.push(guard);
    const deps: DeliverDeps = {
      config,
      redis: handle.redis,
      log: log.child({ channel }),
      adapter,
      now,
      throttle: throttle(handle, `${prefix}:rate:${channel}`, settings.rate_per_second),
      pauseUntil: async (resetAt) => queue(name).rateLimit(Math.max(1000, resetAt.getTime() - Date.now())),
      pauseChannel: (reason) => guard.pause(reason),
      special: specialDeliveries(config, handle),
    };
    const w = new Worker<DeliverJobData>(
      name,
      async (job: Job<DeliverJobData>, token?: string, signal?: AbortSignal) => {
        try {
          await processDeliverJob(job, deps, token, signal);
        } catch (err) {
          // The queue is paused until the reset; hand the job back without counting a try.
          if (err instanceof PausedForRateLimit) throw Worker.RateLimitError();
          throw err;
        }
      },
      // A limiter must exist for a manual rate limit (429 reset) to pause the queue; per-message
      // rates are kept by throttle() instead, since a job is a batch.
      { connection: handle.options, prefix, concurrency: settings.concurrency, limiter: { max: 1_000_000, duration: 1000 }, ...lock },
    );
    w.on('error', onError(name));
    w.on('failed', onDeliverJobFailed(handle.redis, prefix, log));
    // A lock that could not be renewed (Redis away longer than worker_lock_ms) means the job may be run
    // again elsewhere once it is back: this run stops before its next send.
    w.on('lockRenewalFailed', (ids) => ids.forEach((id) => w.cancelJob(id, 'lock lost')));
    workers.push(w);
    wakers.push(wakeOnDueTimes(handle.redis, prefix, name, log));
  }
  log.info({ queues: wanted }, 'workers started');
  return {
    workers,
    async close() {
      for (const g of guards) g.stop();
      for (const k of wakers) k.stop();
      await Promise.all([...workers.map((w) => w.close()), ...collectors.map((c) => c.close())]);
      await schedules.close();
      await Promise.all(adapters.map((a) => a.close().catch(() => undefined)));
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

/**
 * A fixed one-second window shared by every worker process through Redis:
 * at most `perSecond` messages start in any second.
 */
function throttle(handle: RedisHandle, key: string, perSecond: number): () => Promise<boolean> {
  if (perSecond <= 0) return async () => false;
  return async () => {
    for (let waited = false; ; waited = true) {
      const second = Math.floor(Date.now() / 1000);
      const k = `${key}:${second}`;
      const [[, n]] = (await handle.redis.multi().incr(k).expire(k, 5).exec()) as [[null, number], [null, number]];
      if (n <= perSecond) return waited;
      await sleep((second + 1) * 1000 - Date.now() + 1);
    }
  };
}
