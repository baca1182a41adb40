import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import Parser from 'rss-parser';
import { connectRedis, type RedisHandle } from '../../src/redis/connection.js';
import { silentLogger, testConfig } from '../../test/helpers/context.js';
import { renderAtom, renderRss, safeHtml } from './feed.js';
import { pressRoutes } from './routes.js';
import { getRelease, getReleaseForCampaign, listReleases, publishRelease, slugify } from './store.js';

let handle: RedisHandle;
let basePrefix: string;
let n = 0;
const parser = new Parser();
const PUBLIC = 'https://pcc.example.org';

beforeAll(async () => {
  const config = testConfig();
  basePrefix = config.redis_prefix;
  handle = await connectRedis(config, silentLogger());
});

afterAll(async () => {
  await handle.close();
});

function prefix(): string {
  n += 1;
  return `${basePrefix}-${n}`;
}

const T1 = new Date('2026-11-20T10:00:00Z');
const T2 = new Date('2026-12-01T00:01:00Z');
const HEADLINE_1 = 'New rural crime team';
const HEADLINE_2 = 'Commissioner\'s <b>"Safer Streets"</b> fund & grants — Café Ōwn ünïcode 🚓';

async function publishTwo(p: string) {
  const a = await publishRelease(handle.redis, p, {
    campaignId: 'c_one',
    slug: slugify(HEADLINE_1, T1),
    headline: HEADLINE_1,
    bodyHtml: '<p>The team starts on <strong>Monday</strong>.</p>',
    bodyText: 'The team starts on Monday.',
    publishedAt: T1,
  });
  const b = await publishRelease(handle.redis, p, {
    campaignId: 'c_two',
    slug: slugify(HEADLINE_2, T2),
    headline: HEADLINE_2,
    bodyHtml: '<p>Grants of up to £5,000 for <a href="https://example.org/apply?a=1&amp;b=2">groups</a> ]]> here.</p>',
    bodyText: 'Grants of up to £5,000 for groups here.',
    publishedAt: T2,
  });
  return [a.release, b.release] as const;
}

async function appFor(p: string, now: () => Date): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await app.register(pressRoutes({ redis: handle.redis, prefix: p, publicUrl: `${PUBLIC}/`, siteTitle: 'Office of the PCC', now }));
  await app.ready();
  return app;
}

describe('slugify', () => {
  it('makes dated lower-case ASCII slugs in local time', () => {
    expect(slugify('New rural crime team', new Date('2026-12-01T09:00:00Z'))).toBe('2026-12-01-new-rural-crime-team');
    // 00:01 BST on 1 July is 23:01 UTC on 30 June: the slug carries the local day.
    expect(slugify('Summer patrols', new Date('2026-06-30T23:01:00Z'))).toBe('2026-07-01-summer-patrols');
    expect(slugify('Café Ōwn — Straße & Æsir’s Łódź!', T1)).toBe('2026-11-20-cafe-own-strasse-aesirs-lodz');
    expect(slugify('🚓 ✨', T1)).toBe('2026-11-20-press-release');
    const long = slugify('word '.repeat(40), T1);
    expect(long.length).toBeLessThanOrEqual(11 + 80);
    expect(long).toMatch(/^2026-11-20-word(-word)+$/);
  });
});

describe('press store', () => {
  it('publishes idempotently per campaign and adds -2 on a slug collision', async () => {
    const p = prefix();
    const base = { slug: slugify(HEADLINE_1, T1), headline: HEADLINE_1, bodyHtml: '<p>x</p>', bodyText: 'x', publishedAt: T1 };
    const first = await publishRelease(handle.redis, p, { ...base, campaignId: 'c_a' });
    expect(first).toEqual({ created: true, release: { ...base, campaignId: 'c_a' } });
    const again = await publishRelease(handle.redis, p, { ...base, campaignId: 'c_a', headline: 'changed' });
    expect(again.created).toBe(false);
    expect(again.release.headline).toBe(HEADLINE_1);
    const other = await publishRelease(handle.redis, p, { ...base, campaignId: 'c_b' });
    expect(other.release.slug).toBe('2026-11-20-new-rural-crime-team-2');
    const third = await publishRelease(handle.redis, p, { ...base, campaignId: 'c_c' });
    expect(third.release.slug).toBe('2026-11-20-new-rural-crime-team-3');
    expect((await listReleases(handle.redis, p)).length).toBe(3);
    expect((await getReleaseForCampaign(handle.redis, p, 'c_b'))?.slug).toBe(other.release.slug);
    expect(await getRelease(handle.redis, p, 'no-such-release')).toBeNull();
    expect(await getRelease(handle.redis, p, '../../etc')).toBeNull();
    const keys = await handle.redis.keys(`${p}:*`);
    expect(keys.every((k) => k.startsWith(`${p}:press:`))).toBe(true);
  });

  it('concurrent publishes of one campaign make one release', async () => {
    const p = prefix();
    const input = { campaignId: 'c_race', slug: slugify('Race', T1), headline: 'Race', bodyHtml: '', bodyText: '', publishedAt: T1 };
    const results = await Promise.all(Array.from({ length: 8 }, () => publishRelease(handle.redis, p, input)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await listReleases(handle.redis, p)).toHaveLength(1);
  });

  it('lists newest first, limited, and hides the future when given now', async () => {
    const p = prefix();
    const [a, b] = await publishTwo(p);
    expect((await listReleases(handle.redis, p)).map((r) => r.slug)).toEqual([b.slug, a.slug]);
    expect((await listReleases(handle.redis, p, 1)).map((r) => r.slug)).toEqual([b.slug]);
    expect((await listReleases(handle.redis, p, 50, new Date(T2.getTime() - 1000))).map((r) => r.slug)).toEqual([a.slug]);
    expect((await listReleases(handle.redis, p, 50, T2)).map((r) => r.slug)).toEqual([b.slug, a.slug]);
    const got = await getRelease(handle.redis, p, b.slug);
    expect(got?.headline).toBe(HEADLINE_2);
    expect(got?.publishedAt.toISOString()).toBe(T2.toISOString());
  });
});

describe('press feeds and pages', () => {
  it('serves RSS 2.0 that parses back with titles, links and dates', async () => {
    const p = prefix();
    const [a, b] = await publishTwo(p);
    const app = await appFor(p, () => new Date('2026-12-02T00:00:00Z'));
    const res = await app.inject({ method: 'GET', url: '/press.rss' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/rss+xml; charset=utf-8');
    expect(res.body).toContain('<atom:link href="https://pcc.example.org/press.rss" rel="self" type="application/rss+xml"/>');
    expect(res.body).toContain('<guid isPermaLink="true">');
    expect(res.body).toContain('<pubDate>Tue, 01 Dec 2026 00:01:00 GMT</pubDate>');
    const feed = await parser.parseString(res.body);
    expect(feed.title).toBe('Office of the PCC');
    expect(feed.items.map((i) => i.title)).toEqual([HEADLINE_2, HEADLINE_1]);
    expect(feed.items.map((i) => i.link)).toEqual([`${PUBLIC}/press/${b.slug}`, `${PUBLIC}/press/${a.slug}`]);
    expect(feed.items.map((i) => i.guid)).toEqual([`${PUBLIC}/press/${b.slug}`, `${PUBLIC}/press/${a.slug}`]);
    expect(feed.items.map((i) => i.isoDate)).toEqual([T2.toISOString(), T1.toISOString()]);
    expect(feed.items[0]!.content).toContain('href="https://example.org/apply?a=1&amp;b=2"');
    expect(feed.items[0]!.content).toContain(']]&gt; here');
    await app.close();
  });

  it('serves Atom 1.0 that parses back', async () => {
    const p = prefix();
    const [a, b] = await publishTwo(p);
    const app = await appFor(p, () => new Date('2026-12-02T00:00:00Z'));
    const res = await app.inject({ method: 'GET', url: '/press.atom' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/atom+xml; charset=utf-8');
    expect(res.body).toContain('<link rel="self" type="application/atom+xml" href="https://pcc.example.org/press.atom"/>');
    expect(res.body).toContain(`<updated>${T2.toISOString()}</updated>`);
    const feed = await parser.parseString(res.body);
    expect(feed.title).toBe('Office of the PCC');
    expect(feed.items.map((i) => i.title)).toEqual([HEADLINE_2, HEADLINE_1]);
    expect(feed.items.map((i) => i.link)).toEqual([`${PUBLIC}/press/${b.slug}`, `${PUBLIC}/press/${a.slug}`]);
    expect(feed.items.map((i) => (i as { id?: string }).id)).toEqual([`${PUBLIC}/press/${b.slug}`, `${PUBLIC}/press/${a.slug}`]);
    expect(feed.items.map((i) => i.isoDate)).toEqual([T2.toISOString(), T1.toISOString()]);
    expect(feed.items[1]!.content).toBe('<p>The team starts on <strong>Monday</strong>.</p>');
    await app.close();
  });

  it('serves an escaped release page and a 404 page for unknown slugs', async () => {
    const p = prefix();
    const [, b] = await publishTwo(p);
    const app = await appFor(p, () => new Date('2026-12-02T00:00:00Z'));
    const res = await app.inject({ method: 'GET', url: `/press/${b.slug}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('<html lang="en-GB">');
    expect(res.body).toContain('<h1>Commissioner&#39;s &lt;b&gt;&quot;Safer Streets&quot;&lt;/b&gt; fund &amp; grants — Café Ōwn ünïcode 🚓</h1>');
    expect(res.body).toContain('<time datetime="2026-12-01T00:01:00.000Z">1 December 2026, 00:01</time>');
    expect(res.body).not.toContain('<b>"Safer');
    const missing = await app.inject({ method: 'GET', url: '/press/2026-01-01-nothing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(missing.body).toContain('Press release not found');
    const odd = await app.inject({ method: 'GET', url: '/press/%3Cscript%3E' });
    expect(odd.statusCode).toBe(404);
    expect(odd.body).not.toContain('<script>');
    await app.close();
  });

  it('a release dated in the future stays hidden until that second', async () => {
    const p = prefix();
    const [a, b] = await publishTwo(p);
    let clock = new Date(T2.getTime() - 1000);
    const app = await appFor(p, () => clock);
    const rss = await parser.parseString((await app.inject({ method: 'GET', url: '/press.rss' })).body);
    expect(rss.items.map((i) => i.title)).toEqual([HEADLINE_1]);
    const atom = await parser.parseString((await app.inject({ method: 'GET', url: '/press.atom' })).body);
    expect(atom.items.map((i) => i.title)).toEqual([HEADLINE_1]);
    const early = await app.inject({ method: 'GET', url: `/press/${b.slug}` });
    expect(early.statusCode).toBe(404);
    expect(early.headers['cache-control']).toBe('no-store');
    expect(early.body).not.toContain('Safer Streets');
    expect((await app.inject({ method: 'GET', url: `/press/${a.slug}` })).statusCode).toBe(200);

    clock = T2;
    expect((await app.inject({ method: 'GET', url: `/press/${b.slug}` })).statusCode).toBe(200);
    const after = await parser.parseString((await app.inject({ method: 'GET', url: '/press.rss' })).body);
    expect(after.items.map((i) => i.title)).toEqual([HEADLINE_2, HEADLINE_1]);
    await app.close();
  });

  it('empty feeds are still valid', async () => {
    const site = { title: 'T & Co', publicUrl: PUBLIC, now: T1 };
    expect((await parser.parseString(renderRss([], site))).items).toEqual([]);
    const atom = renderAtom([], site);
    expect(atom).toContain(`<updated>${T1.toISOString()}</updated>`);
    expect((await parser.parseString(atom)).title).toBe('T & Co');
  });

  it('control characters in a headline do not break the XML', async () => {
    const r = { campaignId: 'c', slug: 'x', headline: 'Bell\u0007 and\u0000 nul', bodyHtml: '<p>a\u000bb</p>', bodyText: '', publishedAt: T1 };
    const feed = await parser.parseString(renderRss([r], { title: 't', publicUrl: PUBLIC }));
    expect(feed.items[0]!.title).toBe('Bell and nul');
  });
});

describe('safeHtml', () => {
  it('keeps formatting and safe links, drops scripts, handlers and unsafe schemes', () => {
    expect(safeHtml('<p onclick="x()">Hi <em>there</em></p>')).toBe('<p>Hi <em>there</em></p>');
    expect(safeHtml('<script>alert(1)</script><p>ok</p><style>p{}</style>')).toBe('<p>ok</p>');
    expect(safeHtml('<a href="javascript:alert(1)">x</a>')).toBe('<a>x</a>');
    expect(safeHtml('<a href="jav&#x61;script:alert(1)">x</a>')).toBe('<a>x</a>');
    expect(safeHtml('<a href=" data:text/html,hi">x</a>')).toBe('<a>x</a>');
    expect(safeHtml('<a href="/press/x?a=1&amp;b=2" target="_blank">x</a>')).toBe('<a href="/press/x?a=1&amp;b=2">x</a>');
    expect(safeHtml('<img src=x onerror=alert(1)>text')).toBe('text');
    expect(safeHtml('<h1>Big</h1><ul><li>one<li>two</ul></div><pre>open')).toBe('<h2>Big</h2><ul><li>one<li>two</li></li></ul><pre>open</pre>');
    expect(safeHtml('1 < 2 and <img src=x onerror=alert(1)')).toBe('1 &lt; 2 and &lt;img src=x onerror=alert(1)');
  });
});
