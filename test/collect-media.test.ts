import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishRelease } from '../channels/press/store.js';
import type { Config } from '../src/config.js';
import { buildCatalogue } from '../src/domain/measures.js';
import { ObservationStore } from '../src/domain/observations.js';
import { parsePeriod } from '../src/domain/periods.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { readStatus } from '../workers/collect/status.js';
import { TONE_MODEL, toneScorer } from '../workers/collect/tone.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { ROOT } from './helpers/dist.js';
import { collectOnce } from './helpers/metrics.js';
import { FEED_FIXTURES } from './helpers/feed-server.js';

/**
 * Media coverage from the real-world fixture feeds (RSS with content:encoded,
 * Atom, ISO-8859-1, missing fields), served by a local HTTP server; tone by
 * winkNLP, checked against hand-labelled headlines.
 */

const FEEDS = FEED_FIXTURES;
const now = new Date('2018-02-01T12:00:00Z');

let server: http.Server;
let base = '';
let config: Config;
let handle: RedisHandle;
let store: ObservationStore;
let broken = false;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const name = path.basename(req.url ?? '');
    if (broken || name === 'gone.rss') return void res.writeHead(404).end('not found');
    const type = name.endsWith('.atom') ? 'application/atom+xml' : 'application/rss+xml';
    try {
      const body = readFileSync(path.join(FEEDS, name));
      // encoding.rss says ISO-8859-1 only in its XML declaration; the server names no charset.
      res.writeHead(200, { 'content-type': type }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const feeds = ['guardian.rss', 'encoding.rss', 'heise.atom', 'content-encoded.rss', 'missing-fields.atom', 'incomplete-fields.atom', 'gone.rss'].map((f) => `      - ${base}/${f}`).join('\n');
  config = testConfig({ yaml: `metrics:\n  media:\n    feeds:\n${feeds}\n    terms: [police, Raríssimas, WildFly]\n    weeks: 5\n    link_days: 7\n` });
  handle = await connectRedis(config, silentLogger());
  store = new ObservationStore(handle.redis, config.redis_prefix, buildCatalogue());
  await publishRelease(handle.redis, config.redis_prefix, {
    campaignId: 'cpress1',
    slug: '2018-01-30-nassar-review',
    headline: 'Commissioner asks for review of the Nassar investigation',
    bodyHtml: '<p>…</p>',
    bodyText: 'The Commissioner has asked for an independent review of how allegations against the gymnastics doctor were investigated in 2004.',
    publishedAt: new Date('2018-01-30T10:00:00Z'),
  });
});

afterAll(async () => {
  await handle?.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const week = (k: string) => parsePeriod(k);

describe('media collector', () => {
  it('finds mentions in feeds of any encoding and shape, counts them by tone per week, links a release', async () => {
    const r = await collectOnce(config, handle, 'media', { now: () => now });
    // The one unreachable feed is a warning; the feeds with missing fields are read without complaint.
    expect(r.warnings).toEqual([expect.stringMatching(/gone\.rss.*404/)]);
    const ids = await handle.redis.zrange(`${config.redis_prefix}:media:mentions`, 0, -1);
    const mentions = await Promise.all(ids.map((id) => handle.redis.hgetall(`${config.redis_prefix}:media:mention:${id}`)));
    const titles = mentions.map((m) => m.title);
    // ISO-8859-1 decoded: "Mãe de utente é a nova presidente da Raríssimas".
    expect(titles).toContain('Mãe de utente é a nova presidente da Raríssimas');
    expect(titles.some((t) => /WildFly/.test(t ?? ''))).toBe(true);
    expect(titles.filter((t) => /Nassar|Las Vegas|Eagles/.test(t ?? '')).length).toBeGreaterThanOrEqual(2);
    for (const m of mentions) {
      expect(m.model).toBe(TONE_MODEL);
      expect(['positive', 'neutral', 'negative', 'no_signal']).toContain(m.tone);
    }
    const nassar = mentions.find((m) => /Nassar/.test(m.title ?? ''));
    expect(nassar?.release).toBe('2018-01-30-nassar-review');

    const w05 = await store.range('media.mentions', { from: week('2018-W05').start, to: week('2018-W05').end });
    expect(w05.map((o) => o.dimensions.tone).sort()).toEqual(['negative', 'neutral', 'no_signal', 'positive']);
    const total = (obs: typeof w05) => obs.reduce((a, o) => a + o.value, 0);
    const guardianCount = mentions.filter((m) => m.feed?.endsWith('guardian.rss')).length;
    expect(total(w05)).toBe(guardianCount);
    expect(w05[0]?.meta?.model).toBe(TONE_MODEL);
    const w01 = await store.range('media.mentions', { from: week('2018-W01').start, to: week('2018-W01').end });
    expect(total(w01)).toBe(2);
    expect((await store.get({ measure: 'media.releases_with_coverage', period: '2018-W05' }))?.value).toBe(1);
    expect((await store.get({ measure: 'media.releases_with_coverage', period: '2018-W04' }))?.value).toBe(0);
    // The 2016 item is kept as a mention but its week is outside the five counted.
    expect(await store.get({ measure: 'media.mentions', dimensions: { tone: 'positive' }, period: '2016-W05' })).toBeUndefined();

    const before = await store.count('media.mentions');
    await collectOnce(config, handle, 'media', { now: () => now });
    expect(await store.count('media.mentions')).toBe(before);
    expect(await handle.redis.zcard(`${config.redis_prefix}:media:mentions`)).toBe(ids.length);
  });

  it('when no feed can be read the run fails, says why, and keeps the counts', async () => {
    broken = true;
    try {
      await expect(collectOnce(config, handle, 'media', { now: () => now })).rejects.toThrow(/no feed could be read/);
    } finally {
      broken = false;
    }
    expect((await readStatus(handle.redis, config.redis_prefix, 'media')).last_failure_reason).toMatch(/404/);
    expect((await store.get({ measure: 'media.releases_with_coverage', period: '2018-W05' }))?.value).toBe(1);
  });
});

describe('tone against hand-labelled headlines', () => {
  it('agrees with 28 of the 40 labels (no signal counted as neutral), as the README says', async () => {
    const toneOf = await toneScorer();
    const rows = readFileSync(path.join(ROOT, 'test/fixtures/tone/headlines.csv'), 'utf8').trim().split('\n').slice(1);
    const terms = ['Police and Crime Commissioner', 'Police and Crime Plan'];
    let agree = 0;
    for (const row of rows) {
      const at = row.lastIndexOf(',');
      const { tone } = toneOf(row.slice(0, at), terms);
      if ((tone === 'no_signal' ? 'neutral' : tone) === row.slice(at + 1)) agree++;
    }
    expect(rows).toHaveLength(40);
    expect(agree).toBe(28);
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('28 of 40');
  });
});
