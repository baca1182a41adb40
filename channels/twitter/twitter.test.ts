import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redisProgress } from '../../src/domain/progress.js';
import { testConfig, silentLogger } from '../../test/helpers/context.js';
import { ROOT } from '../../test/helpers/dist.js';
import { startFakeXApi, twitterEnv, type FakeXApi } from '../../test/fakes/x-api.js';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery } from '../adapter.js';
import { apiBasePlugin } from './api-base.js';
import { contentSchema, createTwitterAdapter, splitThread, validateContent, weightedLength } from './index.js';

const creds = { appKey: 'app-key', appSecret: 'app-secret', accessToken: 'access-token', accessSecret: 'access-secret' };
const ctx = { log: silentLogger(), now: () => new Date() };

function delivery(content: Record<string, unknown>, key = `c1:twitter:${Math.random()}`): Delivery {
  return { campaignId: 'c1', campaignTitle: 'Test', kind: 'social', channel: 'twitter', content, key };
}

describe('X text counting', () => {
  it('weighs ASCII 1, CJK and emoji 2, a URL 23', () => {
    expect(weightedLength('hello')).toBe(5);
    expect(weightedLength('日本語')).toBe(6);
    expect(weightedLength('😀')).toBe(2);
    expect(weightedLength('👨‍👩‍👧‍👦')).toBe(2); // ZWJ family: one emoji
    expect(weightedLength('🇬🇧')).toBe(2);
    expect(weightedLength('👍🏽')).toBe(2);
    expect(weightedLength('e\u0301')).toBe(1); // NFC: é
    expect(weightedLength('“quotes” — and…')).toBe(16); // quotes and dash weigh 1, the ellipsis (U+2026) 2
  });

  it('counts every URL as 23 whatever its length, trailing punctuation outside', () => {
    const long = `https://www.example.org/${'x'.repeat(200)}?utm_source=crier`;
    expect(weightedLength(long)).toBe(23);
    expect(weightedLength(`See ${long}.`)).toBe(4 + 23 + 1);
    expect(weightedLength('http://t.co')).toBe(23);
    expect(weightedLength('Read warwickshire-pcc.gov.uk/news today')).toBe(5 + 23 + 6);
    expect(weightedLength('bit.ly/abc')).toBe(23);
    expect(weightedLength('notes.md')).toBe(23); // X links bare domains too (twitter-text)
    expect(weightedLength('mail me@example.com')).toBe(19); // an address, not a link
  });

  it('accepts exactly 280 and rejects 281 with the count in the message', () => {
    expect(validateContent({ text: 'a'.repeat(280) })).toEqual([]);
    expect(validateContent({ text: '語'.repeat(140) })).toEqual([]);
    expect(validateContent({ text: `${'a'.repeat(256)} https://example.com/${'p'.repeat(100)}` })).toEqual([]);
    const problems = validateContent({ text: 'a'.repeat(281) });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^text: 281 characters, X allows 280/);
    expect(validateContent({ text: '語'.repeat(141) })[0]).toMatch(/^text: 282 characters/);
    expect(validateContent({ text: 'a'.repeat(281), thread: true })).toEqual([]);
    const both = validateContent({ text: 'a'.repeat(281), images: [{ file: 'a.png' }] });
    expect(both.map((p) => p.split(':')[0])).toEqual(['images.0.alt', 'text']);
  });

  it('requires alt text on every image', () => {
    expect(validateContent({ text: 'hi', images: [{ file: 'a.png' }] })[0]).toMatch(/^images\.0\.alt: alt text is required/);
    expect(validateContent({ text: 'hi', images: [{ file: 'a.png', alt: '  ' }] })[0]).toMatch(/^images\.0\.alt: alt text is required/);
    expect(validateContent({ text: 'hi', images: [{ file: 'a.png', alt: 'A map of the area' }] })).toEqual([]);
    expect(validateContent({ text: 'hi', images: Array(5).fill({ file: 'a.png', alt: 'x' }) })[0]).toMatch(/at most 4 images/);
    expect(contentSchema.parse({ text: 'hi' })).toEqual({ text: 'hi', thread: false, images: [] });
  });

  it('splits a long text into numbered parts of at most 280 at sentence ends', () => {
    const sentence = 'Officers will hold a drop-in session at the library on Tuesday afternoon. ';
    const text = `${sentence.repeat(12)}Details: https://example.org/${'x'.repeat(300)}`;
    const parts = splitThread(text);
    expect(parts.length).toBeGreaterThan(2);
    parts.forEach((p, i) => {
      expect(weightedLength(p)).toBeLessThanOrEqual(280);
      expect(p.endsWith(` ${i + 1}/${parts.length}`)).toBe(true);
    });
    expect(parts.slice(0, -1).every((p) => /\. \d+\/\d+$/.test(p))).toBe(true);
    const rejoined = parts.map((p) => p.replace(/ \d+\/\d+$/, '')).join(' ');
    expect(rejoined).toBe(text.trim());
    expect(splitThread('short')).toEqual(['short']);
    const cjk = splitThread('語'.repeat(400));
    expect(cjk.every((p) => weightedLength(p) <= 280)).toBe(true);
    expect(cjk.map((p) => p.replace(/ \d+\/\d+$/, '')).join('')).toBe('語'.repeat(400));
  });
});

describe('X channel against the fake X API', () => {
  let fake: FakeXApi;
  let adapter: ChannelAdapter;

  beforeEach(async () => {
    fake = await startFakeXApi({ credentials: creds });
    adapter = makeAdapter(fake, creds);
  });
  afterEach(async () => {
    await adapter.close();
    await fake.close();
  });

  function makeAdapter(f: FakeXApi, c: typeof creds): ChannelAdapter {
    const config = testConfig({ env: twitterEnv(f.url, c) });
    return createTwitterAdapter(config, { ca: f.ca });
  }

  it('posts and returns the post id, signed with OAuth 1.0a', async () => {
    expect(adapter.dryRun).toBe(false);
    await adapter.verify();
    const result = await adapter.send(delivery({ text: 'Community meeting tonight at 7pm.' }), ctx);
    expect(fake.tweets).toHaveLength(1);
    expect(result.id).toBe(fake.tweets[0]!.id);
    expect(fake.tweets[0]!.text).toBe('Community meeting tonight at 7pm.');
    const post = fake.requests.find((r) => r.path === '/2/tweets')!;
    expect(post.headers.authorization).toMatch(/^OAuth .*oauth_consumer_key="app-key".*oauth_signature="/);
    expect(post.body).toEqual({ text: 'Community meeting tonight at 7pm.' });
  });

  it('posts a thread when asked, each part replying to the one before', async () => {
    const text = 'We are consulting on the police budget for next year. '.repeat(15);
    const result = await adapter.send(delivery({ text, thread: true }), ctx);
    expect(fake.tweets.length).toBeGreaterThan(2);
    expect(result.id).toBe(fake.tweets[0]!.id);
    expect(fake.tweets[0]!.inReplyTo).toBeUndefined();
    for (let i = 1; i < fake.tweets.length; i++) expect(fake.tweets[i]!.inReplyTo).toBe(fake.tweets[i - 1]!.id);
    expect(fake.tweets.every((t) => weightedLength(t.text) <= 280)).toBe(true);
  });

  it('refuses over-long text without thread: true, before calling X', async () => {
    await expect(adapter.send(delivery({ text: 'a'.repeat(281) }), ctx)).rejects.toThrow(/text: 281 characters, X allows 280/);
    expect(fake.requests).toHaveLength(0);
  });

  it('uploads images with their alt text and refuses images without', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-img-'));
    const file = path.join(dir, 'map.png');
    writeFileSync(file, Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'));
    const result = await adapter.send(delivery({ text: 'Where the new patrols go', images: [{ file, alt: 'Map of Rugby town centre' }] }), ctx);
    const [media] = [...fake.media.values()];
    expect(media).toMatchObject({ mediaType: 'image/png', totalBytes: 16, alt: 'Map of Rugby town centre' });
    expect(fake.tweets[0]).toMatchObject({ id: result.id, mediaIds: [media!.id] });
    expect(fake.requests.map((r) => r.path)).toEqual([
      '/2/media/upload/initialize',
      `/2/media/upload/${media!.id}/append`,
      `/2/media/upload/${media!.id}/finalize`,
      '/2/media/metadata',
      '/2/tweets',
    ]);
    const error = await adapter.send(delivery({ text: 'x', images: [{ file, alt: '' }] }), ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(String(error)).toMatch(/alt text is required/);
  });

  it('429 → RateLimitedError with the reset X gave; the retry after it posts once', async () => {
    fake.failNext(429, { path: '/2/tweets', resetInSeconds: 120 });
    const d = delivery({ text: 'Rate limited post' });
    const before = Math.floor(Date.now() / 1000);
    const error = await adapter.send(d, ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    const resetSeconds = (error as RateLimitedError).resetAt.getTime() / 1000;
    expect(resetSeconds).toBeGreaterThanOrEqual(before + 120);
    expect(resetSeconds).toBeLessThanOrEqual(before + 122);
    const result = await adapter.send(d, ctx);
    expect(fake.tweets.map((t) => t.text)).toEqual(['Rate limited post']);
    expect(result.id).toBe(fake.tweets[0]!.id);
  });

  it('403 duplicate content → PermanentError', async () => {
    await adapter.send(delivery({ text: 'Same words' }), ctx);
    const error = await adapter.send(delivery({ text: 'Same words' }), ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(String(error)).toMatch(/duplicate content/);
    fake.failNext(400, { detail: 'The `text` field is invalid.' });
    await expect(adapter.send(delivery({ text: 'other' }), ctx)).rejects.toThrow(PermanentError);
  });

  it('a retry after an unanswered post finds the post instead of failing on "duplicate"', async () => {
    const d = delivery({ text: 'Results are out: https://example.org/results/2026' });
    fake.failNext(0, { path: '/2/tweets', afterEffect: true }); // X posts it, the answer is lost
    await expect(adapter.send(d, ctx)).rejects.toThrow(TransientError);
    expect(fake.tweets).toHaveLength(1);
    const result = await adapter.send(d, ctx);
    expect(result.id).toBe(fake.tweets[0]!.id);
    expect(fake.tweets).toHaveLength(1);
  });

  it('finds the unanswered post behind the posts made while the retry waited', async () => {
    const d = delivery({ text: 'Water main repaired on Station Road' });
    fake.failNext(0, { path: '/2/tweets', afterEffect: true });
    await expect(adapter.send(d, ctx)).rejects.toThrow(TransientError);
    // Other campaigns' posts go out during the backoff (the reliability suite's social case: 11 of them).
    for (let i = 0; i < 15; i++) await adapter.send(delivery({ text: `Other update ${i}` }), ctx);
    const posts = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/2/tweets').length;
    const before = posts();
    const result = await adapter.send(d, ctx);
    expect(result.id).toBe(fake.tweets[0]!.id);
    expect(posts()).toBe(before);
    expect(fake.tweets).toHaveLength(16);
  });

  it('401 → NeedsReauthError (bad credentials, on send and verify)', async () => {
    const wrong = makeAdapter(fake, { ...creds, accessSecret: 'revoked' });
    try {
      await expect(wrong.send(delivery({ text: 'nope' }), ctx)).rejects.toThrow(NeedsReauthError);
      await expect(wrong.verify()).rejects.toThrow(/reconnect account/);
    } finally {
      await wrong.close();
    }
    expect(fake.tweets).toHaveLength(0);
  });

  it('5xx and network failures → TransientError', async () => {
    fake.failNext(503);
    await expect(adapter.send(delivery({ text: 'a' }), ctx)).rejects.toThrow(TransientError);
    fake.failNext(500, { drop: true });
    await expect(adapter.send(delivery({ text: 'b' }), ctx)).rejects.toThrow(TransientError);
    expect(fake.tweets).toHaveLength(0);
  });

  it('resumes an interrupted thread instead of re-posting its start', async () => {
    const d = delivery({ text: 'Sentence number one is here for you. '.repeat(20), thread: true });
    fake.failNext(503, { path: '/2/tweets', skip: 1 }); // the first part goes out, the second fails
    await expect(adapter.send(d, ctx)).rejects.toThrow(TransientError);
    expect(fake.tweets).toHaveLength(1);
    const result = await adapter.send(d, ctx);
    expect(result.id).toBe(fake.tweets[0]!.id);
    expect(fake.tweets.length).toBeGreaterThan(2);
    const texts = fake.tweets.map((t) => t.text);
    expect(new Set(texts).size).toBe(texts.length);
    for (let i = 1; i < fake.tweets.length; i++) expect(fake.tweets[i]!.inReplyTo).toBe(fake.tweets[i - 1]!.id);
  });

  it('a thread cut by a 429 is resumed by another worker process from the progress kept in Redis', async () => {
    const config = testConfig();
    const redis = new Redis(config.redisUrl!);
    try {
      const d = delivery({ text: 'Sentence number one is here for you. '.repeat(20), thread: true });
      const withProgress = { ...ctx, progress: redisProgress(redis, config.redis_prefix, d.key) };
      fake.failNext(429, { path: '/2/tweets', skip: 1, resetInSeconds: 60 }); // part 1 goes out, part 2 is rate limited
      await expect(adapter.send(d, withProgress)).rejects.toThrow(RateLimitedError);
      expect(fake.tweets).toHaveLength(1);
      expect(JSON.parse((await withProgress.progress.get())!)).toEqual({ ids: [fake.tweets[0]!.id], ambiguous: false });

      const other = makeAdapter(fake, creds); // a second process: nothing in memory
      try {
        const result = await other.send(d, withProgress);
        expect(result.id).toBe(fake.tweets[0]!.id);
      } finally {
        await other.close();
      }
      const texts = fake.tweets.map((t) => t.text);
      expect(texts.length).toBeGreaterThan(2);
      expect(new Set(texts).size).toBe(texts.length); // nothing posted twice
      for (let i = 1; i < fake.tweets.length; i++) expect(fake.tweets[i]!.inReplyTo).toBe(fake.tweets[i - 1]!.id);
      expect(await withProgress.progress.get()).toBeUndefined(); // done: the notes are gone
    } finally {
      redis.disconnect();
    }
  });
});

describe('X channel without credentials', () => {
  it('is a dry run that writes <campaignId>-twitter.json', async () => {
    const config = testConfig();
    const adapter = createTwitterAdapter(config);
    expect(adapter.dryRun).toBe(true);
    await adapter.verify();
    const result = await adapter.send(delivery({ text: 'Hello from Crier https://example.org/a/long/link' }), ctx);
    expect(result.outboxFile).toBe(path.join(config.outboxDir, 'c1-twitter.json'));
    const written = JSON.parse(readFileSync(result.outboxFile!, 'utf8')) as { channel: string; posts: Array<{ text: string }> };
    expect(written.channel).toBe('twitter');
    expect(written.posts).toEqual([{ text: 'Hello from Crier https://example.org/a/long/link', images: [] }]);
    await adapter.close();
  });

  it('refuses a plain-http TWITTER_API_BASE with a clear message, when the adapter is made', () => {
    expect(() => apiBasePlugin('http://127.0.0.1:1')).toThrow(/https:\/\//);
    // Made at start (crier start lists the dry-run channels), before twitter-api-v2 is loaded.
    expect(() => createTwitterAdapter(testConfig({ env: twitterEnv('http://127.0.0.1:1', creds) }))).toThrow(/TWITTER_API_BASE must be an https:\/\//);
  });
});

describe('twitter-api-v2 is loaded only to talk to X', () => {
  it('a worker that loads every channel and collector but never posts to X does not load it; the first post does', () => {
    // In a child process of the built code: a module hook lists the packages imported. The hook runs on
    // its own thread, so both sides append to one file synchronously (stderr from two threads may come
    // out of order): the hook's line is written before the import it resolves goes on.
    const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'crier-x-lazy-')), 'events');
    const hook = `import { appendFileSync } from 'node:fs'; export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes('/node_modules/twitter-api-v2/')) appendFileSync(${JSON.stringify(log)}, 'LOADED twitter-api-v2\\n'); return r; }`;
    const script = [
      `import { register } from 'node:module';`,
      `import { appendFileSync } from 'node:fs';`,
      `register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`,
      `await import(${JSON.stringify(path.join(ROOT, 'dist/workers/index.js'))});`,
      `await import(${JSON.stringify(path.join(ROOT, 'dist/workers/collect/registry.js'))});`,
      `appendFileSync(${JSON.stringify(log)}, 'IMPORTED\\n');`,
      `const { lazyXClient } = await import(${JSON.stringify(path.join(ROOT, 'dist/channels/twitter/index.js'))});`,
      `const x = lazyXClient({ appKey: 'a', appSecret: 'b', accessToken: 'c', accessSecret: 'd' }, 'https://127.0.0.1:1');`,
      `await x.get(); x.close(); appendFileSync(${JSON.stringify(log)}, 'CLIENT\\n');`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toEqual(['IMPORTED', 'LOADED twitter-api-v2', 'CLIENT']);
  });
});
