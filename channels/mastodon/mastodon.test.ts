import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testConfig, silentLogger } from '../../test/helpers/context.js';
import { startFakeMastodonApi, type FakeMastodonApi } from '../../test/fakes/mastodon-api.js';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery } from '../adapter.js';
import { contentSchema, createMastodonAdapter, mastodonLength, validateContent } from './index.js';

const ctx = { log: silentLogger(), now: () => new Date() };

function delivery(content: Record<string, unknown>, key = `c2:mastodon:${Math.random()}`): Delivery {
  return { campaignId: 'c2', campaignTitle: 'Test', kind: 'social', channel: 'mastodon', content, key };
}

describe('Mastodon content', () => {
  it('counts graphemes, links as 23, remote mentions by name, spoiler text included', () => {
    expect(mastodonLength('hello')).toBe(5);
    expect(mastodonLength(`see https://example.org/${'x'.repeat(100)}`)).toBe(4 + 23);
    expect(mastodonLength('👨‍👩‍👧‍👦 語')).toBe(3);
    expect(mastodonLength('hi @pcc@police.social')).toBe(7);
    expect(mastodonLength('body', 'CW')).toBe(6);
  });

  it('validates length, visibility and alt text with clear messages', () => {
    expect(validateContent({ text: 'a'.repeat(500) })).toEqual([]);
    expect(validateContent({ text: 'a'.repeat(501) })[0]).toMatch(/^text: 501 characters, Mastodon allows 500/);
    expect(validateContent({ text: 'a'.repeat(490), spoiler_text: 'b'.repeat(20) })[0]).toMatch(/^text: 510 characters/);
    expect(validateContent({ text: 'hi', visibility: 'direct' })[0]).toMatch(/^visibility: visibility must be public, unlisted or private/);
    expect(validateContent({ text: 'hi', images: [{ file: 'a.jpg' }] })[0]).toMatch(/^images\.0\.alt: alt text is required/);
    expect(contentSchema.parse({ text: 'hi' })).toEqual({ text: 'hi', visibility: 'public', images: [] });
  });
});

describe('Mastodon channel against the fake server', () => {
  let fake: FakeMastodonApi;
  let adapter: ChannelAdapter;

  beforeEach(async () => {
    fake = await startFakeMastodonApi();
    adapter = createMastodonAdapter(testConfig({ env: { MASTODON_URL: fake.url, MASTODON_TOKEN: fake.token } }));
  });
  afterEach(async () => {
    await adapter.close();
    await fake.close();
  });

  it('posts with a Bearer token and the delivery key as Idempotency-Key, returning the status id', async () => {
    expect(adapter.dryRun).toBe(false);
    await adapter.verify();
    const d = delivery({ text: 'Drop-in surgery on Friday', visibility: 'unlisted', spoiler_text: 'Local news' });
    const result = await adapter.send(d, ctx);
    expect(fake.statuses).toHaveLength(1);
    expect(fake.statuses[0]).toMatchObject({ id: result.id, text: 'Drop-in surgery on Friday', visibility: 'unlisted', spoilerText: 'Local news' });
    const req = fake.requests.find((r) => r.path === '/api/v1/statuses')!;
    expect(req.headers.authorization).toBe(`Bearer ${fake.token}`);
    expect(req.headers['idempotency-key']).toBe(d.key);
  });

  it('a retry after a lost answer returns the same status, not a second one', async () => {
    const d = delivery({ text: 'Posted once only' });
    fake.failNext(0, { path: '/api/v1/statuses', afterEffect: true });
    await expect(adapter.send(d, ctx)).rejects.toThrow(TransientError);
    expect(fake.statuses).toHaveLength(1);
    const result = await adapter.send(d, ctx);
    expect(fake.statuses).toHaveLength(1);
    expect(result.id).toBe(fake.statuses[0]!.id);
  });

  it('uploads images with their description before the status', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-img-'));
    const file = path.join(dir, 'poster.jpg');
    writeFileSync(file, Buffer.from('ffd8ffe000104a464946', 'hex'));
    const result = await adapter.send(delivery({ text: 'New poster', images: [{ file, alt: 'Poster: safer streets week' }] }), ctx);
    const [media] = [...fake.media.values()];
    expect(media).toMatchObject({ description: 'Poster: safer streets week', fileName: 'poster.jpg', type: 'image/jpeg', size: 10 });
    expect(fake.statuses[0]).toMatchObject({ id: result.id, mediaIds: [media!.id] });
  });

  it('429 → RateLimitedError at X-RateLimit-Reset', async () => {
    fake.failNext(429, { path: '/api/v1/statuses', resetInSeconds: 90 });
    const before = Date.now();
    const error = await adapter.send(delivery({ text: 'later' }), ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    const resetAt = (error as RateLimitedError).resetAt.getTime();
    expect(resetAt).toBeGreaterThanOrEqual(before + 89_000);
    expect(resetAt).toBeLessThanOrEqual(Date.now() + 91_000);
  });

  it('401 and 403 → NeedsReauthError; 422 → PermanentError; 500 and network → TransientError', async () => {
    fake.failNext(401);
    await expect(adapter.send(delivery({ text: 'a' }), ctx)).rejects.toThrow(NeedsReauthError);
    fake.failNext(403, { error: 'This action is outside the authorized scopes' });
    await expect(adapter.send(delivery({ text: 'b' }), ctx)).rejects.toThrow(/reconnect account.*authorized scopes/);
    fake.failNext(422, { error: "Validation failed: Text can't be blank" });
    const invalid = await adapter.send(delivery({ text: 'c' }), ctx).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(PermanentError);
    expect(String(invalid)).toMatch(/Text can't be blank/);
    fake.failNext(500);
    await expect(adapter.send(delivery({ text: 'd' }), ctx)).rejects.toThrow(TransientError);
    fake.failNext(0, { drop: true });
    await expect(adapter.send(delivery({ text: 'e' }), ctx)).rejects.toThrow(TransientError);
    expect(fake.statuses).toHaveLength(0);
  });

  it('a wrong token fails verify with reconnect account', async () => {
    const wrong = createMastodonAdapter(testConfig({ env: { MASTODON_URL: fake.url, MASTODON_TOKEN: 'revoked' } }));
    await expect(wrong.verify()).rejects.toThrow(NeedsReauthError);
    await wrong.close();
  });
});

describe('Mastodon channel without an account', () => {
  it('is a dry run that writes <campaignId>-mastodon.json', async () => {
    const config = testConfig();
    const adapter = createMastodonAdapter(config);
    expect(adapter.dryRun).toBe(true);
    await adapter.verify();
    const result = await adapter.send(delivery({ text: 'Hello fediverse' }), ctx);
    expect(result.outboxFile).toBe(path.join(config.outboxDir, 'c2-mastodon.json'));
    const written = JSON.parse(readFileSync(result.outboxFile!, 'utf8')) as { channel: string; status: { status: string; visibility: string } };
    expect(written).toMatchObject({ channel: 'mastodon', status: { status: 'Hello fediverse', visibility: 'public' } });
    await expect(adapter.send(delivery({ text: '' }), ctx)).rejects.toThrow(PermanentError);
    await adapter.close();
  });
});
