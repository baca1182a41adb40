import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audienceKeys } from '../src/domain/audience.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { audienceBatches } from '../workers/plan.js';
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
