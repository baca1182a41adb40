import type { Redis } from 'ioredis';

/**
 * What `crier metrics status` shows for each collector: its last success
 * (when, how many observations), its last failure (when, why) and, from the
 * job scheduler, its next run. Kept in one hash per source.
 */
export interface CollectorStatus {
  source: string;
  last_run_at?: string;
  last_success_at?: string;
  last_success_observations?: number;
  last_success_warnings?: string[];
  last_failure_at?: string;
  last_failure_reason?: string;
  /** transient | rate_limited | needs_reauth | permanent */
  last_failure_kind?: string;
  /** Set while a 429 holds the source back. */
  rate_limited_until?: string;
}

const key = (prefix: string, source: string) => `${prefix}:collect:status:${source}`;

export async function recordRunStart(redis: Redis, prefix: string, source: string, at: Date): Promise<void> {
  await redis.hset(key(prefix, source), 'last_run_at', at.toISOString());
}

export async function recordSuccess(redis: Redis, prefix: string, source: string, at: Date, observations: number, warnings: readonly string[]): Promise<void> {
  await redis
    .multi()
    .hset(key(prefix, source), {
      last_success_at: at.toISOString(),
      last_success_observations: String(observations),
      last_success_warnings: JSON.stringify(warnings.slice(0, 20)),
    })
    .hdel(key(prefix, source), 'rate_limited_until')
    .exec();
}

export async function recordFailure(redis: Redis, prefix: string, source: string, at: Date, reason: string, kind: string, rateLimitedUntil?: Date): Promise<void> {
  const m = redis.multi().hset(key(prefix, source), { last_failure_at: at.toISOString(), last_failure_reason: reason.slice(0, 500), last_failure_kind: kind });
  if (rateLimitedUntil) m.hset(key(prefix, source), 'rate_limited_until', rateLimitedUntil.toISOString());
  await m.exec();
}

export async function readStatus(redis: Redis, prefix: string, source: string): Promise<CollectorStatus> {
  const h = await redis.hgetall(key(prefix, source));
  return {
    source,
    ...(h.last_run_at ? { last_run_at: h.last_run_at } : {}),
    ...(h.last_success_at ? { last_success_at: h.last_success_at, last_success_observations: Number(h.last_success_observations ?? 0) } : {}),
    ...(h.last_success_warnings ? { last_success_warnings: JSON.parse(h.last_success_warnings) as string[] } : {}),
    ...(h.last_failure_at ? { last_failure_at: h.last_failure_at, last_failure_reason: h.last_failure_reason ?? '', last_failure_kind: h.last_failure_kind ?? '' } : {}),
    ...(h.rate_limited_until ? { rate_limited_until: h.rate_limited_until } : {}),
  };
}
