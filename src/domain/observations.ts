import type { Redis } from 'ioredis';
import { UserError, type Where } from '../errors.js';
import { defineScript, runScript } from '../redis/scripts.js';
import type { Catalogue } from './measures.js';
import { DEFAULT_ZONE, parsePeriod, type Period, type PeriodKind } from './periods.js';

/**
 * The measures-of-success dataset: one observation is one figure,
 * `(measure, subject, dimensions, period) → value`, with where it came from
 * (`source`) and when it was read (`collected_at`).
 *
 * The key is measure + subject + dimensions + period: recording the same key
 * again replaces the value, never adds a second one; when the value changes,
 * the one it replaces is kept in a short history (value, source, collected_at)
 * so a changed figure can be explained. A key with no observation is
 * *missing*: readers get `undefined`, never 0.
 *
 * Redis layout, per measure M (all under the config's prefix):
 *   obs:M        hash   id → observation JSON
 *   obs:M:index  zset   all scores 0, members "<period start ms, 15 digits>|<id>":
 *                       lexical order is time order, and paging by the last
 *                       member read keeps every page O(log n) however large
 *   obs:M:history hash  id → JSON array of earlier values, newest first (only changed ones)
 *   obs:measures  set   the measures that have observations
 */

export interface PreviousValue {
  value: number;
  source: string;
  collected_at: string;
}

export interface Observation {
  measure: string;
  /** What the figure is about when not the whole organisation: a post, a campaign, a consultation; '' = the organisation. */
  subject: string;
  /** Breakdown (tone, list, location …); keys sorted. */
  dimensions: Record<string, string>;
  /** Period key: YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn. */
  period: string;
  period_kind: PeriodKind;
  /** ISO instants of the period's local-midnight bounds (end exclusive). */
  period_start: string;
  period_end: string;
  value: number;
  /** Collector source (x, mastodon, website …), `manual`, `import` or `derived`. */
  source: string;
  collected_at: string;
  /** How the figure was made, where that matters (tone method and model version, sample and population). */
  meta?: Record<string, string>;
}

export interface StoredObservation extends Observation {
  /** Earlier values of this key, newest first (at most HISTORY_LENGTH). */
  history: PreviousValue[];
}

export interface ObservationInput {
  measure: string;
  subject?: string;
  dimensions?: Readonly<Record<string, string>>;
  /** A Period or its text ("2026-W48"). */
  period: Period | string;
  value: number;
  source: string;
  collectedAt?: Date;
  meta?: Readonly<Record<string, string>>;
}

export interface ObservationKey {
  measure: string;
  subject?: string;
  dimensions?: Readonly<Record<string, string>>;
  period: Period | string;
}

export type RecordOutcome = 'new' | 'replaced' | 'unchanged';

export const HISTORY_LENGTH = 10;

/** KEYS: hash, index, measures set, history hash. ARGV: id, index member, record JSON, value, measure, history length. */
const RECORD = defineScript(
  'observations_record',
  `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if not old then
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[5])
  return 'new'
end
local o = cjson.decode(old)
if o.value == tonumber(ARGV[4]) then return 'unchanged' end
local h = redis.call('HGET', KEYS[4], ARGV[1])
local list = {}
if h then list = cjson.decode(h) end
table.insert(list, 1, { value = o.value, source = o.source, collected_at = o.collected_at })
while #list > tonumber(ARGV[6]) do table.remove(list) end
redis.call('HSET', KEYS[4], ARGV[1], cjson.encode(list))
return 'replaced'
`,
);

const DIM_KEY = /^[a-z][a-z0-9_]{0,39}$/;

function goodSubject(s: string): boolean {
  return s.length <= 200 && ![...s].some((c) => c === '|' || c.charCodeAt(0) < 32);
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Dimensions in one canonical order, so {a,b} and {b,a} are the same key. */
export function canonicalDimensions(d: Readonly<Record<string, string>> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(d).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The id of an observation within its measure: subject | dimensions | period. */
export function observationId(subject: string, dimensions: Readonly<Record<string, string>>, period: string): string {
  const dims = Object.entries(canonicalDimensions(dimensions))
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');
  return `${enc(subject)}|${dims}|${period}`;
}

const pad = (ms: number) => String(ms).padStart(15, '0');

/**
 * Checks an observation against the catalogue: known measure, declared
 * dimensions only, a finite number, a sensible subject. Throws a UserError
 * naming the field.
 */
export function validateObservation(catalogue: Catalogue, input: ObservationInput, where: Where = {}): void {
  const m = catalogue.require(input.measure, { ...where, field: where.field ?? 'measure' });
  if (typeof input.value !== 'number' || !Number.isFinite(input.value)) throw new UserError(`value must be a number`, 'CRIER_ERR_INPUT', { ...where, field: 'value' });
  if (m.unit !== 'percent' && m.unit !== 'seconds' && m.unit !== 'gbp' && input.value < 0) {
    throw new UserError(`${m.name} counts things: ${input.value} is negative`, 'CRIER_ERR_INPUT', { ...where, field: 'value' });
  }
  if (input.subject !== undefined && !goodSubject(input.subject)) throw new UserError('subject: at most 200 characters, no "|" or control characters', 'CRIER_ERR_INPUT', { ...where, field: 'subject' });
  for (const [k, v] of Object.entries(input.dimensions ?? {})) {
    if (!DIM_KEY.test(k)) throw new UserError(`dimension name "${k}": lower case letters, digits and _`, 'CRIER_ERR_INPUT', { ...where, field: k });
    if (!m.dimensions.includes(k)) {
      const known = m.dimensions.length ? `its dimensions are ${m.dimensions.join(', ')}` : 'it has no dimensions';
      throw new UserError(`${m.name} is not broken down by "${k}" (${known})`, 'CRIER_ERR_INPUT', { ...where, field: k });
    }
    if (typeof v !== 'string' || v.trim() === '' || v.length > 200) throw new UserError(`dimension "${k}" needs a value (at most 200 characters)`, 'CRIER_ERR_INPUT', { ...where, field: k });
  }
}

export interface RangeQuery {
  /** Periods starting at or after this instant. */
  from?: Date;
  /** Periods starting before this instant. */
  to?: Date;
  kind?: PeriodKind;
  /** Only this subject ('' = organisation-level only). */
  subject?: string;
  /** Only observations with exactly these dimensions (`{}` = no breakdown). */
  dimensions?: Readonly<Record<string, string>>;
}

export class ObservationStore {
  readonly zone: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly catalogue: Catalogue,
    opts: { zone?: string } = {},
  ) {
    this.zone = opts.zone ?? DEFAULT_ZONE;
  }

  private keys(measure: string) {
    const base = `${this.prefix}:obs:${measure}`;
    return { hash: base, index: `${base}:index`, history: `${base}:history`, measures: `${this.prefix}:obs:measures` };
  }

  private period(p: Period | string, where: Where = {}): Period {
    return typeof p === 'string' ? parsePeriod(p, this.zone, { ...where, field: where.field ?? 'period' }) : p;
  }

  /** Records one observation (validated against the catalogue): replaces any value for the same key. */
  async record(input: ObservationInput): Promise<RecordOutcome> {
    validateObservation(this.catalogue, input);
    const p = this.period(input.period);
    const subject = input.subject ?? '';
    const dimensions = canonicalDimensions(input.dimensions);
    const obs: Observation = {
      measure: input.measure,
      subject,
      dimensions,
      period: p.key,
      period_kind: p.kind,
      period_start: p.start.toISOString(),
      period_end: p.end.toISOString(),
      value: input.value,
      source: input.source,
      collected_at: (input.collectedAt ?? new Date()).toISOString(),
      ...(input.meta && Object.keys(input.meta).length ? { meta: { ...input.meta } } : {}),
    };
    const id = observationId(subject, dimensions, p.key);
    const k = this.keys(input.measure);
    return runScript<RecordOutcome>(
      this.redis,
      RECORD,
      [k.hash, k.index, k.measures, k.history],
      [id, `${pad(p.start.getTime())}|${id}`, JSON.stringify(obs), String(input.value), input.measure, HISTORY_LENGTH],
    );
  }

  /** Records many (pipelined); counts of each outcome. One bad input throws before anything is written. */
  async recordMany(inputs: readonly ObservationInput[]): Promise<Record<RecordOutcome, number>> {
    for (const i of inputs) validateObservation(this.catalogue, i);
    const counts: Record<RecordOutcome, number> = { new: 0, replaced: 0, unchanged: 0 };
    for (let i = 0; i < inputs.length; i += 500) {
      const outcomes = await Promise.all(inputs.slice(i, i + 500).map((o) => this.record(o)));
      for (const o of outcomes) counts[o]++;
    }
    return counts;
  }

  /** One observation, or undefined when missing (never 0). */
  async get(key: ObservationKey): Promise<StoredObservation | undefined> {
    const p = this.period(key.period);
    const id = observationId(key.subject ?? '', canonicalDimensions(key.dimensions), p.key);
    const k = this.keys(key.measure);
    const [raw, hist] = await Promise.all([this.redis.hget(k.hash, id), this.redis.hget(k.history, id)]);
    if (!raw) return undefined;
    return { ...(JSON.parse(raw) as Observation), history: parseHistory(hist) };
  }

  /** A measure's observations whose periods start in [from, to), oldest first, filtered. */
  async range(measure: string, q: RangeQuery = {}): Promise<Observation[]> {
    const out: Observation[] = [];
    for await (const page of this.pages(measure, q.from, q.to, 1000)) {
      for (const o of page) if (matches(o, q)) out.push(o);
    }
    return out;
  }

  /** Measures with at least one observation, sorted. */
  async measures(): Promise<string[]> {
    return (await this.redis.smembers(this.keys('').measures)).sort();
  }

  async count(measure: string): Promise<number> {
    return this.redis.zcard(this.keys(measure).index);
  }

  /**
   * Every observation (of the measures given, or all), measure by measure and
   * oldest first within each, read in pages: memory stays flat however many.
   */
  async *iterate(opts: { measures?: readonly string[]; from?: Date; to?: Date; pageSize?: number } = {}): AsyncGenerator<Observation> {
    const measures = opts.measures ?? (await this.measures());
    for (const m of measures) {
      for await (const page of this.pages(m, opts.from, opts.to, opts.pageSize ?? 2000)) yield* page;
    }
  }

  private async *pages(measure: string, from: Date | undefined, to: Date | undefined, size: number): AsyncGenerator<Observation[]> {
    const k = this.keys(measure);
    let min = from ? `[${pad(from.getTime())}` : '-';
    const max = to ? `(${pad(to.getTime())}` : '+';
    for (;;) {
      const members = await this.redis.zrangebylex(k.index, min, max, 'LIMIT', 0, size);
      if (members.length === 0) return;
      const ids = members.map((mem) => mem.slice(mem.indexOf('|') + 1));
      const raws = await this.redis.hmget(k.hash, ...ids);
      const page: Observation[] = [];
      for (const raw of raws) if (raw) page.push(JSON.parse(raw) as Observation);
      yield page;
      if (members.length < size) return;
      min = `(${members[members.length - 1]}`;
    }
  }
}

function parseHistory(raw: string | null): PreviousValue[] {
  if (!raw) return [];
  const v = JSON.parse(raw) as unknown;
  return Array.isArray(v) ? (v as PreviousValue[]) : [];
}

function sameDimensions(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function matches(o: Observation, q: RangeQuery): boolean {
  if (q.kind && o.period_kind !== q.kind) return false;
  if (q.subject !== undefined && o.subject !== q.subject) return false;
  if (q.dimensions && !sameDimensions(o.dimensions, q.dimensions)) return false;
  return true;
}
