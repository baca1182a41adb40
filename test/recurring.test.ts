import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCampaign, type CampaignDraft } from '../src/domain/campaign-file.js';
import { findCampaign, listCampaigns } from '../src/domain/campaigns.js';
import { checkCron, nextOccurrence } from '../src/domain/recurrence.js';
import { findSeries, seriesSchedulerId } from '../src/domain/series.js';
import { UserError } from '../src/errors.js';
import { cancelSeries, createSeries, RECURRING_QUEUE, runSeries, seriesOccurrences, type RecurringDeps } from '../src/recurring.js';
import { testConfig, silentLogger } from './helpers/context.js';
import { startCrier, type TestCrier } from './helpers/crier.js';
import { runCli } from './helpers/cli-run.js';

/**
 * Recurring campaigns: cron occurrences in Europe/London become dated
 * campaigns. The run handler is called with chosen instants (a fake clock)
 * across a month boundary and both clock changes; one series also runs on a
 * real BullMQ job scheduler against the private Redis.
 */

const FILE = '/campaigns/weekly.yaml';
const weekly = (repeat: string, extra = '') => `title: Weekly safety update\nkind: social\n${extra}repeat: ${repeat}\nchannels:\n  mastodon: { text: "This week's safety update" }\n`;

describe('campaign file: repeat', () => {
  const config = testConfig();
  const now = new Date('2026-10-20T12:00:00Z');

  it('repeat without send_at is accepted; the cron and zone are kept', () => {
    const d = parseCampaign(weekly('{ cron: "0 9 * * 1" }'), FILE, config, { now });
    expect(d.repeat).toEqual({ cron: '0 9 * * 1' });
    expect(d.timezone).toBe('Europe/London');
  });

  it('mistakes name the file, line and field', () => {
    const refuse = (yaml: string): UserError => {
      try {
        parseCampaign(yaml, FILE, config, { now });
      } catch (err) {
        expect(err).toBeInstanceOf(UserError);
        return err as UserError;
      }
      throw new Error('expected a refusal');
    };
    const bad = refuse(weekly('{ cron: "every monday" }'));
    expect(bad.where).toMatchObject({ file: FILE, line: 3, field: 'repeat.cron' });
    expect(bad.message).toContain('5');
    const either = refuse(weekly('{ cron: "0 9 1-7 * 2" }'));
    expect(either.message).toContain('2#1');
    const until = refuse(weekly('{ cron: "0 9 * * 1", until: "2026-01-01 00:00" }'));
    expect(until.where.field).toBe('repeat.until');
    const embargo = refuse('title: T\nkind: press\nrepeat: { cron: "0 9 * * 1" }\nchannels:\n  press: { headline: H, body: B, embargo_until: "2027-01-04 09:00" }\n');
    expect(embargo.where.field).toBe('channels.press.embargo_until');
    const noSendAt = refuse('title: T\nkind: social\nchannels:\n  mastodon: { text: hi }\n');
    expect(noSendAt.where.field).toBe('send_at');
  });

  it('"first Tuesday": cron-parser (as BullMQ runs it) reads "1-7 * 2" as EITHER, "* * 2#1" as the first Tuesday', () => {
    const from = new Date('2026-09-30T12:00:00Z');
    const runs = (p: string, n: number) => {
      const out: string[] = [];
      let at = from;
      for (let i = 0; i < n; i++) {
        at = nextOccurrence(p, 'Europe/London', at)!;
        out.push(at.toISOString());
      }
      return out;
    };
    // 1 Oct 2026 is a Thursday: the OR reading fires on it.
    expect(runs('0 9 1-7 * 2', 2)).toEqual(['2026-10-01T08:00:00.000Z', '2026-10-02T08:00:00.000Z']);
    // First Tuesdays, 09:00 London: BST in October, GMT from November to March, BST again in April.
    expect(runs('0 9 * * 2#1', 7)).toEqual([
      '2026-10-06T08:00:00.000Z',
      '2026-11-03T09:00:00.000Z',
      '2026-12-01T09:00:00.000Z',
      '2027-01-05T09:00:00.000Z',
      '2027-02-02T09:00:00.000Z',
      '2027-03-02T09:00:00.000Z',
      '2027-04-06T08:00:00.000Z',
    ]);
    expect(checkCron('0 9 * * 2#1', 'Europe/London')).toBe('');
  });
});

describe('series on a fake clock', () => {
  let crier: TestCrier;
  let clock = new Date('2026-10-20T12:00:00Z');
  let deps: RecurringDeps;

  beforeAll(async () => {
    crier = await startCrier(testConfig(), { workers: false, now: () => clock });
    deps = { config: crier.config, redis: crier.handle.redis, scheduler: crier.scheduler, log: silentLogger(), now: () => clock };
  });
  afterAll(async () => {
    await crier?.close();
  });

  const draft = (cron: string): CampaignDraft & { repeat: { cron: string } } => ({
    ...parseCampaign(weekly(`{ cron: "${cron}" }`), FILE, crier.config, { now: clock }),
    repeat: { cron },
  });

  it('monthly at 09:00 across a month boundary and the October clock change: each run makes the next dated campaign', async () => {
    clock = new Date('2026-10-20T12:00:00Z');
    const { series, first } = await createSeries(deps, draft('0 9 1 * *'), 'alice');
    // 1 November 2026 09:00 is GMT (the clocks went back on 25 October).
    expect(first?.sendAt.toISOString()).toBe('2026-11-01T09:00:00.000Z');
    expect(first?.title).toBe('Weekly safety update (2026-11-01)');
    expect(first?.status).toBe('scheduled');
    expect(first?.series).toBe(series.id);
    const job = await crier.scheduler.queue(RECURRING_QUEUE).getJobScheduler(seriesSchedulerId(series.id));
    expect(job?.pattern).toBe('0 9 1 * *');
    expect(job?.tz).toBe('Europe/London');

    clock = new Date('2026-11-01T09:00:00Z');
    const ids = await runSeries(deps, series.id, clock);
    expect(ids[0]).toBe(first?.id);
    const dec = await findCampaign(crier.handle.redis, crier.config.redis_prefix, ids[1]!);
    expect(dec?.sendAt.toISOString()).toBe('2026-12-01T09:00:00.000Z');
    expect(dec?.title).toBe('Weekly safety update (2026-12-01)');

    // A retried or repeated run creates nothing twice.
    expect(await runSeries(deps, series.id, clock)).toEqual(ids);
    expect(await seriesOccurrences(crier.handle.redis, crier.config.redis_prefix, series.id)).toEqual(ids);
    const inList = (await listCampaigns(crier.handle.redis, crier.config.redis_prefix)).filter((c) => c.series === series.id);
    expect(inList.map((c) => c.id).sort()).toEqual([...ids].sort());
  });

  it('Sundays 09:00 across both clock changes: 08:00 UTC in summer, 09:00 UTC in winter', async () => {
    clock = new Date('2026-10-19T12:00:00Z');
    const { series, first } = await createSeries(deps, draft('0 9 * * 0'), 'alice');
    expect(first?.sendAt.toISOString()).toBe('2026-10-25T09:00:00.000Z');
    clock = new Date('2027-03-21T09:00:00Z');
    const ids = await runSeries(deps, series.id, clock);
    const spring = await findCampaign(crier.handle.redis, crier.config.redis_prefix, ids[1]!);
    // 28 March 2027: the clocks went forward at 01:00 UTC, so 09:00 is BST.
    expect(spring?.sendAt.toISOString()).toBe('2027-03-28T08:00:00.000Z');
    expect(spring?.title).toBe('Weekly safety update (2027-03-28)');
  });

  it('one occurrence cancelled alone: the series goes on; cancel --series stops it and cancels what is pending', async () => {
    clock = new Date('2026-10-20T12:00:00Z');
    const { series, first } = await createSeries(deps, draft('0 9 * * 1'), 'alice');
    await crier.scheduler.cancel(first!.id, 'bob');
    clock = new Date(first!.sendAt);
    const [again, next] = await runSeries(deps, series.id, clock);
    expect(again).toBe(first!.id);
    expect((await findCampaign(crier.handle.redis, crier.config.redis_prefix, first!.id))?.status).toBe('cancelled');
    expect((await findCampaign(crier.handle.redis, crier.config.redis_prefix, next!))?.status).toBe('scheduled');

    // By an occurrence's id, as `crier campaign cancel ID --series` allows.
    const { cancelled } = await cancelSeries(deps, next!, 'bob');
    expect(cancelled).toEqual([next]);
    expect((await findSeries(crier.handle.redis, crier.config.redis_prefix, series.id))?.status).toBe('cancelled');
    expect(await crier.scheduler.queue(RECURRING_QUEUE).getJobScheduler(seriesSchedulerId(series.id))).toBeUndefined();
    // A run that was already queued does nothing.
    expect(await runSeries(deps, series.id, new Date(clock.getTime() + 7 * 86_400_000))).toEqual([]);
  });
});

describe('series on a real job scheduler', () => {
  let crier: TestCrier;
  beforeAll(async () => {
    crier = await startCrier(testConfig(), { queues: ['campaigns', 'deliver-mastodon', RECURRING_QUEUE] });
  });
  afterAll(async () => {
    await crier?.close();
  });

  it('every 2 seconds: occurrences are created and sent until the series is cancelled', async () => {
    const deps: RecurringDeps = { config: crier.config, redis: crier.handle.redis, scheduler: crier.scheduler, log: silentLogger(), now: () => new Date() };
    // Seconds are not allowed in campaign files; the engine takes them, which keeps this test short.
    const base = parseCampaign(weekly('{ cron: "0 9 * * 1" }'), FILE, crier.config, { now: new Date() });
    const { series } = await createSeries(deps, { ...base, repeat: { cron: '*/2 * * * * *' } }, 'alice');
    const prefix = crier.config.redis_prefix;
    const sent = async () => {
      const ids = await seriesOccurrences(crier.handle.redis, prefix, series.id);
      const cs = await Promise.all(ids.map((id) => findCampaign(crier.handle.redis, prefix, id)));
      return cs.filter((c) => c?.status === 'sent').length;
    };
    const deadline = Date.now() + 20_000;
    while ((await sent()) < 2) {
      if (Date.now() > deadline) throw new Error(`fewer than 2 occurrences sent: ${await sent()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const { cancelled } = await cancelSeries(deps, series.id, 'alice');
    const after = (await seriesOccurrences(crier.handle.redis, prefix, series.id)).length;
    await new Promise((r) => setTimeout(r, 4500));
    // At most a run already in flight when the series was cancelled adds one more.
    expect((await seriesOccurrences(crier.handle.redis, prefix, series.id)).length).toBeLessThanOrEqual(after + 1);
    expect(cancelled.length).toBeGreaterThanOrEqual(1);
  });
});

describe('crier campaign create | list | cancel --series', () => {
  it('prints the series id last, lists it, cancels it', async () => {
    const config = testConfig();
    const run = (args: string[]) => runCli(config, args);
    const file = path.join(config.dataDir, 'weekly.yaml');
    writeFileSync(file, weekly('{ cron: "0 9 * * 1" }'));
    const created = await run(['campaign', 'create', file]);
    expect(created.code, created.err).toBe(0);
    const id = created.out.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^s[a-z0-9]+$/);
    expect(created.out).toContain('repeating "Weekly safety update" on "0 9 * * 1" (Europe/London)');
    const list = await run(['campaign', 'list']);
    expect(list.out).toContain(`${id}  "0 9 * * 1"`);
    expect(list.out).toMatch(/scheduled .* Weekly safety update \(\d{4}-\d{2}-\d{2}\)/);
    const show = await run(['campaign', 'show', id]);
    expect(show.out).toContain('repeat:  "0 9 * * 1" (Europe/London)');
    const one = await run(['campaign', 'cancel', 'cnope', '--series']);
    expect(one.code).toBe(1);
    const stop = await run(['campaign', 'cancel', id, '--series']);
    expect(stop.code, stop.err).toBe(0);
    expect(stop.out).toContain('cancelled 1 upcoming occurrence');
    expect((await run(['campaign', 'list'])).out).not.toContain('recurring:');
  });
});
