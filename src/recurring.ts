import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { UserError } from './errors.js';
import type { Logger } from './log.js';
import { appendAudit } from './domain/audit.js';
import type { CampaignDraft } from './domain/campaign-file.js';
import { findCampaign, type Campaign } from './domain/campaigns.js';
import { nextOccurrence } from './domain/recurrence.js';
import {
  findSeries,
  getSeries,
  markSeriesCancelled,
  occurrenceDraft,
  occurrenceId,
  saveSeries,
  seriesKeys,
  seriesSchedulerId,
  type Series,
} from './domain/series.js';
import type { Scheduler } from './scheduler.js';
import { formatLocal } from './time.js';

/**
 * Recurring campaigns on BullMQ job schedulers. A series always has its next
 * occurrence materialised as an ordinary scheduled campaign (visible in
 * `campaign list`, cancellable or reschedulable on its own); each time the job
 * scheduler fires for occurrence n it makes sure n exists and creates n+1.
 * Occurrence ids derive from the series and the instant, so a retried or
 * repeated run creates nothing twice.
 */

export const RECURRING_QUEUE = 'recurring';

export interface SeriesJobData {
  series: string;
}

export interface RecurringDeps {
  config: Config;
  redis: Redis;
  scheduler: Scheduler;
  log: Logger;
  now(): Date;
}

const runsKey = (prefix: string, id: string) => `${seriesKeys(prefix, id).hash}:runs`;

/** Statuses an occurrence can still be cancelled from when its series is. */
const PENDING = new Set(['draft', 'awaiting_approval', 'scheduled', 'held']);

export async function createSeries(deps: RecurringDeps, draft: CampaignDraft & { repeat: { cron: string; until?: Date } }, actor: string): Promise<{ series: Series; first: Campaign | null }> {
  const { config, redis, scheduler } = deps;
  const now = deps.now();
  const series = await saveSeries(redis, config.redis_prefix, draft, actor, now);
  await appendAudit(redis, config.redis_prefix, { actor, action: 'series.create', subject: series.id, detail: { title: series.title, cron: series.cron, timezone: series.timezone } });
  await scheduler.queue(RECURRING_QUEUE).upsertJobScheduler(
    seriesSchedulerId(series.id),
    { pattern: series.cron, tz: series.timezone, startDate: series.startAt, ...(series.until ? { endDate: series.until } : {}) },
    { name: 'series', data: { series: series.id } satisfies SeriesJobData, opts: { attempts: 5, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: { count: 100 }, removeOnFail: { age: 30 * 24 * 3600 } } },
  );
  // The first occurrence at or after the start (one millisecond back, so a start exactly on an occurrence counts).
  const firstAt = nextOccurrence(series.cron, series.timezone, new Date(Math.max(series.startAt.getTime(), now.getTime()) - 1));
  const first = firstAt ? await materialise(deps, series, firstAt) : null;
  return { series, first };
}

/** The occurrence at `at` as a campaign: created once, whoever asks. Null past the series' end. */
export async function materialise(deps: RecurringDeps, s: Series, at: Date): Promise<Campaign | null> {
  const { config, redis, scheduler } = deps;
  if (s.until && at.getTime() > s.until.getTime()) return null;
  if (at.getTime() < s.startAt.getTime()) return null;
  const id = occurrenceId(s.id, at);
  const existing = await findCampaign(redis, config.redis_prefix, id);
  if (existing) return existing;
  const date = formatLocal(at, s.timezone).slice(0, 10);
  await redis.zadd(runsKey(config.redis_prefix, s.id), at.getTime(), id);
  const c = await scheduler.create(occurrenceDraft(s, at, date), { actor: s.author, id, series: s.id });
  deps.log.info({ series: s.id, campaignId: c.id, sendAt: at.toISOString() }, 'recurring campaign occurrence created');
  return c;
}

/**
 * What the job scheduler runs at occurrence `firedAt`: that occurrence exists
 * (it was created one run earlier, unless that run was lost) and the next one
 * is created. Returns the ids it made sure of.
 */
export async function runSeries(deps: RecurringDeps, seriesId: string, firedAt: Date): Promise<string[]> {
  const s = await findSeries(deps.redis, deps.config.redis_prefix, seriesId);
  if (!s || s.status !== 'active') {
    await deps.scheduler.queue(RECURRING_QUEUE).removeJobScheduler(seriesSchedulerId(seriesId));
    return [];
  }
  const ids: string[] = [];
  const current = await materialise(deps, s, firedAt);
  if (current) ids.push(current.id);
  const next = nextOccurrence(s.cron, s.timezone, firedAt);
  const upcoming = next ? await materialise(deps, s, next) : null;
  if (upcoming) ids.push(upcoming.id);
  return ids;
}

/** Occurrence campaign ids of a series, oldest first. */
export async function seriesOccurrences(redis: Redis, prefix: string, id: string): Promise<string[]> {
  return redis.zrange(runsKey(prefix, id), 0, -1);
}

/**
 * Stops a series: no more occurrences, and those not yet sent are cancelled.
 * `id` is the series id or any of its occurrences' campaign ids.
 */
export async function cancelSeries(deps: RecurringDeps, id: string, actor: string): Promise<{ series: Series; cancelled: string[] }> {
  const { config, redis, scheduler } = deps;
  const prefix = config.redis_prefix;
  let seriesId = id;
  if (!id.startsWith('s') || !(await findSeries(redis, prefix, id))) {
    const c = await findCampaign(redis, prefix, id);
    if (!c) throw new UserError(`no campaign or recurring campaign with id "${id}" (see \`crier campaign list\`)`, 'CRIER_ERR_NOT_FOUND');
    if (!c.series) throw new UserError(`campaign ${id} is not part of a recurring series; cancel it without --series`, 'CRIER_ERR_STATE');
    seriesId = c.series;
  }
  const series = await getSeries(redis, prefix, seriesId);
  await markSeriesCancelled(redis, prefix, seriesId, deps.now());
  await scheduler.queue(RECURRING_QUEUE).removeJobScheduler(seriesSchedulerId(seriesId));
  await appendAudit(redis, prefix, { actor, action: 'series.cancel', subject: seriesId, detail: { title: series.title } });
  const cancelled: string[] = [];
  for (const cid of await seriesOccurrences(redis, prefix, seriesId)) {
    const c = await findCampaign(redis, prefix, cid);
    if (!c || !PENDING.has(c.status)) continue;
    try {
      await scheduler.cancel(cid, actor);
      cancelled.push(cid);
    } catch (err) {
      // It started sending between our read and the cancel: it goes out; the series still stops.
      if (!(err instanceof UserError)) throw err;
    }
  }
  return { series: { ...series, status: 'cancelled' }, cancelled };
}
