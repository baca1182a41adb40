import type { Redis } from 'ioredis';
import type { DeliveryProgress } from '../../channels/adapter.js';

/** How long a delivery's progress notes outlive its last change. */
const PROGRESS_TTL_SECONDS = 7 * 24 * 3600;

/**
 * A delivery's durable progress notes in Redis, keyed by the delivery key: the
 * worker process that retries the delivery (after a crash, a restart or a
 * rate-limit pause), whichever it is, reads what an earlier attempt recorded.
 */
export function redisProgress(redis: Redis, prefix: string, deliveryKey: string): DeliveryProgress {
  const key = `${prefix}:progress:${deliveryKey}`;
  return {
    async get() {
      return (await redis.get(key)) ?? undefined;
    },
    async set(value) {
      await redis.set(key, value, 'EX', PROGRESS_TTL_SECONDS);
    },
    async clear() {
      await redis.del(key);
    },
  };
}
