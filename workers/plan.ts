import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { channelDefinition } from '../channels/registry.js';
import type { AudienceSelector } from '../channels/adapter.js';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import { appendAudit } from '../src/domain/audit.js';
import { audienceFilter, audienceFilterSets, audienceKeys, listOptOutField } from '../src/domain/audience.js';
import { ADD_BATCH, PLAN_PAGE, PLANNED, REGISTER_PAGE } from '../src/domain/campaign-scripts.js';
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
const BULK = 100;

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
  // Batches are registered first (first registration wins), then their jobs are added in groups: one addBulk
  // per group, at most one in flight while the next pages are read (Redis and this process both busy).
  let pending: Array<{ batch: string; delay: number }> = [];
  let handed = 0;
  let inflight: Promise<unknown> = Promise.resolve();
  const flush = async () => {
    const group = pending;
    pending = [];
    if (group.length === 0) return;
    await inflight;
    handed += group.length;
    inflight = queue.addBulk(
      group.map((b) => ({
        name: 'deliver',
        data: { campaignId: c.id, channel, batch: `${channel}:${b.batch}` } satisfies DeliverJobData,
        opts: deliverJobOptions(settings, `${c.id}:${channel}:${b.batch}`, b.delay),
      })),
    );
    // Awaited by the next flush (or below): a failure fails the plan there, not as an unhandled rejection.
    inflight.catch(() => undefined);
  };
  /** A registered batch's job, added with the next group. */
  const job = async (batch: string, delay = startDelay) => {
    pending.push({ batch, delay });
    // The first batch goes at once, so sending starts while the rest is planned.
    if (pending.length >= (handed === 0 ? 1 : BULK)) await flush();
  };
  if (def?.audience) {
    const selector = def.audience(content);
    let recipients = 0;
    for await (const page of planAudience(redis, prefix, selector, config.batch_size, { channel, batches: k.batches, counts: k.counts })) {
      recipients += page.recipients;
      for (const batch of page.batches) await job(String(batch));
    }
    const log = deps.log.child({ campaignId: c.id, channel });
    if (recipients === 0) log.warn({ audience: selector }, `no recipients: the list is empty or nobody subscribed matches${selector.withPhone ? ' and gave a mobile number' : ''}`);
    else log.info({ recipients }, 'audience planned');
  } else {
    await runScript(redis, ADD_BATCH, [k.hash, k.counts, k.batches], [channel, '0', '-']);
    await job('0');
  }
  // Press releases publish to the public feed at the embargo time (or now).
  if (channel === 'press') {
    const at = typeof content.embargo_until_iso === 'string' ? new Date(content.embargo_until_iso).getTime() : 0;
    await runScript(redis, ADD_BATCH, [k.hash, k.counts, k.batches], [channel, 'publish', 'publish']);
    await job('publish', Math.max(0, at - deps.now().getTime()));
  }
  await flush();
  await inflight;
  await runScript(redis, PLANNED, [k.hash, k.counts], [channel, deps.now().toISOString()]);
}

/**
 * Batch n holds the audience members whose sequence number is in
 * (n·size, (n+1)·size], filtered by subscription status, list opt-out, area
 * and topic (and, for SMS, by having a mobile number). The list is read a page
 * of batches at a time by one script (PLAN_PAGE in campaign-scripts.ts), which
 * filters in Redis, so memory holds one page whatever the audience. A page
 * covers about PAGE_MEMBERS sequence numbers, which bounds how long one call
 * holds Redis (a few milliseconds) whatever batch_size is.
 */
const PAGE_MEMBERS = 2000;

interface PagePlan {
  channel: string;
  batches: string;
  counts: string;
}

type PageReply =
  | { done: true }
  | { done: false; after: string; lo: number; hi: number; registered: { recipients: number; batches: number[] } }
  | { done: false; after: string; lo: number; hi: number; members: Array<{ id: string; batch: number; keep: boolean }> };

/** One PLAN_PAGE call: registers the page when `plan` is given and nothing in it needs JavaScript to decide. */
async function readPage(redis: Redis, prefix: string, selector: AudienceSelector, size: number, after: string, plan?: PagePlan): Promise<PageReply> {
  const k = audienceKeys(prefix);
  const key = selector.list ? k.list(selector.list) : k.subs;
  const { areas, topics } = audienceFilterSets(selector);
  const pageBatches = Math.max(1, Math.floor(PAGE_MEMBERS / size));
  const args = [
    after,
    pageBatches,
    size,
    k.sub(''),
    selector.list ? listOptOutField(selector.list) : '',
    selector.withPhone ? '1' : '',
    plan ? '1' : '',
    plan?.channel ?? '',
    areas?.size ?? 0,
    ...(areas ?? []),
    topics?.size ?? 0,
    ...(topics ?? []),
  ];
  const keys = [key, plan?.batches ?? `${key}:-`, plan?.counts ?? `${key}:-`, k.exclusionsIndexed, k.unsubscribed, selector.list ? k.optOuts(selector.list) : k.exclusionsIndexed];
  const reply = await runScript<Array<string | number>>(redis, PLAN_PAGE, keys, args);
  if (reply[0] === '') return { done: true };
  const next = String(reply[0]);
  const lo = Number(reply[2]);
  const hi = lo + pageBatches;
  if (reply[1] === 'registered') return { done: false, after: next, lo, hi, registered: { recipients: Number(reply[3]), batches: reply.slice(4).map(Number) } };
  const matches = audienceFilter(selector);
  const members: Array<{ id: string; batch: number; keep: boolean }> = [];
  for (let i = 3; i < reply.length; i += 5) {
    // 2: a value outside ASCII, which the script leaves to JavaScript's case mapping
    const keep = reply[i + 2] === 1 || (reply[i + 2] === 2 && !!matches?.(String(reply[i + 3]), String(reply[i + 4])));
    members.push({ id: String(reply[i]), batch: Number(reply[i + 1]), keep });
  }
  return { done: false, after: next, lo, hi, members };
}

/** The kept members of a page, by batch in order. */
function* byBatch(members: Array<{ id: string; batch: number; keep: boolean }>): Generator<{ batch: number; ids: string[] }> {
  let current = -1;
  let ids: string[] = [];
  for (const m of members) {
    if (!m.keep) continue;
    if (m.batch !== current) {
      if (ids.length > 0) yield { batch: current, ids };
      current = m.batch;
      ids = [];
    }
    ids.push(m.id);
  }
  if (ids.length > 0) yield { batch: current, ids };
}

/**
 * Plans a channel's audience: registers every batch (first registration wins,
 * so re-planning never doubles) and yields, page by page, the batches that
 * need a delivery job and how many recipients the page kept.
 */
export async function* planAudience(
  redis: Redis,
  prefix: string,
  selector: AudienceSelector,
  size: number,
  plan: PagePlan,
): AsyncGenerator<{ batches: number[]; recipients: number }> {
  // Pages are read ahead (up to READ_AHEAD not yet taken, each read sent as soon as the one before answers),
  // so Redis reads the next pages while the caller adds this one's jobs.
  const reads: Array<Promise<PageReply>> = []; // sent, not yet taken
  let paused: string | undefined; // where reading stopped at the limit
  const read = (after: string): void => {
    const p = readPage(redis, prefix, selector, size, after, plan);
    reads.push(p);
    p.then(
      (page) => {
        if (page.done) return;
        if (reads.length < READ_AHEAD) read(page.after);
        else paused = page.after;
      },
      () => undefined, // awaited below; not unhandled if the caller stops first
    );
  };
  read('0');
  for (;;) {
    const page = await reads[0]!;
    reads.shift();
    if (paused !== undefined) {
      const after = paused;
      paused = undefined;
      read(after);
    }
    if (page.done) return;
    if ('registered' in page) {
      yield page.registered;
      continue;
    }
    const pairs = [...byBatch(page.members)].flatMap((b) => [b.batch, b.ids.join(',')]);
    const [recipients, ...batches] = await runScript<number[]>(redis, REGISTER_PAGE, [plan.batches, plan.counts], [plan.channel, page.lo, page.hi, ...pairs]);
    yield { batches, recipients: recipients ?? 0 };
  }
}

/** Pages read ahead of the one being planned. */
const READ_AHEAD = 2;

/** The audience's batches with their members, read only (`crier campaign preview` counts and samples them). */
export async function* audienceBatches(redis: Redis, prefix: string, selector: AudienceSelector, size: number): AsyncGenerator<{ batch: number; ids: string[] }> {
  let after = '0';
  for (;;) {
    const page = await readPage(redis, prefix, selector, size, after);
    if (page.done) return;
    after = page.after;
    if ('members' in page) yield* byBatch(page.members);
  }
}
