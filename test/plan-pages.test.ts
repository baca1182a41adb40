import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudienceSelector } from '../channels/adapter.js';
import { audienceFilter, audienceKeys, forgetSubscriber, indexExclusions, listOptOutField, unsubscribe, unsubscribeFromList } from '../src/domain/audience.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { audienceBatches, planAudience } from '../workers/plan.js';
import { silentLogger, testConfig } from './helpers/context.js';

/**
 * Planning reads the list a page of batches at a time; batch n must still be
 * exactly the members with sequence numbers in (n·size, (n+1)·size], across
 * pages and across gaps left by removed members, so re-planning never doubles.
 */

let handle: RedisHandle;
beforeAll(async () => {
  handle = await connectRedis(testConfig(), silentLogger());
});
afterAll(async () => {
  await handle.close();
});

async function seed(list: string, seqs: number[], unsubscribed: Set<number> = new Set()): Promise<void> {
  const k = audienceKeys(handle.prefix);
  const pipe = handle.redis.pipeline();
  for (const n of seqs) {
    pipe.hset(k.sub(`s${n}`), { email: `r${n}@example.org`, name: `R ${n}`, area: 'Rugby', topics: 'roads', status: unsubscribed.has(n) ? 'unsubscribed' : 'subscribed' });
    pipe.zadd(k.list(list), n, `s${n}`);
  }
  await pipe.exec();
}

async function batches(list: string, size: number): Promise<Array<{ batch: number; ids: string[] }>> {
  const out: Array<{ batch: number; ids: string[] }> = [];
  for await (const b of audienceBatches(handle.redis, handle.prefix, { list }, size)) out.push({ batch: b.batch, ids: [...b.ids] });
  return out;
}

describe('audienceBatches', () => {
  it('keeps batch boundaries across pages and gaps, and leaves out the unsubscribed', async () => {
    const seqs = [...Array.from({ length: 2500 }, (_, i) => i + 1), 10_001, 10_002, 250_000];
    await seed('paged', seqs, new Set([150, 2500]));
    const got = await batches('paged', 100);
    const expected = new Map<number, string[]>();
    for (const n of seqs) {
      if (n === 150 || n === 2500) continue;
      const b = Math.floor((n - 1) / 100);
      expected.set(b, [...(expected.get(b) ?? []), `s${n}`]);
    }
    expect(got.map((b) => b.batch)).toEqual([...expected.keys()]);
    for (const b of got) expect(b.ids).toEqual(expected.get(b.batch));
  });

  it('an empty list plans nothing', async () => {
    expect(await batches('nobody', 100)).toEqual([]);
  });
});


/**
 * The planning script (PLAN_PAGE) filters in Redis: status, list opt-out, phone, and areas and topics
 * (ASCII there, anything else decided by audienceFilter in JavaScript). Whatever it decides must be
 * exactly what audienceFilter decides over every member's hash, and registering must count each
 * recipient once, however often it runs.
 */
describe('planAudience', () => {
  const areas = ['Rugby', ' rugby ', 'RUGBY', 'Nuneaton', '', '  ', 'Ängelholm', 'ÄNGELHOLM', 'ängelholm ', 'Kelvin', '\u212Aelvin', 'İstanbul', 'istanbul', 'Rugby\u00a0', '\tRugby\n'];
  const topics = ['roads', 'Roads; burglary', ' ROADS ;', ';;', '', 'burglary;Road Safety', 'ROAD SAFETY', 'road  safety', 'Écoles;roads', 'écoles', 'ÉCOLES ', 'flood\u00a0', 'floods;;Flood', 'roads\u00a0'];

  async function seedMixed(list: string, n: number): Promise<void> {
    const k = audienceKeys(handle.prefix);
    const pipe = handle.redis.pipeline();
    for (let i = 1; i <= n; i++) {
      const h: Record<string, string> = {
        email: `m${i}@example.org`,
        name: `M ${i}`,
        area: areas[i % areas.length]!,
        topics: topics[(i * 7) % topics.length]!,
        status: i % 11 === 0 ? 'unsubscribed' : 'subscribed',
      };
      if (i % 3 !== 0) h.phone = i % 5 === 0 ? '' : `+4477009${String(i).padStart(5, '0')}`;
      if (i % 13 === 0) h[listOptOutField(list)] = '2026-01-01T00:00:00Z';
      if (i % 17 === 0) h[listOptOutField('other')] = '2026-01-01T00:00:00Z';
      if (i % 19 === 0) delete h.area;
      if (i % 23 === 0) delete h.topics;
      if (i % 29 === 0) continue; // on the list, but the hash is gone
      pipe.hset(k.sub(`${list}-${i}`), h);
    }
    for (let i = 1; i <= n; i++) if (i % 31 !== 0) pipe.zadd(k.list(list), i, `${list}-${i}`); // gaps
    pipe.zadd(k.list(list), 100_000, `${list}-far`).hset(k.sub(`${list}-far`), { email: 'far@example.org', status: 'subscribed', area: 'rugby', topics: 'roads', phone: '+447700900001' });
    await pipe.exec();
  }

  /** What the planner kept before the script: every member's hash, tested in JavaScript. */
  async function reference(selector: AudienceSelector, size: number): Promise<Map<number, string[]>> {
    const k = audienceKeys(handle.prefix);
    const matches = audienceFilter(selector);
    const members = await handle.redis.zrange(k.list(selector.list!), 0, -1, 'WITHSCORES');
    const out = new Map<number, string[]>();
    for (let i = 0; i < members.length; i += 2) {
      const id = members[i]!;
      const h = await handle.redis.hgetall(k.sub(id));
      const keep = h.status === 'subscribed' && !h[listOptOutField(selector.list!)] && (!selector.withPhone || !!h.phone) && (!matches || matches(h.area ?? '', h.topics ?? ''));
      if (!keep) continue;
      const b = Math.floor((Number(members[i + 1]) - 1) / size);
      out.set(b, [...(out.get(b) ?? []), id]);
    }
    return out;
  }

  const selectors: Array<Omit<AudienceSelector, 'list'>> = [
    {},
    { withPhone: true },
    { areas: ['rugby'] },
    { areas: [' RUGBY ', 'ängelholm'] },
    { areas: ['kelvin'] },
    { areas: ['i̇stanbul'] },
    { areas: ['  '] },
    { topics: ['Roads'] },
    { topics: ['road safety', 'ÉCOLES'] },
    { topics: ['flood'] },
    { areas: ['Rugby', 'Nuneaton'], topics: ['burglary', 'roads'], withPhone: true },
    { areas: [], topics: [] },
  ];

  it('keeps exactly whom audienceFilter keeps, with or without areas, topics and phones', async () => {
    await seedMixed('mixed', 700);
    for (const sel of selectors) {
      for (const size of [7, 100]) {
        const selector = { list: 'mixed', ...sel };
        const expected = await reference(selector, size);
        const got = new Map<number, string[]>();
        for await (const b of audienceBatches(handle.redis, handle.prefix, selector, size)) got.set(b.batch, b.ids);
        expect({ selector, size, batches: [...got] }).toEqual({ selector, size, batches: [...expected] });

        // Registered: the same batches, each once, and the channel's total is their size.
        const plan = { channel: `c${size}-${selectors.indexOf(sel)}`, batches: `${handle.prefix}:test:batches`, counts: `${handle.prefix}:test:counts` };
        const jobs: number[] = [];
        let recipients = 0;
        for await (const page of planAudience(handle.redis, handle.prefix, selector, size, plan)) {
          jobs.push(...page.batches);
          recipients += page.recipients;
        }
        const total = [...expected.values()].reduce((n, ids) => n + ids.length, 0);
        expect(jobs).toEqual([...expected.keys()]);
        expect(recipients).toBe(total);
        expect(Number((await handle.redis.hget(plan.counts, `${plan.channel}:total`)) ?? 0)).toBe(total);
        for (const [b, ids] of expected) expect(await handle.redis.hget(plan.batches, `${plan.channel}:${b}`)).toBe(ids.join(','));
      }
    }
  });

  it('reads the unsubscribed and opt-out sets once they are complete, and keeps whom the hashes keep', async () => {
    await seedMixed('indexed', 700);
    const k = audienceKeys(handle.prefix);
    // Production never has a list member without a hash (forget removes both at once): the sets only know hashes.
    for (let i = 29; i <= 700; i += 29) await handle.redis.zrem(k.list('indexed'), `indexed-${i}`);
    // As the importer keeps them: every subscriber in subs, every list named in lists.
    const members = await handle.redis.zrange(k.list('indexed'), 0, -1, 'WITHSCORES');
    await handle.redis.zadd(k.subs, ...members.map((_, i) => (i % 2 === 0 ? members[i + 1]! : members[i - 1]!)));
    await handle.redis.sadd(k.lists, 'indexed', 'other');
    const plain = { list: 'indexed' };
    const planned = async (selector: AudienceSelector, size: number) => {
      const got = new Map<number, string[]>();
      for await (const b of audienceBatches(handle.redis, handle.prefix, selector, size)) got.set(b.batch, b.ids);
      return [...got];
    };
    const before = await planned(plain, 100);
    expect(await handle.redis.exists(k.exclusionsIndexed)).toBe(0);
    // An audience from before the sets: indexed once, then marked.
    expect(await indexExclusions(handle.redis, handle.prefix)).toBe(members.length / 2);
    expect(await handle.redis.exists(k.exclusionsIndexed)).toBe(1);
    expect(await indexExclusions(handle.redis, handle.prefix)).toBe(0);
    expect(await handle.redis.sismember(k.unsubscribed, 'indexed-11')).toBe(1);
    expect(await handle.redis.sismember(k.optOuts('indexed'), 'indexed-13')).toBe(1);
    expect(await handle.redis.sismember(k.optOuts('other'), 'indexed-17')).toBe(1);
    try {
      for (const sel of selectors) {
        for (const size of [7, 100]) {
          const selector = { list: 'indexed', ...sel };
          expect({ selector, size, batches: await planned(selector, size) }).toEqual({ selector, size, batches: [...(await reference(selector, size))] });
        }
      }
      expect(await planned(plain, 100)).toEqual(before);
      // From now on the unsubscribe scripts keep the sets: each is left out of the next plan at once.
      await unsubscribe(handle.redis, handle.prefix, 'indexed-1', 'test');
      await unsubscribeFromList(handle.redis, handle.prefix, 'indexed-2', 'indexed', 'test');
      await unsubscribeFromList(handle.redis, handle.prefix, 'indexed-4', 'other', 'test');
      await forgetSubscriber(handle.redis, handle.prefix, 'm5@example.org');
      expect(await handle.redis.sismember(k.unsubscribed, 'indexed-1')).toBe(1);
      expect(await handle.redis.sismember(k.optOuts('indexed'), 'indexed-2')).toBe(1);
      const ids = (await planned(plain, 100)).flatMap(([, b]) => b);
      expect(ids).not.toContain('indexed-1');
      expect(ids).not.toContain('indexed-2');
      expect(ids).toContain('indexed-4'); // opted out of another list only
      expect(ids).toContain('indexed-3');
      expect((await planned(plain, 100))).toEqual([...(await reference(plain, 100))]);
    } finally {
      // The other tests here write hashes directly, which only the hash-reading path sees.
      await handle.redis.del(k.exclusionsIndexed);
    }
  });

  it('re-planning never doubles: the first registration stays, and a batch registered earlier still gets its job', async () => {
    await seed('again', Array.from({ length: 450 }, (_, i) => i + 1));
    const plan = { channel: 'email', batches: `${handle.prefix}:again:batches`, counts: `${handle.prefix}:again:counts` };
    const run = async () => {
      const jobs: number[] = [];
      for await (const page of planAudience(handle.redis, handle.prefix, { list: 'again' }, 100, plan)) jobs.push(...page.batches);
      return jobs;
    };
    expect(await run()).toEqual([0, 1, 2, 3, 4]);
    const first = await handle.redis.hgetall(plan.batches);
    // Between the two runs batch 2's members all unsubscribe and batch 4's leave the list.
    const k = audienceKeys(handle.prefix);
    for (let n = 201; n <= 300; n++) await handle.redis.hset(k.sub(`s${n}`), 'status', 'unsubscribed');
    for (let n = 401; n <= 450; n++) await handle.redis.zrem(k.list('again'), `s${n}`);
    // Both still get their job (registered earlier: the job may be what an interrupted plan never added).
    expect(await run()).toEqual([0, 1, 2, 3, 4]);
    expect(await handle.redis.hgetall(plan.batches)).toEqual(first);
    expect(await handle.redis.hget(plan.counts, 'email:total')).toBe('450');
  });
});
