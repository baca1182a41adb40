import { DateTime } from 'luxon';
import type { Measure } from '../domain/measures.js';
import type { Period } from '../domain/periods.js';
import type { Figure, MeasureRow } from './model.js';

/** How the digest writes measures, numbers, changes and periods: the same words in the HTML and the text part. */

const PREFIX: Record<string, string> = {
  x: 'X',
  mastodon: 'Mastodon',
  website: 'Website',
  media: 'Media',
  email: 'Email',
  engagement: 'Engagement',
  reference_groups: 'Reference groups',
  grants: 'Grants',
  consultation: 'Consultation',
};

export function measureLabel(m: Measure): string {
  const [first = '', ...rest] = m.name.split('.');
  const head = PREFIX[first] ?? first.charAt(0).toUpperCase() + first.slice(1).replace(/_/g, ' ');
  return [head, ...rest.map((r) => r.replace(/_/g, ' '))].join(' ');
}

const counts = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 1 });
const pounds = new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'GBP', maximumFractionDigits: 0 });

export function formatValue(value: number, unit: Measure['unit']): string {
  switch (unit) {
    case 'percent':
      return `${value.toFixed(1)}%`;
    case 'seconds': {
      const s = Math.round(value);
      return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
    }
    case 'gbp':
      return pounds.format(value);
    default:
      return counts.format(value);
  }
}

export const NO_DATA = 'no data';

export function formatFigure(f: Figure | undefined, unit: Measure['unit']): string {
  return f ? formatValue(f.value, unit) : NO_DATA;
}

export interface Change {
  arrow: '▲' | '▼' | '=' | '';
  text: string;
  /** good / bad by the measure's direction; neutral for no change or no comparison. */
  tone: 'good' | 'bad' | 'neutral';
}

export function changeOf(row: MeasureRow): Change {
  const { current, last, measure } = row;
  if (!current || !last) return { arrow: '', text: 'no comparison', tone: 'neutral' };
  const diff = current.value - last.value;
  if (diff === 0) return { arrow: '=', text: 'no change', tone: 'neutral' };
  const up = diff > 0;
  const sign = up ? '+' : '−';
  const amount = measure.unit === 'percent' ? `${Math.abs(diff).toFixed(1)} pts` : formatValue(Math.abs(diff), measure.unit);
  const pct = last.value !== 0 ? ` (${sign}${Math.abs((diff / last.value) * 100).toFixed(1)}%)` : '';
  return { arrow: up ? '▲' : '▼', text: `${sign}${amount}${pct}`, tone: (measure.good === 'up') === up ? 'good' : 'bad' };
}

export function periodLabel(p: Period): string {
  const s = DateTime.fromJSDate(p.start, { zone: p.zone }).setLocale('en-GB');
  const e = DateTime.fromJSDate(new Date(p.end.getTime() - 1), { zone: p.zone }).setLocale('en-GB');
  switch (p.kind) {
    case 'week':
      return s.month === e.month ? `${s.toFormat('d')}–${e.toFormat('d LLL')}` : `${s.toFormat('d LLL')} – ${e.toFormat('d LLL')}`;
    case 'month':
      return s.toFormat('LLLL yyyy');
    case 'quarter':
      return `${s.year} Q${s.quarter}`;
    default:
      return s.toFormat('d LLL yyyy');
  }
}

/** "this week" / "last week" for the digest's weeks; the period itself for monthly and quarterly measures. */
export function periodWord(row: MeasureRow, which: 'current' | 'previous'): string {
  if (row.period.kind === 'week') return which === 'current' ? 'this week' : 'last week';
  return periodLabel(which === 'current' ? row.period : row.previous);
}

export function sourceLine(f: Figure | undefined, zone: string): string {
  if (!f) return '';
  const when = DateTime.fromJSDate(f.collectedAt, { zone }).setLocale('en-GB').toFormat('d LLL HH:mm');
  return `source: ${f.sources.join(', ')}, collected ${when}`;
}

export function trendText(row: MeasureRow): string {
  return row.trend.map((v) => (v === undefined ? NO_DATA : formatValue(v, row.measure.unit))).join(', ');
}
