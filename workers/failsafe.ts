import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { failPlanning, failUndelivered, findCampaign } from '../src/domain/campaigns.js';
import type { Logger } from '../src/log.js';
import type { CampaignJobData, DeliverJobData } from '../src/scheduler.js';

/**
 * When a job fails for good (attempts used up, stalled too often, an
 * unexpected error), what it could not deliver is marked failed with the
 * reason at once, so its campaign can finish instead of staying `sending`.
 * (The periodic reconcile catches what this misses, e.g. a process killed here.)
 */

async function finalFailure(job: Job | undefined): Promise<boolean> {
  return job !== undefined && (await job.isFailed());
}

export function onDeliverJobFailed(redis: Redis, prefix: string, log: Logger) {
  return (job: Job<DeliverJobData> | undefined, err: Error): void => {
    void (async () => {
      if (!job || !(await finalFailure(job))) return;
      const { campaignId, channel, batch } = job.data;
      const n = await failUndelivered(redis, prefix, campaignId, channel, batch, `delivery job failed: ${err.message}`, new Date());
      log.error({ campaignId, channel, batch, recipients: n, err: err.message }, 'delivery job failed for good: its remaining recipients are marked failed');
    })().catch((e: unknown) => log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not record a failed delivery job'));
  };
}

export function onPlanJobFailed(redis: Redis, prefix: string, log: Logger) {
  return (job: Job<CampaignJobData> | undefined, err: Error): void => {
    void (async () => {
      log.error({ campaignId: job?.data.id, err: err.message }, 'campaign job failed');
      if (!job || !(await finalFailure(job))) return;
      const c = await findCampaign(redis, prefix, job.data.id);
      if (!c || c.version !== job.data.version) return;
      await failPlanning(redis, prefix, c, `planning failed: ${err.message}`, new Date());
    })().catch((e: unknown) => log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not record a failed campaign job'));
  };
}
