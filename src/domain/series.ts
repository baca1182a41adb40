import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UserError } from '../errors.js';
import type { CampaignDraft, CampaignKind } from './campaign-file.js';

/**
 * A recurring campaign ("series"): the campaign file's content, validated and
 * with its body files inlined once, plus a cron pattern in a time zone. Each
 * occurrence becomes an ordinary dated campaign whose id is derived from the
 * series and the occurrence instant, so creating it twice is creating it once.
 *
 * Keys: `<prefix>:series:<id>` (hash), `<prefix>:series` (sorted set by creation time).
 */

export type SeriesStatus = 'active' | 'cancelled';

export interface Series {
  id: string;
  title: string;
  kind: CampaignKind;
  cron: string;
  timezone: string;
  essential: boolean;
  author: string;
  status: SeriesStatus;
  /** No occurrence before this instant. */
  startAt: Date;
  until?: Date;
  createdAt: Date;
  channels: Record<string, Record<string, unknown>>;
}

export const seriesKeys = (prefix: string, id: string) => ({ hash: `${prefix}:series:${id}`, index: `${prefix}:series` });

/** The job scheduler's id for a series (one per series, in the `recurring` queue). */
export const seriesSchedulerId = (id: string): string => `series-${id}`;

export function newSeriesId(): string {
  return `s${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').toLowerCase()}`;
}

/** The campaign id of one occurrence: the series id and the instant (base 36 seconds), at most 40 characters. */
export function occurrenceId(seriesId: string, at: Date): string {
  return `${seriesId}o${Math.floor(at.getTime() / 1000).toString(36)}`;
}

export async function saveSeries(redis: Redis, prefix: string, draft: CampaignDraft & { repeat: { cron: string; until?: Date } }, author: string, now: Date): Promise<Series> {
  const id = newSeriesId();
  const k = seriesKeys(prefix, id);
  const s: Series = {
    id,
    title: draft.title,
    kind: draft.kind,
    cron: draft.repeat.cron,
    timezone: draft.timezone,
    essential: draft.essential,
    author,
    status: 'active',
    startAt: draft.sendAt,
    ...(draft.repeat.until ? { until: draft.repeat.until } : {}),
    createdAt: now,
    channels: draft.channels,
  };
  await redis
    .multi()
    .hset(k.hash, {
      id,
      title: s.title,
      kind: s.kind,
      cron: s.cron,
      timezone: s.timezone,
      essential: s.essential ? '1' : '0',
      author,
      status: s.status,
      start_at: s.startAt.toISOString(),
      until: s.until?.toISOString() ?? '',
      created_at: now.toISOString(),
      channels: JSON.stringify(s.channels),
    })
    .zadd(k.index, now.getTime(), id)
    .exec();
  return s;
}

function fromHash(h: Record<string, string>): Series {
  return {
    id: h.id!,
    title: h.title!,
    kind: h.kind as CampaignKind,
    cron: h.cron!,
    timezone: h.timezone!,
    essential: h.essential === '1',
    author: h.author!,
    status: h.status as SeriesStatus,
    startAt: new Date(h.start_at!),
    ...(h.until ? { until: new Date(h.until) } : {}),
    createdAt: new Date(h.created_at!),
    channels: JSON.parse(h.channels ?? '{}') as Record<string, Record<string, unknown>>,
  };
}

export async function findSeries(redis: Redis, prefix: string, id: string): Promise<Series | null> {
  if (!/^s[a-z0-9]{1,39}$/.test(id)) return null;
  const h = await redis.hgetall(seriesKeys(prefix, id).hash);
  return h.id ? fromHash(h) : null;
}

export async function getSeries(redis: Redis, prefix: string, id: string): Promise<Series> {
  const s = await findSeries(redis, prefix, id);
  if (!s) throw new UserError(`no recurring campaign with id "${id}" (see \`crier campaign list\`)`, 'CRIER_ERR_NOT_FOUND');
  return s;
}

export async function listSeries(redis: Redis, prefix: string): Promise<Series[]> {
  const ids = await redis.zrevrange(seriesKeys(prefix, '').index, 0, -1);
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hgetall(seriesKeys(prefix, id).hash);
  const rows = (await pipe.exec()) ?? [];
  return rows.map(([, h]) => h as Record<string, string>).filter((h) => h.id).map(fromHash);
}

/** Marks the series cancelled; 'already' when it was. */
export async function markSeriesCancelled(redis: Redis, prefix: string, id: string, now: Date): Promise<'ok' | 'already'> {
  const k = seriesKeys(prefix, id).hash;
  const [[, was]] = (await redis.multi().hget(k, 'status').hset(k, 'status', 'cancelled', 'cancelled_at', now.toISOString()).exec()) as [[null, string | null], [null, number]];
  return was === 'cancelled' ? 'already' : 'ok';
}

/** The draft of the occurrence at `at`: the series' content, titled with its local date. */
export function occurrenceDraft(s: Series, at: Date, localDate: string): CampaignDraft {
  return { title: `${s.title} (${localDate})`, kind: s.kind, sendAt: at, timezone: s.timezone, essential: s.essential, channels: s.channels };
}
