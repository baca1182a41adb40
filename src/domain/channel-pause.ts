import type { Redis } from 'ioredis';

/**
 * Channels paused by a fault only a person can fix (an SMTP login refused):
 * channel → reason, shared by every process through Redis, shown by
 * `campaign show` and /healthz. Deliveries wait (their queue is paused); none fails.
 */
export const pausedKey = (prefix: string): string => `${prefix}:channel-paused`;

export async function pausedChannels(redis: Redis, prefix: string): Promise<Record<string, string>> {
  return redis.hgetall(pausedKey(prefix));
}

export async function markChannelPaused(redis: Redis, prefix: string, channel: string, reason: string): Promise<void> {
  await redis.hset(pausedKey(prefix), channel, reason);
}

/** True when the channel was marked paused (and is no longer). */
export async function clearChannelPaused(redis: Redis, prefix: string, channel: string): Promise<boolean> {
  return (await redis.hdel(pausedKey(prefix), channel)) === 1;
}
