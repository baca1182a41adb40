import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getSubscriber, importSubscribers, isSuppressed, listOptOutField, subscriberId } from '../src/domain/audience.js';
import { readAudit } from '../src/domain/audit.js';
import { signUnsubscribeToken } from '../src/domain/unsubscribe-token.js';
import { deriveKey } from '../src/keys.js';
import { audienceBatches } from '../workers/plan.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { startWorkers } from '../workers/index.js';

/**
 * One-click unsubscribe over HTTP (RFC 8058): urlencoded, multipart/form-data
 * and body-less POSTs all work; the link takes the person off the list the
 * message came from, and "from everything" (scope=all) off every list for good.
 */

let crier: TestCrier | undefined;
afterEach(async () => {
  await crier?.close();
  crier = undefined;
});

const PEOPLE = ['ann@example.org', 'bob@example.org', 'cat@example.org', 'dan@example.org', 'eve@example.org'];

async function start(): Promise<TestCrier> {
  crier = await startCrier(testConfig(), { workers: false, server: true });
  for (const list of ['news', 'community']) {
    const csv = path.join(crier.config.dataDir, `${list}.csv`);
    writeFileSync(csv, `email,name,area,topics\n${PEOPLE.map((e) => `${e},${e.split('@')[0]},Rugby,`).join('\n')}\n`);
    await importSubscribers(crier.handle.redis, crier.config.redis_prefix, csv, list, { rejectsDir: crier.config.dataDir });
  }
  return crier;
}

describe('one-click unsubscribe', () => {
  it('accepts urlencoded, multipart/form-data and body-less POSTs, each taking the person off that list only', async () => {
    const c = await start();
    const { redis } = c.handle;
    const prefix = c.config.redis_prefix;
    const url = (email: string) => `${c.baseUrl}/u/${signUnsubscribeToken(c.config.secret, subscriberId(email), 'news')}`;
    const multipart = new FormData();
    multipart.append('List-Unsubscribe', 'One-Click');
    const posts: Array<[string, RequestInit]> = [
      ['ann@example.org', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' }],
      ['bob@example.org', { method: 'POST', body: multipart }],
      ['cat@example.org', { method: 'POST' }],
      ['dan@example.org', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
    ];
    const since = new Date(Date.now() - 1000);
    for (const [email, init] of posts) {
      const res = await fetch(url(email), init);
      expect(res.status, email).toBe(200);
      expect(await res.text(), email).toMatch(/unsubscribed from the <strong>news<\/strong> list/);
      const sub = await getSubscriber(redis, prefix, subscriberId(email));
      expect(sub?.status, email).toBe('subscribed');
      expect(await redis.hexists(`${prefix}:sub:${subscriberId(email)}`, listOptOutField('news')), email).toBe(1);
      expect(await redis.hexists(`${prefix}:sub:${subscriberId(email)}`, listOptOutField('community')), email).toBe(0);
      expect(await isSuppressed(redis, prefix, email)).toBe(false);
    }
    // Planning: the news list now reaches only eve; the community list still reaches everyone.
    const planned = async (list: string) => {
      const ids: string[] = [];
      for await (const b of audienceBatches(redis, prefix, { list }, 100)) ids.push(...b.ids);
      return ids;
    };
    expect(await planned('news')).toEqual([subscriberId('eve@example.org')]);
    expect(await planned('community')).toHaveLength(PEOPLE.length);
    const audit = (await readAudit(redis, prefix, { since })).filter((e) => e.action === 'subscriber.unsubscribe');
    expect(audit.map((e) => [e.detail.via, e.detail.list])).toEqual([
      ['one-click', 'news'],
      ['one-click', 'news'],
      ['link', 'news'],
      ['link', 'news'],
    ]);
  });

  it('"from everything" (scope=all, urlencoded or multipart) unsubscribes from every list and suppresses the address', async () => {
    const c = await start();
    const { redis } = c.handle;
    const prefix = c.config.redis_prefix;
    const token = (email: string) => signUnsubscribeToken(c.config.secret, subscriberId(email), 'news');
    const form = new FormData();
    form.append('scope', 'all');
    for (const [email, init] of [
      ['ann@example.org', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'scope=all' }],
      ['bob@example.org', { method: 'POST', body: form }],
    ] as Array<[string, RequestInit]>) {
      const res = await fetch(`${c.baseUrl}/u/${token(email)}`, init);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/unsubscribed from every list/);
      expect((await getSubscriber(redis, prefix, subscriberId(email)))?.status).toBe('unsubscribed');
      expect(await isSuppressed(redis, prefix, email, deriveKey(c.config.secret, 'suppression'))).toBe(true);
    }
  });
});

describe('unsubscribing from a list while a campaign to it is planned', () => {
  it('the planned delivery is skipped at send time; the same person still gets another list\'s campaign', async () => {
    // Plan only (no delivery workers yet), so the campaigns are fanned out before the unsubscribe.
    crier = await startCrier(testConfig(), { server: true, queues: ['campaigns'] });
    const c = crier;
    for (const list of ['news', 'community']) {
      const csv = path.join(c.config.dataDir, `${list}.csv`);
      writeFileSync(csv, `email,name,area,topics\nann@example.org,Ann,Rugby,\nbob@example.org,Bob,Rugby,\n`);
      await importSubscribers(c.handle.redis, c.config.redis_prefix, csv, list, { rejectsDir: c.config.dataDir });
    }
    const yaml = (list: string) => `title: To ${list}\nkind: newsletter\nsend_at: ${londonIn(500)}\nchannels:\n  email: { list: ${list}, subject: "Hi", body: "Hello." }\n`;
    const news = await c.create(yaml('news'));
    const community = await c.create(yaml('community'));
    for (const id of [news.id, community.id]) {
      const deadline = Date.now() + 15_000;
      while ((await c.show(id)).counts.email!.pending !== 2) {
        if (Date.now() > deadline) throw new Error('not planned');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const link = `${c.baseUrl}/u/${signUnsubscribeToken(c.config.secret, subscriberId('ann@example.org'), 'news')}`;
    expect((await fetch(link, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(200);

    const pool = startWorkers({ config: c.config, handle: c.handle, log: silentLogger(), queues: ['deliver-email'] });
    try {
      const doneNews = await c.waitForStatus(news.id, ['sent', 'failed', 'partially_failed']);
      const doneCommunity = await c.waitForStatus(community.id, ['sent', 'failed', 'partially_failed']);
      expect(doneNews.counts.email).toMatchObject({ sent: 1, skipped: 1, failed: 0 });
      expect(doneCommunity.counts.email).toMatchObject({ sent: 2, skipped: 0, failed: 0 });
    } finally {
      await pool.close();
    }
  });
});
