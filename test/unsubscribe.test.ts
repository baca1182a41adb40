import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getSubscriber, importSubscribers, isSuppressed, listOptOutField, subscriberId } from '../src/domain/audience.js';
import { readAudit } from '../src/domain/audit.js';
import { signUnsubscribeToken } from '../src/domain/unsubscribe-token.js';
import { audienceBatches } from '../workers/plan.js';
import { testConfig } from './helpers/context.js';
import { startCrier, type TestCrier } from './helpers/crier.js';

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
      expect(await isSuppressed(redis, prefix, email)).toBe(true);
    }
  });
});
