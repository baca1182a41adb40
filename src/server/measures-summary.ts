import type { Measure } from '../domain/measures.js';
import type { Observation, ObservationStore } from '../domain/observations.js';
import { periodOf, previousPeriod, type Period, type PeriodKind } from '../domain/periods.js';

/**
 * Each measure's latest periods for the dashboard: this period and the one
 * before, the change, and a short trend. Day-kept measures are read by week
 * (the week's last reading for levels such as followers, the week's sum for
 * counts), so the page is week on week; monthly and quarterly measures
 * compare months and quarters. Organisation-level figures only (no subject);
 * a breakdown (tone, list) is added up. A period with no observation is
 * `null`: missing, never zero.
 */

export interface MeasureSummary {
  name: string;
  description: string;
  unit: string;
  good: 'up' | 'down';
  target?: number;
  /** 'week', 'month' or 'quarter'. */
  per: PeriodKind;
  current: { period: string; value: number | null };
  previous: { period: string; value: number | null };
  /** Percent change from previous to current; null when either is missing or the previous is 0. */
  changePct: number | null;
  /** Better, worse or level against the measure's good direction; null without a change. */
  verdict: 'better' | 'worse' | 'level' | null;
  /** Oldest first, `trendLength` periods ending with the current one. */
  trend: Array<{ period: string; value: number | null }>;
}

const TREND = 8;

function valueFor(m: Measure, obs: Observation[], p: Period): number | null {
  const inside = obs.filter((o) => o.subject === '' && new Date(o.period_start) >= p.start && new Date(o.period_start) < p.end);
  if (inside.length === 0) return null;
  if (m.period === 'day' && m.rollup === 'last') {
    // A level: the latest day's readings (summed over any breakdown).
    const last = inside.reduce((a, o) => (o.period_start > a ? o.period_start : a), '');
    return inside.filter((o) => o.period_start === last).reduce((s, o) => s + o.value, 0);
  }
  if (m.rollup === 'none') {
    // Not summable: only a figure kept for the period itself, without a breakdown.
    const own = inside.find((o) => o.period_kind === p.kind && Object.keys(o.dimensions).length === 0);
    return own ? own.value : null;
  }
  const own = inside.filter((o) => o.period_kind === p.kind);
  return (own.length ? own : inside).reduce((s, o) => s + o.value, 0);
}

export async function summariseMeasure(store: ObservationStore, m: Measure, now: Date, zone: string): Promise<MeasureSummary> {
  const per: PeriodKind = m.period === 'day' ? 'week' : m.period;
  const current = periodOf(per, now, zone);
  const periods = Array.from({ length: TREND }, (_, i) => previousPeriod(current, TREND - 1 - i));
  const obs = await store.range(m.name, { from: periods[0]!.start, to: current.end, subject: '' });
  const trend = periods.map((p) => ({ period: p.key, value: valueFor(m, obs, p) }));
  const cur = trend[TREND - 1]!;
  const prev = trend[TREND - 2]!;
  const changePct = cur.value !== null && prev.value !== null && prev.value !== 0 ? Math.round(((cur.value - prev.value) / Math.abs(prev.value)) * 1000) / 10 : null;
  let verdict: MeasureSummary['verdict'] = null;
  if (cur.value !== null && prev.value !== null) {
    const diff = cur.value - prev.value;
    verdict = diff === 0 ? 'level' : (diff > 0) === (m.good === 'up') ? 'better' : 'worse';
  }
  return {
    name: m.name,
    description: m.description,
    unit: m.unit,
    good: m.good,
    ...(m.target !== undefined ? { target: m.target } : {}),
    per,
    current: cur,
    previous: prev,
    changePct,
    verdict,
    trend,
  };
}

/** A small line chart of the trend as inline SVG (for the page, not email); gaps where data is missing. */
export function sparkline(trend: MeasureSummary['trend'], width = 160, height = 36): string {
  const values = trend.map((t) => t.value).filter((v): v is number => v !== null);
  if (values.length === 0) return '';
  const min = Math.min(...values);
  const max = Math.max(...values);
  const x = (i: number) => Math.round((i / (trend.length - 1)) * (width - 8) + 4);
  const y = (v: number) => Math.round(max === min ? height / 2 : height - 4 - ((v - min) / (max - min)) * (height - 8));
  const segments: string[] = [];
  let current = '';
  const dots: string[] = [];
  trend.forEach((t, i) => {
    if (t.value === null) {
      if (current) segments.push(current);
      current = '';
      return;
    }
    current += `${current ? ' L' : 'M'}${x(i)} ${y(t.value)}`;
    dots.push(`<circle cx="${x(i)}" cy="${y(t.value)}" r="2.5"/>`);
  });
  if (current) segments.push(current);
  return `<svg class="spark" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" aria-hidden="true" focusable="false"><path d="${segments.join(' ')}" fill="none" stroke="currentColor" stroke-width="2"/>${dots.join('')}</svg>`;
}

/**
 * Each list's week-on-week growth from the `email.list_size` measure (kept by
 * the email collector, by list): this week's reading less last week's, or
 * null when either week has none.
 */
export async function listGrowth(store: ObservationStore, lists: readonly string[], now: Date, zone: string): Promise<Record<string, number | null>> {
  const week = periodOf('week', now, zone);
  const last = previousPeriod(week);
  const obs = await store.range('email.list_size', { from: last.start, to: week.end, subject: '' });
  const out: Record<string, number | null> = {};
  for (const list of lists) {
    const of = (p: Period) => obs.find((o) => o.dimensions.list === list && o.period === p.key)?.value;
    const [a, b] = [of(week), of(last)];
    out[list] = a !== undefined && b !== undefined ? a - b : null;
  }
  return out;
}
