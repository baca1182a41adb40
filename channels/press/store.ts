import type { Redis } from 'ioredis';
import { DateTime } from 'luxon';
import { defineScript, runScript } from '../../src/redis/scripts.js';

/**
 * Published press releases: what the public feeds and pages show. Nothing is
 * written here before the embargo time — the worker publishes at/after it —
 * and readers also hide anything whose publishedAt is still in the future.
 *
 * Keys (all under `${prefix}:press:`):
 *   release:<slug>   hash of one release
 *   published        sorted set slug → publishedAt (ms), newest last
 *   by-campaign      hash campaignId → slug, so publishing is idempotent
 */

export interface PressReleaseInput {
  campaignId: string;
  slug: string;
  headline: string;
  bodyHtml: string;
  bodyText: string;
  publishedAt: Date;
}

export type PressRelease = PressReleaseInput;

export interface PublishResult {
  release: PressRelease;
  /** False when this campaign's release was already published (the stored one is returned). */
  created: boolean;
}

const MAX_SLUG_WORDS_LENGTH = 80;

const keys = {
  release: (prefix: string, slug: string) => `${prefix}:press:release:${slug}`,
  published: (prefix: string) => `${prefix}:press:published`,
  byCampaign: (prefix: string) => `${prefix}:press:by-campaign`,
};

/** Letters NFKD does not decompose into ASCII. */
const TRANSLITERATE: Record<string, string> = { ß: 'ss', æ: 'ae', œ: 'oe', ø: 'o', ł: 'l', đ: 'd', ð: 'd', þ: 'th', ı: 'i' };

/**
 * `2026-12-01-new-rural-crime-team`: the publication date in the team's time
 * zone (a 00:01 BST release belongs to that day, not the UTC day before), then
 * the headline in lower-case ASCII. Uniqueness is settled by publishRelease.
 */
export function slugify(headline: string, date: Date, zone = 'Europe/London'): string {
  const day = DateTime.fromJSDate(date, { zone }).toFormat('yyyy-MM-dd');
  const lower = headline.toLowerCase().replace(/[ßæœøłđðþı]/g, (c) => TRANSLITERATE[c] ?? '');
  let words = lower
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/['’‘`]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (words.length > MAX_SLUG_WORDS_LENGTH) {
    const cut = words.slice(0, MAX_SLUG_WORDS_LENGTH);
    const lastDash = cut.lastIndexOf('-');
    words = lastDash > 20 ? cut.slice(0, lastDash) : cut.replace(/-+$/, '');
  }
  return `${day}-${words || 'press-release'}`;
}

export function isValidSlug(slug: string): boolean {
  return /^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(slug) && slug.length <= 120;
}

// Claims the slug (adding -2, -3 … on collision) and records the campaign in
// one step, so two workers publishing at once can neither double a release nor
// take the same slug. Keys are built in the script from the prefix: fine on
// one Redis, which is Crier's store.
const PUBLISH_SCRIPT = defineScript(
  'press_publish',
  `
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return {existing, 0} end
local base = ARGV[2]
local slug = base
local n = 1
while redis.call('EXISTS', ARGV[3] .. slug) == 1 do
  n = n + 1
  slug = base .. '-' .. n
end
redis.call('HSET', ARGV[3] .. slug, 'campaignId', ARGV[1], 'slug', slug, 'headline', ARGV[4],
  'bodyHtml', ARGV[5], 'bodyText', ARGV[6], 'publishedAt', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[7], slug)
redis.call('HSET', KEYS[1], ARGV[1], slug)
return {slug, 1}
`,
);

export async function publishRelease(redis: Redis, prefix: string, r: PressReleaseInput): Promise<PublishResult> {
  if (!isValidSlug(r.slug)) throw new RangeError(`not a valid press release slug: "${r.slug}" (use slugify)`);
  if (Number.isNaN(r.publishedAt.getTime())) throw new RangeError('publishedAt is not a valid date');
  const reply = await runScript<[string, number]>(
    redis,
    PUBLISH_SCRIPT,
    [keys.byCampaign(prefix), keys.published(prefix)],
    [r.campaignId, r.slug, keys.release(prefix, ''), r.headline, r.bodyHtml, r.bodyText, String(r.publishedAt.getTime())],
  );
  const [slug, created] = reply;
  if (created === 1) return { release: { ...r, slug }, created: true };
  const stored = await getRelease(redis, prefix, slug);
  if (!stored) throw new Error(`press release ${slug} is indexed but missing`);
  return { release: stored, created: false };
}

function fromHash(h: Record<string, string>): PressRelease | null {
  if (!h.slug || !h.publishedAt) return null;
  return {
    campaignId: h.campaignId ?? '',
    slug: h.slug,
    headline: h.headline ?? '',
    bodyHtml: h.bodyHtml ?? '',
    bodyText: h.bodyText ?? '',
    publishedAt: new Date(Number(h.publishedAt)),
  };
}

/** The release at `slug`, whatever its publishedAt (callers showing it publicly check that). */
export async function getRelease(redis: Redis, prefix: string, slug: string): Promise<PressRelease | null> {
  if (!isValidSlug(slug)) return null;
  return fromHash(await redis.hgetall(keys.release(prefix, slug)));
}

/** The campaign's published release, if any. */
export async function getReleaseForCampaign(redis: Redis, prefix: string, campaignId: string): Promise<PressRelease | null> {
  const slug = await redis.hget(keys.byCampaign(prefix), campaignId);
  return slug ? getRelease(redis, prefix, slug) : null;
}

/** Newest first. With `now`, only releases published at or before it. */
export async function listReleases(redis: Redis, prefix: string, limit = 50, now?: Date): Promise<PressRelease[]> {
  if (!Number.isInteger(limit) || limit < 1) return [];
  const slugs = now
    ? await redis.zrevrangebyscore(keys.published(prefix), now.getTime(), '-inf', 'LIMIT', 0, limit)
    : await redis.zrevrange(keys.published(prefix), 0, limit - 1);
  if (slugs.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const slug of slugs) pipeline.hgetall(keys.release(prefix, slug));
  const results = (await pipeline.exec()) ?? [];
  const releases: PressRelease[] = [];
  for (const [err, value] of results) {
    if (err || !value) continue;
    const r = fromHash(value as Record<string, string>);
    if (r) releases.push(r);
  }
  return releases;
}
