import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { facebookEnv, startFakeGraphApi, type FakeGraphApi } from '../../test/fakes/graph-api.js';
import { silentLogger, testConfig } from '../../test/helpers/context.js';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery, type DeliveryProgress } from '../adapter.js';
import { issuesOf } from '../twitter/content.js';
import { contentSchema, createFacebookAdapter } from './index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const image = path.join(here, '..', '..', 'test', 'fixtures', 'csv', 'image.png');

function memoryProgress(): DeliveryProgress & { value?: string } {
  const p: DeliveryProgress & { value?: string } = {
    async get() {
      return p.value;
    },
    async set(v) {
      p.value = v;
    },
    async clear() {
      p.value = undefined;
    },
  };
  return p;
}

let n = 0;
function delivery(content: Record<string, unknown>): Delivery {
  n += 1;
  return { campaignId: `cfb${n}`, campaignTitle: 'Test', kind: 'social', channel: 'facebook', content, key: `cfb${n}:facebook:-` };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof Error)) throw new Error('expected the send to fail');
  return err;
}

describe('Facebook content', () => {
  it('needs text, takes a link or images with alt text, not both', () => {
    expect(issuesOf(contentSchema, { text: 'Hello', link: 'https://example.org' })).toEqual([]);
    expect(issuesOf(contentSchema, {})[0]).toMatch(/^text: text is required/);
    expect(issuesOf(contentSchema, { text: 'x', link: 'ftp://example.org' })[0]).toMatch(/^link: link must be an http\(s\) URL/);
    expect(issuesOf(contentSchema, { text: 'x', images: [{ file: 'a.png' }] })[0]).toMatch(/^images\.0\.alt: alt text is required/);
    expect(issuesOf(contentSchema, { text: 'x', link: 'https://example.org', images: [{ file: 'a.png', alt: 'A' }] })[0]).toMatch(/^link: a Facebook post shows either/);
    expect(issuesOf(contentSchema, { text: 'a'.repeat(63_207) })[0]).toMatch(/^text: 63207 characters, Facebook allows 63206/);
  });
});

describe('Facebook channel against the fake Graph API', () => {
  let fake: FakeGraphApi;
  let adapter: ChannelAdapter;
  const log = silentLogger();

  beforeEach(async () => {
    fake = await startFakeGraphApi();
    adapter = createFacebookAdapter(testConfig({ env: facebookEnv(fake) }));
  });
  afterEach(async () => {
    await adapter.close();
    await fake.close();
  });

  it('posts text and link to /{page}/feed under the configured version, token in the header only', async () => {
    await adapter.verify();
    const r = await adapter.send(delivery({ text: 'Have your say on the police budget', link: 'https://example.org/budget' }), { log, now: () => new Date() });
    expect(fake.posts).toHaveLength(1);
    expect(fake.posts[0]).toMatchObject({ id: r.id, message: 'Have your say on the police budget', link: 'https://example.org/budget' });
    expect(r.id).toMatch(new RegExp(`^${fake.pageId}_\\d+$`));
    const feed = fake.requests.find((q) => q.path.endsWith('/feed'))!;
    expect(feed.version).toBe('v24.0');
    expect(feed.authorization).toBe(`Bearer ${fake.token}`);
    expect(fake.requests.every((q) => q.query.access_token === undefined)).toBe(true);
  });

  it('the API version comes from config (facebook.api_version)', async () => {
    const other = createFacebookAdapter(testConfig({ env: facebookEnv(fake), yaml: 'facebook:\n  api_version: v23.0\n' }));
    await other.send(delivery({ text: 'Versioned' }), { log, now: () => new Date() });
    expect(fake.requests.at(-1)?.version).toBe('v23.0');
  });

  it('images go up unpublished with their alt text, then one post attaches them; a retry reuses them', async () => {
    const progress = memoryProgress();
    const content = { text: 'Our new neighbourhood team', images: [{ file: image, alt: 'Six officers outside Rugby station' }, { file: image, alt: 'A patrol car' }] };
    const d = delivery(content);
    fake.failNext(2, { path: '/feed', status: 500 });
    const err = await failure(adapter.send(d, { log, now: () => new Date(), progress }));
    expect(err).toBeInstanceOf(TransientError);
    expect(fake.photos.map((p) => [p.alt, p.published])).toEqual([
      ['Six officers outside Rugby station', false],
      ['A patrol car', false],
    ]);
    const r = await adapter.send(d, { log, now: () => new Date(), progress });
    expect(fake.photos).toHaveLength(2);
    expect(fake.posts).toHaveLength(1);
    expect(fake.posts[0]).toMatchObject({ id: r.id, photoIds: fake.photos.map((p) => p.id) });
    // A worker that posted and died before marking the delivery finds the post in progress: no second post.
    expect(await adapter.send(d, { log, now: () => new Date(), progress })).toEqual({ id: r.id });
    expect(fake.posts).toHaveLength(1);
  });

  it('an attempt that died with the post in flight: the retry finds the post on the Page instead of posting again', async () => {
    const d = delivery({ text: 'Knife amnesty bins at every station this week' });
    const posted = await adapter.send(d, { log, now: () => new Date() });
    const inFlight = memoryProgress();
    inFlight.value = JSON.stringify({ photos: [], postingSince: new Date(Date.now() - 60_000).toISOString() });
    expect(await adapter.send(d, { log, now: () => new Date(), progress: inFlight })).toEqual({ id: posted.id });
    expect(fake.posts).toHaveLength(1);
    expect(JSON.parse(inFlight.value ?? '{}')).toMatchObject({ postId: posted.id });
    // Nothing on the Page: the retry posts.
    const notPosted = memoryProgress();
    notPosted.value = JSON.stringify({ photos: [], postingSince: new Date(Date.now() - 60_000).toISOString() });
    const r = await adapter.send(delivery({ text: 'A different post' }), { log, now: () => new Date(), progress: notPosted });
    expect(fake.posts.map((p) => p.id)).toEqual([posted.id, r.id]);
  });

  it('190 → reconnect account; 506 duplicate and 368 blocked → permanent; 1/2 and 5xx → retry', async () => {
    const send = () => adapter.send(delivery({ text: `Post ${Math.random()}` }), { log, now: () => new Date() });
    fake.failNext(190, { path: '/feed' });
    const reauth = await failure(send());
    expect(reauth).toBeInstanceOf(NeedsReauthError);
    expect(reauth.message).toMatch(/^reconnect account: Facebook refused the Page token: Error validating access token: Session has expired\. \(code 190\)/);
    fake.failNext(506, { path: '/feed', message: 'Duplicate status message' });
    expect(await failure(send())).toBeInstanceOf(PermanentError);
    fake.failNext(368, { path: '/feed', message: 'The action attempted has been deemed abusive or is otherwise disallowed' });
    const blocked = await failure(send());
    expect(blocked).toBeInstanceOf(PermanentError);
    expect(blocked.message).toMatch(/blocked the post.*code 368/);
    fake.failNext(1, { path: '/feed', status: 500, message: 'An unknown error occurred' });
    expect(await failure(send())).toBeInstanceOf(TransientError);
    expect(fake.posts).toHaveLength(0);
  });

  it.each([4, 17, 32, 613])('rate limit code %i → pause until Meta’s estimate (15 minutes without one)', async (code) => {
    const now = new Date('2026-11-23T10:00:00Z');
    fake.failNext(code, { path: '/feed', regainMinutes: 7 });
    const err = await failure(adapter.send(delivery({ text: `Limited ${code}` }), { log, now: () => now }));
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).resetAt.toISOString()).toBe('2026-11-23T10:07:00.000Z');
    fake.failNext(code, { path: '/feed' });
    const bare = await failure(adapter.send(delivery({ text: `Limited ${code} again` }), { log, now: () => now }));
    expect((bare as RateLimitedError).resetAt.toISOString()).toBe('2026-11-23T10:15:00.000Z');
  });

  it('verify with a wrong token says reconnect account; an unreachable host is transient', async () => {
    const bad = createFacebookAdapter(testConfig({ env: { ...facebookEnv(fake), FACEBOOK_PAGE_TOKEN: 'expired' } }));
    const err = await failure(bad.verify());
    expect(err).toBeInstanceOf(NeedsReauthError);
    expect(err.message).toMatch(/reconnect account/);
    const gone = createFacebookAdapter(testConfig({ env: { ...facebookEnv(fake), FACEBOOK_GRAPH_URL: 'http://127.0.0.1:1' } }));
    expect(await failure(gone.send(delivery({ text: 'Nowhere' }), { log, now: () => new Date() }))).toBeInstanceOf(TransientError);
  });
});
