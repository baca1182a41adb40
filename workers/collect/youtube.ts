import { DateTime } from 'luxon';
import type { ObservationInput } from '../../src/domain/observations.js';
import { periodOf } from '../../src/domain/periods.js';
import {
  NeedsReauthError,
  PermanentError,
  RateLimitedError,
  TransientError,
  type CollectContext,
  type CollectorDefinition,
  type CollectorError,
  type CollectResult,
} from './types.js';

/**
 * YouTube Data API v3 with an API key (public statistics, no OAuth):
 *  - `channels?part=statistics,contentDetails&id=…` → youtube.subscribers,
 *    youtube.views, youtube.videos (counts arrive as strings; with
 *    `hiddenSubscriberCount` the subscriber count is missing, not 0)
 *  - the uploads playlist (`playlistItems`, 50 a page) for videos published in
 *    the last RECENT_DAYS days, at most MAX_VIDEOS, then
 *    `videos?part=statistics&id=…` in chunks of 50 ids (the API's limit) →
 *    youtube.views and youtube.engagements per video (`youtube:<id>`).
 * Each list call costs 1 of the project's 10,000 daily quota units. When the
 * quota is spent (403 `quotaExceeded`), the run waits for the daily reset at
 * midnight Pacific time, which `crier metrics status` shows.
 */

const RECENT_DAYS = 90;
const MAX_VIDEOS = 500;
const CHUNK = 50;
const TIMEOUT_MS = 30_000;
const SOURCE = 'youtube';

interface YoutubeErrorBody {
  error?: {
    code?: number;
    message?: string;
    errors?: Array<{ reason?: string; domain?: string; message?: string }>;
    /** Google's newer detail: `{reason: "API_KEY_INVALID"}` for a wrong key (answered 400 "badRequest"). */
    details?: Array<{ reason?: string }>;
  };
}

/** When the daily quota comes back: the next midnight in America/Los_Angeles. */
export function nextQuotaReset(now: Date): Date {
  return DateTime.fromJSDate(now, { zone: 'America/Los_Angeles' }).plus({ days: 1 }).startOf('day').toJSDate();
}

/** The error class a YouTube answer maps to, by its `errors[].reason`. */
export function mapYoutubeError(status: number, body: unknown, now: Date): CollectorError {
  const e = (body as YoutubeErrorBody | null)?.error;
  const reasons = [...(e?.errors ?? []).map((x) => x.reason ?? ''), ...(e?.details ?? []).map((x) => x.reason ?? '')];
  const detail = `${e?.message ?? `HTTP ${status}`}${reasons.length ? ` (${reasons.join(', ')})` : ''}`;
  if (reasons.includes('quotaExceeded') || reasons.includes('dailyLimitExceeded')) {
    const reset = nextQuotaReset(now);
    return new RateLimitedError(`YouTube daily quota used up: waiting for the reset at midnight Pacific time (${reset.toISOString()}): ${detail}`, reset);
  }
  if (reasons.includes('rateLimitExceeded') || reasons.includes('userRateLimitExceeded') || status === 429) {
    return new RateLimitedError(`YouTube rate limit: ${detail}`, new Date(now.getTime() + 60_000));
  }
  if (reasons.some((r) => ['keyInvalid', 'keyExpired', 'API_KEY_INVALID', 'API_KEY_EXPIRED', 'accessNotConfigured', 'forbidden', 'ipRefererBlocked'].includes(r)) || status === 401 || status === 403) {
    return new NeedsReauthError(`YouTube refused the API key: ${detail}`);
  }
  if (status >= 500) return new TransientError(`YouTube error ${status}: ${detail}`);
  return new PermanentError(`YouTube refused the request (${status}): ${detail}`);
}

/** A count from the API's strings; undefined when absent (hidden), never 0 for "not given". */
function countOf(v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export async function collectYoutube(ctx: CollectContext): Promise<CollectResult> {
  const { apiUrl, apiKey, channelId } = ctx.config.youtube;
  if (!apiKey || !channelId) throw new PermanentError('YOUTUBE_API_KEY and YOUTUBE_CHANNEL_ID are not set');
  const now = ctx.now();
  const zone = ctx.config.timezone;
  const today = periodOf('day', now, zone);
  const warnings: string[] = [];
  const out: ObservationInput[] = [];
  let calls = 0;

  const get = (resource: string, params: Record<string, string>): Promise<unknown> =>
    ctx.limited(async () => {
      calls += 1;
      const url = `${apiUrl}/${resource}?${new URLSearchParams({ ...params, key: apiKey }).toString()}`;
      let res: Response;
      try {
        res = await ctx.fetch(url, { headers: { accept: 'application/json', 'user-agent': 'Crier' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
        throw new TransientError(`cannot reach YouTube at ${new URL(apiUrl).origin}: ${cause}`);
      }
      const text = await res.text().catch(() => '');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw res.ok ? new TransientError(`YouTube answered ${res.status} with a body that is not JSON`) : mapYoutubeError(res.status, undefined, ctx.now());
      }
      if (!res.ok) throw mapYoutubeError(res.status, body, ctx.now());
      return body;
    });
  const obs = (o: Omit<ObservationInput, 'source' | 'collectedAt' | 'period'>) => out.push({ ...o, period: today, source: SOURCE, collectedAt: now });

  const channels = (await get('channels', { part: 'statistics,contentDetails', id: channelId })) as {
    items?: Array<{ statistics?: Record<string, unknown>; contentDetails?: { relatedPlaylists?: { uploads?: unknown } } }>;
  };
  const channel = channels.items?.[0];
  if (!channel) throw new PermanentError(`YouTube has no channel with id ${channelId} (check YOUTUBE_CHANNEL_ID)`);
  const stats = channel.statistics ?? {};
  const views = countOf(stats.viewCount);
  const videos = countOf(stats.videoCount);
  const subscribers = stats.hiddenSubscriberCount === true ? undefined : countOf(stats.subscriberCount);
  if (views !== undefined) obs({ measure: 'youtube.views', value: views });
  if (videos !== undefined) obs({ measure: 'youtube.videos', value: videos });
  if (subscribers !== undefined) obs({ measure: 'youtube.subscribers', value: subscribers });
  else warnings.push('the channel hides its subscriber count: youtube.subscribers is missing for today');

  const uploads = channel.contentDetails?.relatedPlaylists?.uploads;
  const ids: string[] = [];
  if (typeof uploads === 'string') {
    const since = now.getTime() - RECENT_DAYS * 86_400_000;
    let pageToken: string | undefined;
    pages: do {
      const page = (await get('playlistItems', { part: 'contentDetails', playlistId: uploads, maxResults: String(CHUNK), ...(pageToken ? { pageToken } : {}) })) as {
        items?: Array<{ contentDetails?: { videoId?: unknown; videoPublishedAt?: unknown } }>;
        nextPageToken?: unknown;
      };
      // Newest first: the first upload older than the window ends the walk.
      for (const item of page.items ?? []) {
        const id = item.contentDetails?.videoId;
        const published = Date.parse(String(item.contentDetails?.videoPublishedAt ?? ''));
        if (typeof id !== 'string') continue;
        if (Number.isFinite(published) && published < since) break pages;
        ids.push(id);
        if (ids.length >= MAX_VIDEOS) break pages;
      }
      pageToken = typeof page.nextPageToken === 'string' ? page.nextPageToken : undefined;
    } while (pageToken);
  }

  for (let i = 0; i < ids.length; i += CHUNK) {
    const chunk = ids.slice(i, i + CHUNK);
    const answer = (await get('videos', { part: 'statistics', id: chunk.join(','), maxResults: String(CHUNK) })) as {
      items?: Array<{ id?: unknown; statistics?: Record<string, unknown> }>;
    };
    const seen = new Set<string>();
    for (const item of answer.items ?? []) {
      if (typeof item.id !== 'string') continue;
      seen.add(item.id);
      const s = item.statistics ?? {};
      const subject = `youtube:${item.id}`;
      const v = countOf(s.viewCount);
      if (v !== undefined) obs({ measure: 'youtube.views', subject, value: v });
      const likes = countOf(s.likeCount);
      const comments = countOf(s.commentCount);
      // Likes or comments can be hidden or turned off: count what is shown, or nothing.
      if (likes !== undefined || comments !== undefined) obs({ measure: 'youtube.engagements', subject, value: (likes ?? 0) + (comments ?? 0) });
    }
    for (const id of chunk.filter((x) => !seen.has(x))) warnings.push(`youtube:${id}: not returned (deleted or private)`);
  }

  await ctx.store.recordMany(out);
  return { observations: out.length, warnings, calls };
}

export const youtubeCollector: CollectorDefinition = {
  source: SOURCE,
  description: 'YouTube channel: subscribers, views, videos, and views and engagements of recent uploads',
  measures: ['youtube.subscribers', 'youtube.views', 'youtube.videos', 'youtube.engagements'],
  cron: '40 */6 * * *',
  unconfigured: (config) => (config.youtube.apiKey && config.youtube.channelId ? undefined : 'set YOUTUBE_API_KEY and YOUTUBE_CHANNEL_ID'),
  create: () => ({ source: SOURCE, run: collectYoutube }),
};
