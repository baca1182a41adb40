import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { wakeOnDueTimes } from './waker.js';

/**
 * An idle worker waiting for a delayed job wakes on Redis's serverCron tick
 * (hz 10 by default: 0–100 ms after the due time); with the waker it runs the
 * job at its due time. Real redis-server (the run's private one, default hz),
 * real BullMQ worker.
 */

const url = inject('redisUrl');
const prefix = `t${randomBytes(5).toString('hex')}`;
const connections: Redis[] = [];
const conn = () => {
  const r = new Redis(url, { maxRetriesPerRequest: null });
  connections.push(r);
  return r;
};

afterAll(async () => {
  await Promise.all(connections.map((r) => r.quit().catch(() => undefined)));
});

describe('wakeOnDueTimes', () => {
  it('starts delayed jobs at their due time, never before it', async () => {
    const queue = new Queue('wake', { connection: conn(), prefix });
    const started = new Map<string, number>();
    const worker = new Worker(
      'wake',
      async (job) => {
        started.set(job.id!, Date.now());
      },
      { connection: conn(), prefix, concurrency: 5 },
    );
    const waker = wakeOnDueTimes(conn(), prefix, 'wake', createLogger('silent'));
    try {
      await worker.waitUntilReady();
      const base = Date.now() + 1500;
      const due = new Map<string, number>();
      for (let i = 0; i < 6; i++) {
        const at = base + i * 370;
        const timestamp = Date.now();
        due.set(`j${i}`, at);
        await queue.add('j', {}, { jobId: `j${i}`, delay: at - timestamp, timestamp });
      }
      const deadline = Date.now() + 10_000;
      while (started.size < due.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const lags = [...due].map(([id, at]) => (started.get(id) ?? Number.NaN) - at);
      // Without the waker these lags spread over 0–100 ms (Redis's 100 ms tick): all six under 60 ms by chance is ~5 %.
      for (const lag of lags) {
        expect(lag).toBeGreaterThanOrEqual(0);
        expect(lag).toBeLessThan(60);
      }
    } finally {
      waker.stop();
      await worker.close();
      await queue.close();
    }
  });
});
