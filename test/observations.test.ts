import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { BUILTIN_MEASURES, buildCatalogue } from '../src/domain/measures.js';
import { ObservationStore } from '../src/domain/observations.js';
import { parsePeriod, periodOf, previousPeriod } from '../src/domain/periods.js';
import { UserError } from '../src/errors.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { silentLogger, testConfig } from './helpers/context.js';

let config: Config;
let handle: RedisHandle;

beforeAll(async () => {
  config = testConfig();
  handle = await connectRedis(config, silentLogger());
});

afterAll(async () => {
  await handle.close();
});

function store(prefix = `${config.redis_prefix}-${Math.random().toString(36).slice(2, 8)}`): ObservationStore {
  return new ObservationStore(handle.redis, prefix, buildCatalogue());
}

describe('periods (Europe/London)', () => {
  it('parses the four kinds with local-midnight bounds', () => {
    const w = parsePeriod('2026-W44');
    // The week the clocks go back (25 Oct 2026 is in W43; W44 starts Mon 26 Oct, GMT).
    expect(w.start.toISOString()).toBe('2026-10-26T00:00:00.000Z');
    expect(parsePeriod('2026-W43').start.toISOString()).toBe('2026-10-18T23:00:00.000Z');
    expect(parsePeriod('2026-W43').end.getTime() - parsePeriod('2026-W43').start.getTime()).toBe((7 * 24 + 1) * 3600_000);
    expect(parsePeriod('2026-07-01').start.toISOString()).toBe('2026-06-30T23:00:00.000Z');
    expect(parsePeriod('2026-11').end.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(parsePeriod('2026-Q2').start.toISOString()).toBe('2026-03-31T23:00:00.000Z');
    expect(parsePeriod('2026-W53', undefined, {}).key).toBe('2026-W53');
    expect(() => parsePeriod('2025-W53')).toThrow(UserError);
    expect(() => parsePeriod('2026-02-30')).toThrow(/not a real day/);
    expect(() => parsePeriod('2026-11', undefined, { field: '--week' }, 'week')).toThrow(/field "--week".*YYYY-Www/);
  });

  it('finds the period of an instant and the one before', () => {
    const p = periodOf('week', new Date('2027-01-01T12:00:00Z'));
    expect(p.key).toBe('2026-W53');
    expect(previousPeriod(p).key).toBe('2026-W52');
    expect(previousPeriod(parsePeriod('2026-Q1')).key).toBe('2025-Q4');
    expect(previousPeriod(parsePeriod('2026-03-30')).key).toBe('2026-03-29');
  });
});

describe('observations', () => {
  it('the catalogue has every name the issue lists', () => {
    const names = BUILTIN_MEASURES.map((m) => m.name);
    for (const n of ['x.followers', 'website.mobile_share', 'media.mentions', 'email.list_size', 'engagement.actions', 'reference_groups.active_volunteers', 'grants.amount', 'consultation.margin_of_error']) {
      expect(names).toContain(n);
    }
  });

  it('recording the same key twice keeps one observation and the earlier value in history; missing is undefined', async () => {
    const s = store();
    const key = { measure: 'media.mentions', dimensions: { tone: 'positive' }, period: '2026-W48' };
    expect(await s.record({ ...key, value: 3, source: 'media', collectedAt: new Date('2026-11-23T10:00:00Z') })).toBe('new');
    expect(await s.record({ ...key, value: 3, source: 'media', collectedAt: new Date('2026-11-23T11:00:00Z') })).toBe('unchanged');
    expect(await s.record({ ...key, value: 5, source: 'media', collectedAt: new Date('2026-11-23T12:00:00Z') })).toBe('replaced');
    const got = await s.get(key);
    expect(got?.value).toBe(5);
    expect(got?.history).toEqual([{ value: 3, source: 'media', collected_at: '2026-11-23T11:00:00.000Z' }]);
    expect(await s.count('media.mentions')).toBe(1);
    expect(await s.get({ ...key, period: '2026-W47' })).toBeUndefined();
    await expect(s.record({ measure: 'media.mentions', dimensions: { colour: 'x' }, period: '2026-W48', value: 1, source: 'manual' })).rejects.toThrow(/not broken down by "colour"/);
  });

  it('range and iterate go in period order across pages', async () => {
    const s = store();
    for (let i = 0; i < 25; i++) {
      await s.record({ measure: 'x.followers', period: previousPeriod(parsePeriod('2026-11-23'), i), value: 1000 - i, source: 'x' });
    }
    const r = await s.range('x.followers', { from: parsePeriod('2026-11-20').start, to: parsePeriod('2026-11-23').start });
    expect(r.map((o) => o.period)).toEqual(['2026-11-20', '2026-11-21', '2026-11-22']);
    const all: number[] = [];
    for await (const o of s.iterate({ pageSize: 7 })) all.push(o.value);
    expect(all).toEqual(Array.from({ length: 25 }, (_, i) => 976 + i));
  });
});
