import type { Redis } from 'ioredis';

/**
 * Media coverage of press releases, as the media collector
 * (workers/collect/media.ts) keeps it: one hash per mention at
 * `<prefix>:media:mention:<id>` (title, link, tone, release slug,
 * collected_at), indexed by publication time in `<prefix>:media:mentions`.
 * Read only; the collector owns the layout.
 */

export interface Mention {
  title: string;
  link: string;
  tone: string;
  publishedAt: Date;
  collectedAt: Date;
}

/** Mentions published at or after `from` that the collector linked to one of `slugs`, by slug, oldest first. */
export async function mentionsOf(redis: Redis, prefix: string, slugs: ReadonlySet<string>, from: Date): Promise<Map<string, Mention[]>> {
  const out = new Map<string, Mention[]>();
  if (slugs.size === 0) return out;
  const ids = await redis.zrangebyscore(`${prefix}:media:mentions`, from.getTime(), '+inf');
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(`${prefix}:media:mention:${id}`, 'release', 'title', 'link', 'tone', 'published_at', 'collected_at');
  for (const [, row] of (await pipe.exec()) ?? []) {
    const [release, title, link, tone, published, collected] = (row ?? []) as (string | null)[];
    if (!release || !slugs.has(release)) continue;
    const list = out.get(release) ?? [];
    list.push({ title: title ?? '', link: link ?? '', tone: tone ?? '', publishedAt: new Date(published ?? 0), collectedAt: new Date(collected ?? 0) });
    out.set(release, list);
  }
  return out;
}
