import type { Redis } from 'ioredis';
import { listReleases } from '../../channels/press/store.js';
import { channelCounts, listCampaigns, type ChannelCounts } from '../domain/campaigns.js';
import type { Catalogue, Measure } from '../domain/measures.js';
import type { Observation, ObservationStore } from '../domain/observations.js';
import { mentionsOf, type Mention } from './coverage.js';
import { periodOf, previousPeriod, type Period, type PeriodKind } from '../domain/periods.js';

/**
 * What one week's digest says, as data: every figure comes from the
 * observations dataset (never invented: a period with no observation is
 * "no data", not 0), each with the sources and collection time behind it.
 *
 * A measure is shown for the period it is kept in: measures kept per day or
 * week are shown for the digest's week (days roll up by the catalogue's rule:
 * sum, or the last reading; `none` only counts a value kept for the week
 * itself); monthly and quarterly ones for the month or quarter the week ends
 * in, against the one before, so a figure is never split or guessed.
 */

export const TREND_POINTS = 8;

export interface Figure {
  value: number;
  /** Every source behind it (x, manual …). */
  sources: string[];
  /** The latest collection time of the observations behind it. */
  collectedAt: Date;
}

export type TargetStatus = 'on track' | 'at risk' | 'off track';

export interface MeasureRow {
  measure: Measure;
  period: Period;
  previous: Period;
  current?: Figure;
  last?: Figure;
  /** Oldest first, ending with `period`; undefined = no data for that point. */
  trend: Array<number | undefined>;
  status?: TargetStatus;
}

export interface CampaignRow {
  id: string;
  title: string;
  kind: string;
  status: string;
  sendAt: Date;
  channels: Record<string, ChannelCounts>;
}

export interface ReleaseRow {
  slug: string;
  headline: string;
  publishedAt: Date;
  url: string;
  /** The media mentions the media collector linked to it (published since the start of the week). */
  mentions: Mention[];
}

export interface Digest {
  week: Period;
  lastWeek: Period;
  zone: string;
  generatedAt: Date;
  headings: Array<{ heading: string; rows: MeasureRow[] }>;
  campaigns: CampaignRow[];
  releases: ReleaseRow[];
}

export interface DigestSources {
  store: ObservationStore;
  catalogue: Catalogue;
  redis: Redis;
  prefix: string;
  publicUrl: string;
  zone: string;
  now: Date;
}

/** The kind of period a measure is shown for in a weekly digest. */
export function shownAs(m: Measure): PeriodKind {
  return m.period === 'day' || m.period === 'week' ? 'week' : m.period;
}

/**
 * Target status: on track when the figure meets the target in the good
 * direction; at risk when within 10% of it; off track beyond that.
 */
export function targetStatus(value: number, target: number, good: 'up' | 'down'): TargetStatus {
  const shortfall = good === 'up' ? target - value : value - target;
  if (shortfall <= 0) return 'on track';
  return shortfall <= Math.abs(target) * 0.1 ? 'at risk' : 'off track';
}

function figureOf(obs: Observation[], value: number): Figure {
  let latest = 0;
  const sources = new Set<string>();
  for (const o of obs) {
    sources.add(o.source);
    latest = Math.max(latest, Date.parse(o.collected_at));
  }
  return { value, sources: [...sources].sort(), collectedAt: new Date(latest) };
}

/**
 * The organisation-level figure of one measure for one period, from its
 * observations (already narrowed to subject ''): the period's own value
 * (summed across a breakdown such as tone, where there is no total), else,
 * for a week, its days rolled up.
 */
export function figureFor(m: Measure, p: Period, obs: Observation[]): Figure | undefined {
  const own = obs.filter((o) => o.period_kind === p.kind && o.period === p.key);
  if (own.length > 0) {
    const total = own.filter((o) => Object.keys(o.dimensions).length === 0);
    const use = total.length > 0 ? total : own;
    return figureOf(use, use.reduce((s, o) => s + o.value, 0));
  }
  if (p.kind !== 'week' || m.rollup === 'none') return undefined;
  const start = p.start.getTime();
  const end = p.end.getTime();
  const days = obs.filter((o) => o.period_kind === 'day' && Date.parse(o.period_start) >= start && Date.parse(o.period_start) < end);
  if (days.length === 0) return undefined;
  const plain = days.filter((o) => Object.keys(o.dimensions).length === 0);
  const use = plain.length > 0 ? plain : days;
  if (m.rollup === 'sum') return figureOf(use, use.reduce((s, o) => s + o.value, 0));
  // 'last': the latest day's reading (summed across a breakdown on that day).
  const lastStart = Math.max(...use.map((o) => Date.parse(o.period_start)));
  const lastDay = use.filter((o) => Date.parse(o.period_start) === lastStart);
  return figureOf(lastDay, lastDay.reduce((s, o) => s + o.value, 0));
}

async function measureRow(src: DigestSources, m: Measure, week: Period): Promise<MeasureRow> {
  const kind = shownAs(m);
  const period = kind === 'week' ? week : periodOf(kind, new Date(week.end.getTime() - 1), src.zone);
  const points: Period[] = [];
  for (let i = TREND_POINTS - 1; i >= 0; i--) points.push(previousPeriod(period, i));
  const obs = await src.store.range(m.name, { from: points[0]!.start, to: period.end, subject: '' });
  const figures = points.map((p) => figureFor(m, p, obs));
  const current = figures[TREND_POINTS - 1];
  const last = figures[TREND_POINTS - 2];
  return {
    measure: m,
    period,
    previous: points[TREND_POINTS - 2]!,
    ...(current ? { current } : {}),
    ...(last ? { last } : {}),
    trend: figures.map((f) => f?.value),
    ...(current && m.target !== undefined ? { status: targetStatus(current.value, m.target, m.good) } : {}),
  };
}

/** The order the issue and the team read the headings in; headings the team added come after. */
export const DIGEST_ORDER = ['Media coverage', 'Social media growth', 'Website growth', 'Keeping communities informed', 'Direct engagement', 'Reference groups', 'Grants scheme', 'Consultations and surveys'];

export async function buildDigest(src: DigestSources, week: Period): Promise<Digest> {
  const rank = (h: string) => (DIGEST_ORDER.includes(h) ? DIGEST_ORDER.indexOf(h) : DIGEST_ORDER.length);
  const groups = src.catalogue.byHeading().sort(([a], [b]) => rank(a) - rank(b));
  const rows = await Promise.all(groups.map(async ([heading, measures]) => ({ heading, rows: await Promise.all(measures.map((m) => measureRow(src, m, week))) })));
  const inWeek = (d: Date) => d >= week.start && d < week.end;

  const campaigns: CampaignRow[] = [];
  for (const c of await listCampaigns(src.redis, src.prefix, 2000)) {
    if (!inWeek(c.sendAt) || c.status === 'cancelled' || c.status === 'draft' || c.status === 'awaiting_approval') continue;
    campaigns.push({ id: c.id, title: c.title, kind: c.kind, status: c.status, sendAt: c.sendAt, channels: await channelCounts(src.redis, src.prefix, c) });
  }
  campaigns.sort((a, b) => a.sendAt.getTime() - b.sendAt.getTime());

  const published = (await listReleases(src.redis, src.prefix, 500, src.now)).filter((r) => inWeek(r.publishedAt)).reverse();
  const mentions = await mentionsOf(src.redis, src.prefix, new Set(published.map((r) => r.slug)), week.start);
  const releases: ReleaseRow[] = published.map((r) => ({
    slug: r.slug,
    headline: r.headline,
    publishedAt: r.publishedAt,
    url: `${src.publicUrl}/press/${r.slug}`,
    mentions: mentions.get(r.slug) ?? [],
  }));
  return { week, lastWeek: previousPeriod(week), zone: src.zone, generatedAt: src.now, headings: rows, campaigns, releases };
}

/** The week a digest sent at `at` reports: the last complete week. */
export function weekBefore(at: Date, zone: string): Period {
  return previousPeriod(periodOf('week', at, zone));
}
