import { campaignKeys, listCampaigns } from '../../src/domain/campaigns.js';
import { audienceKeys } from '../../src/domain/audience-keys.js';
import { listNames } from '../../src/domain/audience.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { periodOf, previousPeriod, type Period } from '../../src/domain/periods.js';
import type { CollectContext, CollectorDefinition, CollectResult } from './types.js';

/**
 * Email, from Crier's own records (no network):
 *  - per campaign sent in the last `metrics.email.campaign_days` days, on the
 *    `email` channel: delivered (accepted by the mail server) and failed, with
 *    the campaign id as subject and the week it was due as period; plus the
 *    week's totals (weeks wholly inside the window only);
 *  - per list, this week and last: email.list_size (subscribed addresses now,
 *    this week's figure; last week's stays as collected then) and
 *    email.unsubscribed (people on the list whose unsubscribe time falls in the
 *    week; unsubscribing is global, so someone on two lists counts on both).
 * Opens are not counted: no tracking pixel (see the README for why).
 */

const DAY = 86_400_000;
const PAGE = 1000;

async function campaignCounts(ctx: CollectContext, now: Date, since: Date): Promise<ObservationInput[]> {
  const out: ObservationInput[] = [];
  const weekly = new Map<string, { period: Period; delivered: number; failed: number }>();
  for (const c of await listCampaigns(ctx.redis, ctx.prefix, 10_000)) {
    if (!('email' in c.channels) || c.sendAt < since || c.sendAt > now) continue;
    if (['draft', 'awaiting_approval', 'scheduled', 'held', 'cancelled'].includes(c.status)) continue;
    const [sent, failed] = await ctx.redis.hmget(campaignKeys(ctx.prefix, c.id).counts, 'email:sent', 'email:failed');
    const week = periodOf('week', c.sendAt, ctx.config.timezone);
    const delivered = Number(sent ?? 0);
    const failures = Number(failed ?? 0);
    const meta = { title: c.title.slice(0, 200), status: c.status };
    out.push(
      { measure: 'email.delivered', subject: c.id, period: week, value: delivered, source: 'email', collectedAt: now, meta },
      { measure: 'email.failed', subject: c.id, period: week, value: failures, source: 'email', collectedAt: now, meta },
    );
    if (week.start < since) continue;
    const w = weekly.get(week.key) ?? { period: week, delivered: 0, failed: 0 };
    w.delivered += delivered;
    w.failed += failures;
    weekly.set(week.key, w);
  }
  for (const w of weekly.values()) {
    out.push(
      { measure: 'email.delivered', period: w.period, value: w.delivered, source: 'email', collectedAt: now },
      { measure: 'email.failed', period: w.period, value: w.failed, source: 'email', collectedAt: now },
    );
  }
  return out;
}

async function listCounts(ctx: CollectContext, now: Date): Promise<ObservationInput[]> {
  const out: ObservationInput[] = [];
  const k = audienceKeys(ctx.prefix);
  const thisWeek = periodOf('week', now, ctx.config.timezone);
  const lastWeek = previousPeriod(thisWeek);
  for (const list of await listNames(ctx.redis, ctx.prefix)) {
    let size = 0;
    const unsub = new Map<string, number>([
      [thisWeek.key, 0],
      [lastWeek.key, 0],
    ]);
    let cursor = '0';
    do {
      const [next, flat] = await ctx.redis.zscan(k.list(list), cursor, 'COUNT', PAGE);
      cursor = next;
      const pipe = ctx.redis.pipeline();
      for (let i = 0; i < flat.length; i += 2) pipe.hmget(k.sub(flat[i]!), 'status', 'unsubscribed_at');
      for (const [err, v] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        const [status, at] = v as [string | null, string | null];
        if (status === 'subscribed') size++;
        else if (status === 'unsubscribed' && at) {
          const t = new Date(at);
          for (const w of [thisWeek, lastWeek]) if (t >= w.start && t < w.end) unsub.set(w.key, unsub.get(w.key)! + 1);
        }
      }
    } while (cursor !== '0');
    const dimensions = { list };
    out.push({ measure: 'email.list_size', dimensions, period: thisWeek, value: size, source: 'email', collectedAt: now });
    for (const w of [lastWeek, thisWeek]) out.push({ measure: 'email.unsubscribed', dimensions, period: w, value: unsub.get(w.key)!, source: 'email', collectedAt: now });
  }
  return out;
}

export async function collectEmail(ctx: CollectContext): Promise<CollectResult> {
  const now = ctx.now();
  const since = new Date(now.getTime() - ctx.config.metrics.email.campaign_days * DAY);
  const inputs = [...(await campaignCounts(ctx, now, since)), ...(await listCounts(ctx, now))];
  await ctx.store.recordMany(inputs);
  return { observations: inputs.length, warnings: [] };
}

export const emailCollector: CollectorDefinition = {
  source: 'email',
  description: "Email delivered, failed and unsubscribed, and list sizes, from Crier's own records",
  measures: ['email.delivered', 'email.failed', 'email.unsubscribed', 'email.list_size'],
  cron: '50 * * * *',
  unconfigured: () => undefined,
  create: () => ({ source: 'email', run: collectEmail }),
};
