import type { Redis } from 'ioredis';
import type { Logger } from '../src/log.js';

/**
 * Wakes a queue's idle workers when a delayed job falls due, on time.
 *
 * An idle BullMQ worker waits for the next delayed job in a BZPOPMIN on the
 * queue's marker key, with that job's due time as the timeout. Redis ends a
 * blocked command's timeout only on its serverCron tick (`hz`, 10 a second by
 * default), so the worker wakes, promotes the job and runs it 0–100 ms after it
 * was due (measured: 2–97 ms late against BZPOPMIN timeouts on Redis 7.0, hz 10).
 * A campaign due at 09:00:00 was most of the lag of bench/precision.ts.
 *
 * This looks ahead at the queue's delayed set once a second and, at each due
 * time it finds, adds the marker BullMQ itself adds when a job is waiting
 * (member "0", score 0): a blocked BZPOPMIN returns at once, and the worker
 * runs BullMQ's own moveToActive, which promotes what is due by its clock and
 * adds the marker again for any other blocked worker. Nothing moves a job but
 * BullMQ: a wake-up with nothing due costs one script call, and a missed one
 * leaves BullMQ's own timeout as before.
 */

/** How often the delayed set is read; due times up to two periods ahead get a timer. */
const PERIOD_MS = 1000;
/** Distinct due times armed per read (a retry storm of many jobs needs no more than the first). */
const MAX_TIMERS = 100;

export interface Waker {
  stop(): void;
}

export function wakeOnDueTimes(redis: Redis, prefix: string, queue: string, log: Logger): Waker {
  const delayedKey = `${prefix}:${queue}:delayed`;
  const markerKey = `${prefix}:${queue}:marker`;
  const armed = new Map<number, NodeJS.Timeout>();
  let stopped = false;

  const wake = (due: number) => {
    // setTimeout runs on the monotonic clock, BullMQ compares wall-clock ms: never wake before the due ms.
    const early = due - Date.now();
    if (early > 0) {
      armed.set(due, setTimeout(() => wake(due), early).unref());
      return;
    }
    armed.delete(due);
    if (stopped) return;
    redis.zadd(markerKey, 0, '0').catch((err: Error) => log.debug({ queue, err: err.message }, 'cannot wake the workers'));
  };

  const look = async () => {
    const horizon = Date.now() + 2 * PERIOD_MS;
    // BullMQ scores a delayed job (due ms) · 0x1000 + a counter.
    const flat = await redis.zrangebyscore(delayedKey, 0, (horizon + 1) * 0x1000 - 1, 'WITHSCORES', 'LIMIT', 0, MAX_TIMERS);
    for (let i = 1; i < flat.length; i += 2) {
      const due = Math.floor(Number(flat[i]) / 0x1000);
      if (armed.has(due)) continue;
      armed.set(due, setTimeout(() => wake(due), Math.max(0, due - Date.now())).unref());
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const loop = () => {
    if (stopped) return;
    look()
      .catch((err: Error) => log.debug({ queue, err: err.message }, 'cannot read the delayed jobs'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, PERIOD_MS).unref();
      });
  };
  loop();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const t of armed.values()) clearTimeout(t);
      armed.clear();
    },
  };
}
