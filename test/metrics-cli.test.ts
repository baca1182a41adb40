import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience-import.js';
import { subscriberId, unsubscribe } from '../src/domain/audience.js';
import { campaignKeys, saveNewCampaign } from '../src/domain/campaigns.js';
import { marginOfError } from '../src/domain/margin.js';
import { buildCatalogue } from '../src/domain/measures.js';
import { neutraliseCell } from '../src/domain/csv.js';
import { ObservationStore } from '../src/domain/observations.js';
import { periodOf, previousPeriod } from '../src/domain/periods.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { collectOnce, runCrier } from './helpers/metrics.js';

/** `crier metrics record|import|export|measures`, the margin of error, and the email collector. */

let config: Config;
let handle: RedisHandle;
let store: ObservationStore;

beforeAll(async () => {
  config = testConfig({ yaml: 'metrics:\n  targets:\n    website.visitors: 5000\n  measures:\n    - { name: library.visits, unit: count, description: Visits to the mobile library stop, heading: Direct engagement, good: up, dimensions: [town] }\n' });
  handle = await connectRedis(config, silentLogger());
  store = new ObservationStore(handle.redis, config.redis_prefix, buildCatalogue(config.metrics.measures, config.metrics.targets));
});

afterAll(async () => {
  await handle?.close();
});

const file = (name: string, text: string) => {
  const p = path.join(config.dataDir, name);
  writeFileSync(p, text);
  return p;
};

describe('margin of error (95%, finite population correction, p = 0.5)', () => {
  it('matches the textbook figures', () => {
    expect(marginOfError(400, 550_000).percent.toFixed(1)).toBe('4.9');
    expect(marginOfError(400, 550_000).tooSmall).toBe(false);
    // Without a correction worth the name: 1,000 of 10 million → ±3.1%.
    expect(marginOfError(1000, 10_000_000).percent.toFixed(2)).toBe('3.10');
    // The correction matters when the sample is a big share: 500 of 1,000 → ±3.1% (±4.4% uncorrected).
    expect(marginOfError(500, 1000).percent.toFixed(2)).toBe('3.10');
    const small = marginOfError(200, 550_000);
    expect(small.percent.toFixed(2)).toBe('6.93');
    expect(small.tooSmall).toBe(true);
    expect(small.neededFor5).toBe(384);
    expect(marginOfError(1000, 1000).percent).toBe(0);
  });
});

describe('crier metrics', () => {
  it('measures lists the catalogue with targets and team measures', async () => {
    const r = await runCrier(config, ['metrics', 'measures', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as Array<{ name: string; target?: number; builtin: boolean }>;
    expect(list.find((m) => m.name === 'website.visitors')?.target).toBe(5000);
    expect(list.find((m) => m.name === 'library.visits')?.builtin).toBe(false);
    const text = await runCrier(config, ['metrics', 'measures']);
    expect(text.stdout).toMatch(/^Website growth$/m);
    expect(text.stdout).toMatch(/^ {2}website\.bounce_rate +percent, week, good down/m);
  });

  it('record: a figure by hand, replaced not doubled; a consultation gets its margin of error', async () => {
    let r = await runCrier(config, ['metrics', 'record', 'engagement.events', '3', '--month', '2026-10', '--dim', 'location=Rugby']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('engagement.events 2026-10 location=Rugby = 3 (new)\n');
    r = await runCrier(config, ['metrics', 'record', 'engagement.events', '4', '--month', '2026-10', '--dim', 'location=Rugby']);
    expect(r.stdout).toMatch(/= 4 \(replaced\)/);
    expect((await store.range('engagement.events')).map((o) => o.value)).toEqual([4]);
    r = await runCrier(config, ['metrics', 'record', 'consultation.respondents', '400', '--quarter', '2026-Q3', '--subject', 'police-and-crime-plan', '--population', '550,000']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/consultation\.margin_of_error 2026-Q3: ±4\.9% at 95% confidence \(400 of 550,000\)\n$/);
    const moe = await store.get({ measure: 'consultation.margin_of_error', subject: 'police-and-crime-plan', period: '2026-Q3' });
    expect(moe?.value).toBe(4.9);
    expect(moe?.meta).toMatchObject({ too_small_for_5pct: 'no', respondents: '400', population: '550000' });
    r = await runCrier(config, ['metrics', 'record', 'consultation.respondents', '150', '--quarter', '2026-Q3', '--subject', 'cyber-survey', '--population', '20000']);
    expect(r.stdout).toMatch(/too small for ±5%, needs at least 377 respondents/);
  });

  it('record: mistakes are one line, exit 1, nothing written', async () => {
    for (const [args, msg] of [
      [['metrics', 'record', 'engagement.event', '3'], /unknown measure "engagement.event" \(did you mean engagement\.events/],
      [['metrics', 'record', 'engagement.events', 'three'], /VALUE.*"three" is not a number/],
      [['metrics', 'record', 'engagement.events', '3', '--week', '2026-10'], /--week.*YYYY-Www/],
      [['metrics', 'record', 'engagement.events', '3', '--dim', 'colour=red'], /not broken down by "colour" \(its dimensions are location, community\)/],
      [['metrics', 'record', 'consultation.margin_of_error', '3'], /worked out by Crier/],
    ] as const) {
      const r = await runCrier(config, [...args]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('import: good rows kept, bad rows reported with line and reason; an unreadable file writes nothing', async () => {
    const csv = file(
      'engagement.csv',
      [
        'measure,value,month,quarter,subject,population,location,community,note',
        'engagement.attendees,45,2026-11,,,,Nuneaton,Older people,"Town hall, evening"',
        'engagement.attendees,12,2026-11,,,,Bedworth,,',
        'engagement.attendes,12,2026-11,,,,Bedworth,,',
        'grants.amount,"£12,500",,2026-Q3,,,,,',
        'engagement.questions,lots,2026-11,,,,Rugby,,',
        'consultation.respondents,1100,,2026-Q4,victims-survey,3000,,,',
        'engagement.actions,2,2026-13,,,,Rugby,,',
        'reference_groups.active_volunteers,9,,2026-Q4,,,Rugby,,',
        'library.visits,=1+2,2026-11,,,,,,',
      ].join('\r\n'),
    );
    const r = await runCrier(config, ['metrics', 'import', csv]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^imported 5 \(new 5, replaced 0, unchanged 0\), rejected 5$/m);
    expect(r.stdout).toMatch(/margin of error: victims-survey 2026-Q4: ±2\.4%/);
    const errs = r.stderr.trim().split('\n');
    expect(errs).toEqual([
      expect.stringMatching(/engagement\.csv:4, field "measure": unknown measure "engagement\.attendes"/),
      expect.stringMatching(/engagement\.csv:6, field "value": "lots" is not a number/),
      expect.stringMatching(/engagement\.csv:8, field "month": "2026-13" is not a real month/),
      expect.stringMatching(/engagement\.csv:9, field "location": reference_groups\.active_volunteers is not broken down by "location"/),
      expect.stringMatching(/engagement\.csv:10, field "value": "=1\+2" is not a number/),
    ]);
    const a = await store.get({ measure: 'engagement.attendees', dimensions: { location: 'Nuneaton', community: 'Older people' }, period: '2026-11' });
    expect(a?.value).toBe(45);
    expect(a?.meta).toMatchObject({ note: 'Town hall, evening', file: 'engagement.csv' });
    expect((await store.get({ measure: 'grants.amount', period: '2026-Q3' }))?.value).toBe(12500);

    // An unterminated quote: the file cannot be read as a whole, so nothing from it is written.
    const before = await store.count('engagement.events');
    const bad = file('broken.csv', 'measure,value,month,location\nengagement.events,7,2026-09,Rugby\nengagement.events,"8,2026-09,Rugby\n');
    const b = await runCrier(config, ['metrics', 'import', bad]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/broken\.csv/);
    expect(await store.count('engagement.events')).toBe(before);
    const noPeriod = await runCrier(config, ['metrics', 'import', file('noperiod.csv', 'measure,value\nengagement.events,1\n')]);
    expect(noPeriod.stderr).toMatch(/noperiod\.csv:1: the header row needs a period column/);
  });

  it('export: CSV and NDJSON, every field, filtered, formula cells neutralised', async () => {
    await store.record({ measure: 'engagement.events', subject: '=HYPERLINK("http://evil")', dimensions: { location: '+Rugby', community: '@team' }, period: '2026-09', value: -0, source: 'manual' });
    const csv = await runCrier(config, ['metrics', 'export', '--measure', 'engagement.events', '--from', '2026-09-01', '--to', '2026-09-30']);
    expect(csv.code, csv.stderr).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('measure,subject,dimensions,period,period_kind,period_start,period_end,value,unit,source,collected_at,meta');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^engagement\.events,"'=HYPERLINK\(""http:\/\/evil""\)","\{""community"":""@team"",""location"":""\+Rugby""\}",2026-09,month,2026-08-31T23:00:00\.000Z,2026-09-30T23:00:00\.000Z,0,count,manual,/);
    const nd = await runCrier(config, ['metrics', 'export', '--format', 'ndjson', '--measure', 'engagement.attendees']);
    const rows = nd.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ measure: 'engagement.attendees', period: '2026-11', unit: 'count', source: 'import' });
    expect(neutraliseCell('\tcmd')).toBe("'\tcmd");
    expect(neutraliseCell('-2+3')).toBe("'-2+3");
    expect(neutraliseCell('Rugby')).toBe('Rugby');
  });
});

describe('email collector', () => {
  it("counts delivered, failed and unsubscribed from Crier's own records, and list sizes", async () => {
    const now = new Date();
    const csv = file('subs.csv', 'email,name,area,topics\na@example.org,A,,\nb@example.org,B,,\nc@example.org,C,,\n');
    await importSubscribers(handle.redis, config.redis_prefix, csv, 'newsletter', { rejectsDir: config.dataDir });
    await unsubscribe(handle.redis, config.redis_prefix, subscriberId('b@example.org'), 'link');
    const sendAt = new Date(now.getTime() - 86_400_000);
    const c = await saveNewCampaign(handle.redis, config.redis_prefix, { title: 'Nov newsletter', kind: 'newsletter', sendAt, timezone: 'Europe/London', essential: false, channels: { email: { list: 'newsletter' } } }, 'sent', 'tester', sendAt);
    await handle.redis.hset(campaignKeys(config.redis_prefix, c.id).counts, 'email:sent', '2', 'email:failed', '1');
    await collectOnce(config, handle, 'email');
    const week = periodOf('week', sendAt);
    expect((await store.get({ measure: 'email.delivered', subject: c.id, period: week }))?.value).toBe(2);
    expect((await store.get({ measure: 'email.failed', subject: c.id, period: week }))?.value).toBe(1);
    expect((await store.get({ measure: 'email.delivered', period: week }))?.value).toBe(2);
    const thisWeek = periodOf('week', now);
    expect((await store.get({ measure: 'email.list_size', dimensions: { list: 'newsletter' }, period: thisWeek }))?.value).toBe(2);
    expect((await store.get({ measure: 'email.unsubscribed', dimensions: { list: 'newsletter' }, period: thisWeek }))?.value).toBe(1);
    expect((await store.get({ measure: 'email.unsubscribed', dimensions: { list: 'newsletter' }, period: previousPeriod(thisWeek) }))?.value).toBe(0);
  });
});
