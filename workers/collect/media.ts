import { createHash } from 'node:crypto';
import { listReleases, type PressRelease } from '../../channels/press/store.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { periodOf, previousPeriod, type Period } from '../../src/domain/periods.js';
import { fetchFeed, type FeedItem } from './feeds.js';
import { termPattern, TONE_METHOD, TONE_MODEL, TONES, toneOf, type Tone } from './tone.js';
import { TransientError, type CollectContext, type CollectorDefinition, type CollectResult } from './types.js';

/**
 * Media coverage: reads the configured news feeds; an item whose headline or
 * summary names one of the configured terms is a *mention*. Each mention is
 * kept (so it still counts after it scrolls off the feed) with its tone (see
 * tone.ts; method and model version stored with it) and the press release it
 * most likely came from: one published at most `link_days` days before it
 * that shares at least two distinctive words with it (the most shared wins).
 *
 * Every run recounts the last `metrics.media.weeks` weeks: media.mentions by
 * tone (a zero is written for a tone with none, since the feeds were read)
 * and media.releases_with_coverage (releases published that week with a
 * mention linked so far). A mention's week is its publication date, or the
 * day Crier first saw it when the feed gives none.
 */

const DAY = 86_400_000;
const MIN_SHARED = 2;

const keys = (prefix: string) => ({
  mention: (id: string) => `${prefix}:media:mention:${id}`,
  index: `${prefix}:media:mentions`,
});

const STOP = new Set(
  'about above after again against also among another because been before being below between both came could does doing down during each even every from further have having here into just last made make many more most much must news only other over said same says should since some such than that their them then there these they this those through under until upon very want well were what when where which while will with within without would year years your week today new'.split(' '),
);

/** Lower-case words of four letters or more, minus common words and the words of the configured terms. */
export function distinctiveWords(text: string, ignore: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  for (const w of text.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').match(/\p{L}{4,}/gu) ?? []) {
    if (!STOP.has(w) && !ignore.has(w)) out.add(w);
  }
  return out;
}

export function linkRelease(item: { title: string; text: string }, published: Date, releases: readonly PressRelease[], linkDays: number, ignore: ReadonlySet<string>): PressRelease | undefined {
  const words = distinctiveWords(`${item.title} ${item.text}`, ignore);
  let best: { r: PressRelease; shared: number } | undefined;
  for (const r of releases) {
    const age = published.getTime() - r.publishedAt.getTime();
    // A little slack before: feeds round times, and a story can go up minutes before the release page.
    if (age < -DAY || age > linkDays * DAY) continue;
    const rw = distinctiveWords(`${r.headline} ${r.bodyText.slice(0, 2000)}`, ignore);
    let shared = 0;
    for (const w of words) if (rw.has(w)) shared++;
    if (shared >= MIN_SHARED && (!best || shared > best.shared || (shared === best.shared && r.publishedAt > best.r.publishedAt))) best = { r, shared };
  }
  return best?.r;
}

export async function collectMedia(ctx: CollectContext): Promise<CollectResult> {
  const settings = ctx.config.metrics.media;
  const now = ctx.now();
  const zone = ctx.config.timezone;
  const k = keys(ctx.prefix);
  const warnings: string[] = [];
  const items: FeedItem[] = [];
  let read = 0;
  for (const url of settings.feeds) {
    try {
      items.push(...(await ctx.limited(() => fetchFeed(ctx, url))));
      read++;
    } catch (err) {
      warnings.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (read === 0) throw new TransientError(`no feed could be read: ${warnings.join('; ')}`);

  const patterns = settings.terms.map((t) => termPattern(t));
  const termWords = new Set(settings.terms.flatMap((t) => [...distinctiveWords(t, new Set())]));
  const releases = await listReleases(ctx.redis, ctx.prefix, 1000, now);
  let mentions = 0;
  for (const item of items) {
    const matched = settings.terms.filter((_, i) => patterns[i]!.test(item.title) || patterns[i]!.test(item.text));
    if (matched.length === 0) continue;
    mentions++;
    const id = createHash('sha1').update(item.key).digest('hex').slice(0, 20);
    const firstSeen = await ctx.redis.hget(k.mention(id), 'published_at');
    const published = item.published ?? (firstSeen ? new Date(firstSeen) : now);
    const { tone, score } = toneOf(item.title || item.text, settings.terms);
    const release = linkRelease(item, published, releases, settings.link_days, termWords);
    await ctx.redis
      .multi()
      .hset(k.mention(id), {
        feed: item.feed,
        title: item.title,
        link: item.link ?? '',
        published_at: published.toISOString(),
        dated: item.published ? 'feed' : 'first_seen',
        terms: matched.join('|'),
        tone,
        score: String(score),
        method: TONE_METHOD,
        model: TONE_MODEL,
        release: release?.slug ?? '',
        collected_at: now.toISOString(),
      })
      .zadd(k.index, published.getTime(), id)
      .exec();
  }

  const weeks: Period[] = [periodOf('week', now, zone)];
  while (weeks.length < settings.weeks) weeks.unshift(previousPeriod(weeks[0]!));
  const inputs: ObservationInput[] = [];
  const meta = { method: TONE_METHOD, model: TONE_MODEL };
  const covered = new Set<string>();
  for (const w of weeks) {
    const ids = await ctx.redis.zrangebyscore(k.index, w.start.getTime(), `(${w.end.getTime()}`);
    const counts = Object.fromEntries(TONES.map((t) => [t, 0])) as Record<Tone, number>;
    for (const id of ids) {
      const [tone, release] = await ctx.redis.hmget(k.mention(id), 'tone', 'release');
      if (tone && tone in counts) counts[tone as Tone]++;
      if (release) covered.add(release);
    }
    for (const t of TONES) inputs.push({ measure: 'media.mentions', dimensions: { tone: t }, period: w, value: counts[t], source: 'media', collectedAt: now, meta });
  }
  // Mentions after the last week counted can still cover a release in it.
  for (const id of await ctx.redis.zrangebyscore(k.index, weeks.at(-1)!.end.getTime(), '+inf')) {
    const release = await ctx.redis.hget(k.mention(id), 'release');
    if (release) covered.add(release);
  }
  for (const w of weeks) {
    const inWeek = releases.filter((r) => r.publishedAt >= w.start && r.publishedAt < w.end);
    inputs.push({ measure: 'media.releases_with_coverage', period: w, value: inWeek.filter((r) => covered.has(r.slug)).length, source: 'media', collectedAt: now, meta: { releases: String(inWeek.length) } });
  }
  await ctx.store.recordMany(inputs);
  return { observations: inputs.length, warnings: mentions === 0 ? [...warnings, 'no item in the feeds mentions the configured terms'] : warnings, calls: settings.feeds.length };
}

export const mediaCollector: CollectorDefinition = {
  source: 'media',
  description: 'Media mentions from news feeds, their tone, and press releases that achieved coverage',
  measures: ['media.mentions', 'media.releases_with_coverage'],
  cron: '40 * * * *',
  unconfigured(config) {
    const m = config.metrics.media;
    if (m.feeds.length === 0) return 'needs metrics.media.feeds (news feed URLs) in the config file';
    if (m.terms.length === 0) return 'needs metrics.media.terms (names to look for) in the config file';
    return undefined;
  },
  create: () => ({ source: 'media', run: collectMedia }),
};
