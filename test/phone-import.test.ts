import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSubscriber, forgetSubscriber, getRecipients, importSubscribers, subscriberId } from '../src/domain/audience.js';
import { smsEstimate } from '../channels/sms/index.js';
import { readCampaignFile } from '../src/domain/campaign-file.js';
import { normalisePhone } from '../src/domain/phone.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { audienceBatches } from '../workers/plan.js';
import { silentLogger, testConfig } from './helpers/context.js';

/**
 * Subscribers' mobile numbers: the optional `phone` column of an import is
 * normalised to E.164 (UK formats as people write them), and a landline or
 * garbage rejects the row with its line and reason while the good rows are
 * kept; SMS plans only members with a number; `forget` leaves no trace of it.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const config = testConfig();
let handle: RedisHandle;
const NOW = new Date('2026-11-20T10:00:00Z');

beforeAll(async () => {
  handle = await connectRedis(config, silentLogger());
});
afterAll(async () => {
  await handle.close();
});

describe('normalisePhone', () => {
  it.each([
    ['07911 123456', '+447911123456'],
    ['07911123456', '+447911123456'],
    ['+44 7911 123456', '+447911123456'],
    ['+447911123456', '+447911123456'],
    ['0044 7911 123 456', '+447911123456'],
    ['+44 (0)7911 123456', '+447911123456'],
    ['07911-123-456', '+447911123456'],
    ['+33 6 12 34 56 78', '+33612345678'],
  ])('%s → %s', (text, e164) => {
    expect(normalisePhone(text, 'GB')).toEqual({ phone: e164 });
  });

  it.each([
    ['020 7946 0000', /is a landline: texts need a mobile/],
    ['01632 960123', /not a valid number/],
    ['0800 123 4567', /is a freephone number/],
    ['070 1234 5678', /personal \(070\) number/],
    ['call me maybe', /no digits/],
    ['07911 12345x', /only digits/],
    ['07911', /not a valid number/],
  ])('%s is refused', (text, why) => {
    const r = normalisePhone(text, 'GB');
    expect('problem' in r && r.problem).toMatch(why);
  });
});

describe('sms.default_country', () => {
  it('must be a country code; one libphonenumber does not know stops an import with a phone column, naming the key', async () => {
    expect(() => testConfig({ yaml: 'sms:\n  default_country: gb\n' })).toThrow(/field "sms.default_country": expected a two-letter country code such as GB/);
    expect(testConfig({ yaml: 'sms:\n  default_country: IE\n' }).sms.default_country).toBe('IE');
    const file = path.join(config.dataDir, 'zz.csv');
    writeFileSync(file, 'email,name,area,topics,phone\nzz@example.org,Z,Rugby,roads,07911 123456\n');
    await expect(importSubscribers(handle.redis, handle.prefix, file, 'zz', { phoneCountry: 'ZZ', rejectsDir: config.dataDir })).rejects.toThrow(
      /field "sms.default_country": unknown country "ZZ"/,
    );
    expect(await findSubscriber(handle.redis, handle.prefix, 'zz@example.org')).toBeNull();
  });
});

describe('import with a phone column', () => {
  const rejectsDir = path.join(config.dataDir, 'rejects');

  it('keeps good rows normalised, rejects landlines and garbage with line and reason', async () => {
    const file = path.join(here, 'fixtures', 'csv', 'phones.csv');
    const r = await importSubscribers(handle.redis, handle.prefix, file, 'texts', { rejectsDir, now: () => NOW });
    expect(r).toMatchObject({ imported: 5, updated: 0, rejected: 4 });
    const phone = async (email: string) => (await findSubscriber(handle.redis, handle.prefix, email))?.phone;
    expect(await phone('plain@example.org')).toBe('+447911123456');
    expect(await phone('intl@example.org')).toBe('+447400123456');
    expect(await phone('zeros@example.org')).toBe('+447123456789');
    expect(await phone('brackets@example.org')).toBe('+447911123457');
    expect(await phone('nophone@example.org')).toBeUndefined();
    expect(await findSubscriber(handle.redis, handle.prefix, 'landline@example.org')).toBeNull();

    const rejects = readFileSync(r.rejectsFile!, 'utf8').trim().split('\n');
    expect(rejects[0]).toBe('line,reason,raw');
    expect(rejects.slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual([
      '7,"phone number ""020 7946 0000"" is a landline: texts need a mobile"',
      '8,"phone number ""0800 123 4567"" is a freephone number: texts need a mobile"',
      '9,"bad phone number ""call me maybe"" (no digits)"',
      '10,"bad phone number ""07911"" (not a valid number in GB)"',
    ]);
  });

  it('a re-import with a new number updates it; an empty cell keeps the old one', async () => {
    const file = path.join(config.dataDir, 'update.csv');
    writeFileSync(file, 'email,name,area,topics,mobile\nplain@example.org,,,,+44 7911 000111\nintl@example.org,,,,\n');
    const r = await importSubscribers(handle.redis, handle.prefix, file, 'texts', { rejectsDir, now: () => NOW });
    expect(r).toMatchObject({ imported: 0, updated: 2, rejected: 0 });
    expect((await findSubscriber(handle.redis, handle.prefix, 'plain@example.org'))?.phone).toBe('+447911000111');
    expect((await findSubscriber(handle.redis, handle.prefix, 'intl@example.org'))?.phone).toBe('+447400123456');
  });

  it('the SMS audience is the members with a number, and recipients carry it', async () => {
    const ids: string[] = [];
    for await (const b of audienceBatches(handle.redis, handle.prefix, { list: 'texts', withPhone: true }, 100)) ids.push(...b.ids);
    expect(ids.sort()).toEqual(['plain@example.org', 'intl@example.org', 'zeros@example.org', 'brackets@example.org'].map(subscriberId).sort());
    const all: string[] = [];
    for await (const b of audienceBatches(handle.redis, handle.prefix, { list: 'texts' }, 100)) all.push(...b.ids);
    expect(all).toHaveLength(5);
    const [r] = await getRecipients(handle.redis, handle.prefix, [subscriberId('zeros@example.org')]);
    expect(r?.phone).toBe('+447123456789');
  });

  it('forget erases the number: nothing under the prefix holds it any more', async () => {
    const holders = async (needle: string): Promise<string[]> => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await handle.redis.scan(cursor, 'MATCH', `${handle.prefix}:*`, 'COUNT', 500);
        cursor = next;
        for (const key of keys) {
          const type = await handle.redis.type(key);
          const dump = type === 'hash' ? JSON.stringify(await handle.redis.hgetall(key)) : type === 'string' ? ((await handle.redis.get(key)) ?? '') : '';
          if (dump.includes(needle)) found.push(key);
        }
      } while (cursor !== '0');
      return found;
    };
    expect(await holders('447123456789')).toHaveLength(1);
    expect(await forgetSubscriber(handle.redis, handle.prefix, 'zeros@example.org')).toBe(true);
    expect(await holders('447123456789')).toEqual([]);
    expect(await findSubscriber(handle.redis, handle.prefix, 'zeros@example.org')).toBeNull();
  });
});

describe('the examples in config/examples', () => {
  const examples = path.join(here, '..', 'config', 'examples');

  it('residents.csv imports four residents (three with a mobile) and rejects the landline on line 6', async () => {
    const r = await importSubscribers(handle.redis, handle.prefix, path.join(examples, 'residents.csv'), 'alerts', { rejectsDir: path.join(config.dataDir, 'rejects'), now: () => NOW });
    expect(r).toMatchObject({ imported: 4, rejected: 1 });
    expect(readFileSync(r.rejectsFile!, 'utf8')).toContain('6,"phone number ""01788 123456"" is a landline: texts need a mobile"');
  });

  it('road-closure.yaml is a valid campaign on facebook and sms; its text is one GSM-7 segment', async () => {
    const draft = readCampaignFile(path.join(examples, 'road-closure.yaml'), config, { now: new Date('2026-11-01T00:00:00Z') });
    expect(Object.keys(draft.channels)).toEqual(['facebook', 'sms']);
    const ids: string[] = [];
    for await (const b of audienceBatches(handle.redis, handle.prefix, { list: 'alerts', areas: ['Rugby'], topics: ['road safety'], withPhone: true }, 100)) ids.push(...b.ids);
    expect(ids).toHaveLength(2);
    expect(smsEstimate(String(draft.channels.sms?.text), ids.length, 0.0227)).toBe(
      '1 segment (GSM-7, 129 characters) × 2 recipients with a mobile number = 2 segments (≈ £0.05 at £0.0227 a segment)',
    );
  });
});
