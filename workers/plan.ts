import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { channelDefinition } from '../channels/registry.js';
import type { AudienceSelector } from '../channels/adapter.js';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import { appendAudit } from '../src/domain/audit.js';
import { audienceFilter, audienceKeys, listOptOutField } from '../src/domain/audience.js';
import { ADD_BATCH, PLANNED } from '../src/domain/campaign-scripts.js';
import { beginSending, campaignKeys, findCampaign, type Campaign } from '../src/domain/campaigns.js';
import { channelStartsAt } from '../src/domain/embargo.js';
import { holdReason } from '../src/domain/purdah.js';
import { runScript } from '../src/redis/scripts.js';
import { readdFinishedBatches } from '../src/reconcile.js';
import { deliverJobOptions, type CampaignJobData, type DeliverJobData } from '../src/scheduler.js';

/**
 * The campaign job: at send time, decide whether the campaign may go (current
 * version, not cancelled, not held by the pre-election period), then fan it
 * out into delivery batches.
 *
 * A batch is a fixed range of subscriber sequence numbers, so batch n of a
 * campaign is the same whenever planning runs: re-planning after a crash
 * finds each batch already registered (first registration wins, in Redis) and
 * each job already added (same job id), and doubles nothing. Memory holds one
 * page of ids at a time, whatever the audience size.
 */

/** Delivery jobs added per addBulk call while planning. */
const BULK = 50;

export interface PlanDeps {
  config: Config;
  redis: Redis;
  log: Logger;
  deliverQueue(channel: string): Queue;
  now(): Date;
}

export async function processCampaignJob(job: Job<CampaignJobData>, deps: PlanDeps): Promise<string> {
  const { config, redis, log } = deps;
  const prefix = config.redis_prefix;
  const { id, version } = job.data;
  const c = await findCampaign(redis, prefix, id);
  if (!c) return 'missing';
  const now = deps.now();
  const hold = holdReason(config, c, now);
  // Which channels were planned before (read with BEGIN, which leaves the counts alone: one round trip less
  // between a campaign's due time and its first message, bench/precision.ts).
  const [outcome, counts] = await Promise.all([beginSending(redis, prefix, id, version, hold, now), redis.hgetall(campaignKeys(prefix, id).counts)]);
  const clog = log.child({ campaignId: id });
  if (outcome === 'held') {
    clog.warn({ reason: hold }, 'campaign held');
    await appendAudit(redis, prefix, { actor: 'scheduler', action: 'campaign.hold', subject: id, detail: { reason: hold } });
    return 'held';
  }
  if (outcome !== 'sending' && outcome !== 'resume') {
    clog.info({ outcome, version }, 'campaign job skipped');
    return outcome;
  }
  clog.info({ outcome }, 'planning campaign');
  // Channels planned before (a send held by the pre-election period, now released): their batches' jobs
  // ended early, so what is left of them gets new jobs.
  const before = new Set(Object.keys(c.channels).filter((ch) => counts[`${ch}:planned`] === '1'));
  for (const channel of Object.keys(c.channels)) await planChannel(c, channel, deps);
  if (before.size > 0) {
    const deliverJob = (channel: string, jobId: string) => deliverJobOptions(config.channelSettings(channel), jobId);
    const n = await readdFinishedBatches({ redis, prefix, deliverQueue: deps.deliverQueue, deliverJobOptions: deliverJob, now: deps.now }, id, before);
    if (n.readded + n.failed > 0) clog.info(n, 'batches left by an earlier start put back');
  }
  return 'planned';
}

async function planChannel(c: Campaign, channel: string, deps: PlanDeps): Promise<void> {
  const { config, redis } = deps;
  const prefix = config.redis_prefix;
  const k = campaignKeys(prefix, c.id);
  const content = c.channels[channel] ?? {};
  const def = channelDefinition(channel);
  const settings = config.channelSettings(channel);
  const queue = deps.deliverQueue(channel);
  // An embargo binds the whole campaign: public channels wait for it (src/domain/embargo.ts).
  const startDelay = Math.max(0, channelStartsAt(c, channel).getTime() - deps.now().getTime());
  // Batches are registered (first registration wins) and their jobs added in groups: one addBulk per group.
  let pending: Array<{ batch: string; ids: string[]; delay: number }> = [];
  let added = 0;
  const flush = async () => {
    const group = pending;
    pending = [];
    if (group.length === 0) return;
    await Promise.all(group.map((b) => runScript(redis, ADD_BATCH, [k.hash, k.counts, k.batches], [channel, b.batch, b.ids.join(',')])));
    await queue.addBulk(
      group.map((b) => ({
        name: 'deliver',
        data: { campaignId: c.id, channel, batch: `${channel}:${b.batch}` } satisfies DeliverJobData,
        opts: deliverJobOptions(settings, `${c.id}:${channel}:${b.batch}`, b.delay),
      })),
    );
    added += group.length;
  };
  const register = async (batch: string, ids: string[], delay = startDelay) => {
    pending.push({ batch, ids, delay });
    // The first batch goes at once, so sending starts while the rest is planned.
    if (pending.length >= (added === 0 ? 1 : BULK)) await flush();
  };
  if (def?.audience) {
    const selector = def.audience(content);
    let recipients = 0;
    for await (const { batch, ids } of audienceBatches(redis, prefix, selector, config.batch_size)) {
      await register(String(batch), ids);
      recipients += ids.length;
    }
    const log = deps.log.child({ campaignId: c.id, channel });
    if (recipients === 0) log.warn({ audience: selector }, `no recipients: the list is empty or nobody subscribed matches${selector.withPhone ? ' and gave a mobile number' : ''}`);
    else log.info({ recipients }, 'audience planned');
  } else {
    await register('0', ['-']);
  }
  // Press releases publish to the public feed at the embargo time (or now).
  if (channel === 'press') {
    const at = typeof content.embargo_until_iso === 'string' ? new Date(content.embargo_until_iso).getTime() : 0;
    await register('publish', ['publish'], Math.max(0, at - deps.now().getTime()));
  }
  await flush();
  await runScript(redis, PLANNED, [k.hash, k.counts], [channel, deps.now().toISOString()]);
}

/**
 * Batch n holds the audience members whose sequence number is in
 * (n·size, (n+1)·size], filtered by subscription status, area and topic
 * (and, for SMS, by having a mobile number). The list is read a page of
 * PAGE_BATCHES batches at a time (one range read and one pipelined read of the
 * members' fields per page), so memory holds one page whatever the audience.
 */
const PAGE_BATCHES = 10;

export async function* audienceBatches(redis: Redis, prefix: string, selector: AudienceSelector, size: number): AsyncGenerator<{ batch: number; ids: string[] }> {
  const k = audienceKeys(prefix);
  const key = selector.list ? k.list(selector.list) : k.subs;
  const matches = audienceFilter(selector);
  const optOutField = selector.list ? listOptOutField(selector.list) : 'status';
  let cursor = 0; // always a batch boundary: the page covers sequence numbers (cursor, cursor + PAGE_BATCHES·size]
  for (;;) {
    const page = await redis.zrangebyscore(key, `(${cursor}`, cursor + PAGE_BATCHES * size, 'WITHSCORES');
    if (page.length === 0) {
      // A gap (members removed): jump to the batch of the next member, if any.
      const next = await redis.zrangebyscore(key, `(${cursor}`, '+inf', 'WITHSCORES', 'LIMIT', 0, 1);
      if (next.length < 2) return;
      cursor = Math.floor((Number(next[1]) - 1) / size) * size;
      continue;
    }
    cursor += PAGE_BATCHES * size;
    const members: string[] = [];
    const batchOf: number[] = [];
    for (let i = 0; i < page.length; i += 2) {
      members.push(page[i]!);
      batchOf.push(Math.floor((Number(page[i + 1]) - 1) / size));
    }
    const pipe = redis.pipeline();
    for (const id of members) pipe.hmget(k.sub(id), 'status', 'area', 'topics', 'phone', optOutField);
    const rows = ((await pipe.exec()) ?? []).map(([, r]) => r as (string | null)[]);
    let current = -1;
    let ids: string[] = [];
    for (let i = 0; i < members.length; i++) {
      const [status, area, tops, phone, optOut] = rows[i] ?? [];
      const keep = status === 'subscribed' && !(selector.list && optOut) && (!selector.withPhone || !!phone) && (!matches || matches(area ?? '', tops ?? ''));
      if (batchOf[i] !== current) {
        if (ids.length > 0) yield { batch: current, ids };
        current = batchOf[i]!;
        ids = [];
      }
      if (keep) ids.push(members[i]!);
    }
    if (ids.length > 0) yield { batch: current, ids };
  }
}
