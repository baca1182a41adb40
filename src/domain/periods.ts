import { DateTime } from 'luxon';
import { UserError, type Where } from '../errors.js';

/**
 * The periods observations are kept for, as the team says them: a day
 * (2026-11-23), an ISO week (2026-W48, Monday to Sunday), a month (2026-11)
 * or a quarter (2026-Q4, calendar quarters). Boundaries are local midnights in
 * the zone (Europe/London by default), so a week in BST is 7 × 24 hours and the
 * week the clocks go back is 7 × 24 + 1.
 */
export type PeriodKind = 'day' | 'week' | 'month' | 'quarter';
export const PERIOD_KINDS: readonly PeriodKind[] = ['day', 'week', 'month', 'quarter'];
export const DEFAULT_ZONE = 'Europe/London';

export interface Period {
  kind: PeriodKind;
  /** Canonical text: YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn. */
  key: string;
  /** First instant (local midnight). */
  start: Date;
  /** First instant after the period (exclusive). */
  end: Date;
  zone: string;
}

const PATTERNS: ReadonlyArray<[PeriodKind, RegExp]> = [
  ['day', /^(\d{4})-(\d{2})-(\d{2})$/],
  ['week', /^(\d{4})-W(\d{2})$/],
  ['month', /^(\d{4})-(\d{2})$/],
  ['quarter', /^(\d{4})-Q([1-4])$/],
];

const UNIT: Record<PeriodKind, 'day' | 'week' | 'month' | 'quarter'> = { day: 'day', week: 'week', month: 'month', quarter: 'quarter' };

function startOf(kind: PeriodKind, dt: DateTime): DateTime {
  return dt.startOf(UNIT[kind], { useLocaleWeeks: false });
}

function keyOf(kind: PeriodKind, start: DateTime): string {
  switch (kind) {
    case 'day':
      return start.toFormat('yyyy-MM-dd');
    case 'week':
      return `${start.weekYear}-W${String(start.weekNumber).padStart(2, '0')}`;
    case 'month':
      return start.toFormat('yyyy-MM');
    case 'quarter':
      return `${start.year}-Q${start.quarter}`;
  }
}

function build(kind: PeriodKind, start: DateTime, zone: string): Period {
  const s = startOf(kind, start);
  const e = s.plus({ [`${UNIT[kind]}s`]: 1 });
  return { kind, key: keyOf(kind, s), start: s.toJSDate(), end: e.toJSDate(), zone };
}

/** The kind a period text is written in, or undefined when it is none of them. */
export function periodKindOf(text: string): PeriodKind | undefined {
  for (const [kind, re] of PATTERNS) if (re.test(text)) return kind;
  return undefined;
}

/**
 * Reads "2026-11-23", "2026-W48", "2026-11" or "2026-Q4". `expect` refuses the
 * other kinds (a --week option given a date). Errors name the field.
 */
export function parsePeriod(text: string, zone: string = DEFAULT_ZONE, where: Where = {}, expect?: PeriodKind): Period {
  const t = String(text ?? '').trim();
  const kind = periodKindOf(t);
  const forms = expect ? { day: 'YYYY-MM-DD', week: 'YYYY-Www', month: 'YYYY-MM', quarter: 'YYYY-Qn' }[expect] : 'YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn';
  if (!kind || (expect && kind !== expect)) throw new UserError(`"${t}" is not a ${expect ?? 'period'}; write it as ${forms}`, 'CRIER_ERR_INPUT', where);
  const m = PATTERNS.find(([k]) => k === kind)![1].exec(t)!;
  const y = Number(m[1]);
  const n = Number(m[2]);
  let dt: DateTime;
  switch (kind) {
    case 'day':
      dt = DateTime.fromObject({ year: y, month: n, day: Number(m[3]) }, { zone });
      break;
    case 'week':
      dt = DateTime.fromObject({ weekYear: y, weekNumber: n, weekday: 1 }, { zone });
      if (dt.isValid && dt.weekNumber !== n) dt = DateTime.invalid('no such week');
      break;
    case 'month':
      dt = DateTime.fromObject({ year: y, month: n, day: 1 }, { zone });
      break;
    case 'quarter':
      dt = DateTime.fromObject({ year: y, month: (n - 1) * 3 + 1, day: 1 }, { zone });
      break;
  }
  if (!dt.isValid) throw new UserError(`"${t}" is not a real ${kind}`, 'CRIER_ERR_INPUT', where);
  return build(kind, dt, zone);
}

/** The period of a kind that contains an instant. */
export function periodOf(kind: PeriodKind, instant: Date, zone: string = DEFAULT_ZONE): Period {
  return build(kind, DateTime.fromJSDate(instant, { zone }), zone);
}

/** The period just before (last week for this week); `steps` goes further back. */
export function previousPeriod(p: Period, steps = 1): Period {
  const s = DateTime.fromJSDate(p.start, { zone: p.zone }).minus({ [`${UNIT[p.kind]}s`]: steps });
  return build(p.kind, s, p.zone);
}

export function nextPeriod(p: Period): Period {
  return build(p.kind, DateTime.fromJSDate(p.end, { zone: p.zone }), p.zone);
}

/** Every period of a kind from the one containing `from` to the one containing `to`, oldest first. */
export function periodsBetween(kind: PeriodKind, from: Date, to: Date, zone: string = DEFAULT_ZONE): Period[] {
  const out: Period[] = [];
  for (let p = periodOf(kind, from, zone); p.start <= to; p = nextPeriod(p)) out.push(p);
  return out;
}

/** True when the instant falls inside the period. */
export function contains(p: Period, instant: Date): boolean {
  return instant >= p.start && instant < p.end;
}

/** Local date text (YYYY-MM-DD) of an instant, for APIs that take dates. */
export function localDate(instant: Date, zone: string = DEFAULT_ZONE): string {
  return DateTime.fromJSDate(instant, { zone }).toFormat('yyyy-MM-dd');
}

/** The period's first and last local dates (inclusive), as date-range APIs (Plausible, Matomo) take them. */
export function dateRange(p: Period): [string, string] {
  return [localDate(p.start, p.zone), localDate(new Date(p.end.getTime() - 1), p.zone)];
}
