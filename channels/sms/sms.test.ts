import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { notifyEnv, startFakeNotifyApi, type FakeNotifyApi } from '../../test/fakes/notify-api.js';
import { silentLogger, testConfig } from '../../test/helpers/context.js';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery, type Recipient } from '../adapter.js';
import { issuesOf } from '../twitter/content.js';
import { contentSchema, createSmsAdapter } from './index.js';
import { describeLength, smsLength } from './segments.js';

const log = silentLogger();
const resident: Recipient = { id: 'sub7', email: 'res@example.org', name: 'Res', area: 'Rugby', topics: ['roads'], phone: '+447911123456' };
let n = 0;
function delivery(content: Record<string, unknown>, recipient: Recipient = resident): Delivery {
  n += 1;
  return { campaignId: `csms${n}`, campaignTitle: 'Test', kind: 'community', channel: 'sms', content, recipient, key: `csms${n}:sms:${recipient.id}` };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof Error)) throw new Error('expected a failure');
  return err;
}

describe('SMS length in segments', () => {
  it('GSM-7: 160 in one, then 153 a segment; extension characters count 2 and never straddle', () => {
    expect(smsLength('a'.repeat(160))).toMatchObject({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(smsLength('a'.repeat(161))).toMatchObject({ segments: 2 });
    expect(smsLength('a'.repeat(306))).toMatchObject({ segments: 2 });
    expect(smsLength('a'.repeat(307))).toMatchObject({ segments: 3 });
    expect(smsLength('€'.repeat(80))).toMatchObject({ encoding: 'GSM-7', units: 160, segments: 1 });
    // 152 septets then a two-septet €: it moves whole to the second segment.
    expect(smsLength(`${'a'.repeat(152)}€${'a'.repeat(152)}`)).toMatchObject({ units: 306, segments: 3 });
    expect(smsLength('Café £5 @ 10:00 — no').encoding).toBe('UCS-2'); // the em dash is not GSM
    expect(smsLength('Café £5 @ 10:00 - ok').encoding).toBe('GSM-7');
  });

  it('UCS-2: 70 in one, then 67; an emoji is two units', () => {
    expect(smsLength(`’${'a'.repeat(69)}`)).toMatchObject({ encoding: 'UCS-2', units: 70, segments: 1 });
    expect(smsLength(`’${'a'.repeat(70)}`)).toMatchObject({ segments: 2 });
    expect(smsLength('🚓'.repeat(35))).toMatchObject({ units: 70, segments: 1 });
    expect(describeLength(smsLength('Don’t forget'))).toBe('1 segment (UCS-2 because of "’", 12 characters)');
    expect(describeLength(smsLength('x'.repeat(200)))).toBe('2 segments (GSM-7, 200 characters)');
  });
});

describe('SMS content', () => {
  it('needs a list and text, at most 918 characters', () => {
    expect(issuesOf(contentSchema, { list: 'texts', text: 'Hi', areas: ['Rugby'], topics: ['roads'] })).toEqual([]);
    expect(issuesOf(contentSchema, { text: 'Hi' })[0]).toMatch(/^list: list is required/);
    expect(issuesOf(contentSchema, { list: 'texts', text: 'x'.repeat(919) })[0]).toMatch(/at most 918 characters/);
    expect(issuesOf(contentSchema, { list: 'texts', text: 'Hi', subject: 'x' })[0]).toMatch(/subject/);
  });
});

describe('SMS through GOV.UK Notify (fake speaking its API)', () => {
  let fake: FakeNotifyApi;
  let adapter: ChannelAdapter;

  beforeEach(async () => {
    fake = await startFakeNotifyApi();
    adapter = createSmsAdapter(testConfig({ env: notifyEnv(fake) }));
  });
  afterEach(async () => {
    await adapter.close();
    await fake.close();
  });

  it('sends through the template with ((body)), a signed JWT, the delivery key as reference; returns the notification id', async () => {
    expect(adapter.dryRun).toBe(false);
    await adapter.verify();
    const d = delivery({ list: 'texts', text: '  Road closed at Junction 1 tonight.  ' });
    const r = await adapter.send(d, { log, now: () => new Date() });
    expect(fake.authFailures).toBe(0);
    expect(fake.texts).toEqual([{ id: r.id, to: '+447911123456', body: 'Road closed at Junction 1 tonight.', reference: d.key }]);
  });

  it('a key that does not sign right → reconnect account', async () => {
    const wrong = createSmsAdapter(testConfig({ env: { ...notifyEnv(fake), NOTIFY_API_KEY: `${fake.apiKey.slice(0, -36)}00000000-0000-4000-8000-000000000000` } }));
    const err = await failure(wrong.send(delivery({ list: 'texts', text: 'Hi' }), { log, now: () => new Date() }));
    expect(err).toBeInstanceOf(NeedsReauthError);
    expect(err.message).toMatch(/^reconnect account: GOV.UK Notify refused the API key \(403: AuthError: Invalid token: signature, api token not found\)/);
    expect(fake.texts).toHaveLength(0);
  });

  it('400 ValidationError is permanent for that recipient; 5xx retries; 429 pauses a minute, the daily limit until midnight', async () => {
    const send = (now = new Date()) => adapter.send(delivery({ list: 'texts', text: 'Hi' }), { log, now: () => now });
    fake.failNext(400, { error: 'ValidationError', message: 'phone_number Not a UK mobile number' });
    const bad = await failure(send());
    expect(bad).toBeInstanceOf(PermanentError);
    expect(bad.message).toBe('GOV.UK Notify refused the text (400: ValidationError: phone_number Not a UK mobile number)');
    fake.failNext(500);
    expect(await failure(send())).toBeInstanceOf(TransientError);
    const now = new Date('2026-07-01T15:00:00Z');
    fake.failNext(429);
    const limited = await failure(send(now));
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).resetAt.toISOString()).toBe('2026-07-01T15:01:00.000Z');
    fake.failNext(429, { error: 'TooManyRequestsError', message: 'Exceeded send limits (250000) for today' });
    const daily = await failure(send(now));
    // Midnight in London (BST in July) is 23:00 UTC.
    expect((daily as RateLimitedError).resetAt.toISOString()).toBe('2026-07-01T23:00:00.000Z');
    expect(fake.texts).toHaveLength(0);
  });

  it('a recipient without a number is a permanent failure, not a send', async () => {
    const err = await failure(adapter.send(delivery({ list: 'texts', text: 'Hi' }, { ...resident, phone: undefined }), { log, now: () => new Date() }));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/has no mobile number/);
  });

  it('verify refuses a template without ((body))', async () => {
    const other = await startFakeNotifyApi({ templateBody: 'Hello ((name))' });
    try {
      const a = createSmsAdapter(testConfig({ env: notifyEnv(other) }));
      expect((await failure(a.verify())).message).toMatch(/must contain the placeholder \(\(body\)\)/);
    } finally {
      await other.close();
    }
  });

  it('Notify unreachable is transient', async () => {
    const gone = createSmsAdapter(testConfig({ env: { ...notifyEnv(fake), NOTIFY_BASE_URL: 'http://127.0.0.1:1' } }));
    expect(await failure(gone.send(delivery({ list: 'texts', text: 'Hi' }), { log, now: () => new Date() }))).toBeInstanceOf(TransientError);
  });
});

describe('SMS through the HTTP gateway', () => {
  it('without Notify, posts {to, text} to community.gateway_url with the delivery key', async () => {
    const got: Array<{ body: Record<string, unknown>; key: string | undefined }> = [];
    const server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        got.push({ body: JSON.parse(raw) as Record<string, unknown>, key: req.headers['idempotency-key'] as string | undefined });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`;
      const a = createSmsAdapter(testConfig({ yaml: `community:\n  gateway_url: ${url}\n` }));
      expect(a.dryRun).toBe(false);
      const d = delivery({ list: 'texts', text: 'Gateway text' });
      await a.send(d, { log, now: () => new Date() });
      expect(got).toEqual([{ body: { to: '+447911123456', subscriber_id: 'sub7', area: 'Rugby', topics: ['roads'], text: 'Gateway text' }, key: d.key }]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
