import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Config } from '../../src/config.js';
import { UserError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import type { RedisHandle } from '../../src/redis/connection.js';
import { collectorCron, collectorDefinition, collectorDefinitions, collectorEnabled } from './registry.js';
import { runCollector, type CollectDeps } from './run.js';
import { NeedsReauthError, PermanentError, RateLimitedError } from './types.js';

/**
 * The `collect` queue: one BullMQ job scheduler per source (`collect:<source>`,
 * cron in the config's zone, so 06:30 stays 06:30 across BST/GMT), one worker
 * that runs whichever collector a job names.
 *  - rate limited → the job moves to the reset time (not a failed try)
 *  - credentials refused or a request the API will never accept → failed, not retried
 *  - anything else → retried with backoff (3 tries), then failed until the next run
 */
export const COLLECT_QUEUE = 'collect';
export const schedulerId = (source: string): string => `collect:${source}`;

export interface CollectJobData {
  source: string;
}

const JOB_OPTS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 60_000 },
  removeOnComplete: { count: 200 },
  removeOnFail: { count: 200 },
};

export function collectQueue(config: Config, handle: RedisHandle): Queue<CollectJobData> {
  return new Queue<CollectJobData>(COLLECT_QUEUE, { connection: handle.options, prefix: config.redis_prefix });
}

/** `crier start` and `crier worker` (when serving `collect`): the schedulers as the config says. */
export async function reconcileCollectors(config: Config, handle: RedisHandle, log: Logger): Promise<string[]> {
  const queue = collectQueue(config, handle);
  try {
    return await scheduleCollectors(queue, config, log);
  } finally {
    await queue.close();
  }
}

/**
 * Makes the job schedulers match the config: each enabled, configured source
 * runs on its cron; the others have none. Idempotent: every worker process may call it.
 */
export async function scheduleCollectors(queue: Queue<CollectJobData>, config: Config, log: Logger): Promise<string[]> {
  const scheduled: string[] = [];
  for (const def of collectorDefinitions()) {
    const why = def.unconfigured(config);
    if (why || !collectorEnabled(config, def)) {
      await queue.removeJobScheduler(schedulerId(def.source));
      continue;
    }
    const pattern = collectorCron(config, def);
    try {
      await queue.upsertJobScheduler(schedulerId(def.source), { pattern, tz: config.timezone }, { name: 'collect', data: { source: def.source }, opts: JOB_OPTS });
    } catch (err) {
      if (err instanceof Error && !/redis|connection|ECONN/i.test(err.message)) {
        throw new UserError(`"${pattern}" is not a cron pattern BullMQ accepts (${err.message})`, 'CRIER_ERR_CONFIG', { file: config.configFile, field: `metrics.collectors.${def.source}.cron` });
      }
      throw err;
    }
    scheduled.push(def.source);
  }
  const known = new Set(collectorDefinitions().map((d) => d.source));
  for (const source of Object.keys(config.metrics.collectors)) {
    if (!known.has(source)) log.warn({ source, known: [...known] }, 'metrics.collectors names a source Crier does not have; ignored');
  }
  log.info({ scheduled }, 'collectors scheduled');
  return scheduled;
}

export async function processCollectJob(job: Job<CollectJobData>, token: string | undefined, deps: CollectDeps): Promise<{ observations: number }> {
  const def = collectorDefinition(job.data.source);
  if (!def) throw new UnrecoverableError(`unknown collector source "${job.data.source}"`);
  try {
    const result = await runCollector(def, deps);
    return { observations: result.observations };
  } catch (err) {
    if (err instanceof RateLimitedError) {
      await job.moveToDelayed(Math.max(err.resetAt.getTime(), Date.now() + 1000), token);
      throw new DelayedError();
    }
    if (err instanceof NeedsReauthError || err instanceof PermanentError) throw new UnrecoverableError(err.message);
    throw err;
  }
}

export interface CollectWorker {
  worker: Worker<CollectJobData>;
  close(): Promise<void>;
}

export function startCollectWorker(opts: { config: Config; handle: RedisHandle; log: Logger; now?: () => Date; fetch?: typeof fetch }): CollectWorker {
  const { config, handle } = opts;
  const log = opts.log.child({ queue: COLLECT_QUEUE });
  const deps: CollectDeps = { config, redis: handle.redis, log, now: opts.now, fetch: opts.fetch };
  const worker = new Worker<CollectJobData>(COLLECT_QUEUE, (job, token) => processCollectJob(job, token, deps), {
    connection: handle.options,
    prefix: config.redis_prefix,
    concurrency: 2,
    lockDuration: config.worker_lock_ms,
    stalledInterval: config.worker_lock_ms,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'worker error'));
  return {
    worker,
    async close() {
      await worker.close();
    },
  };
}
