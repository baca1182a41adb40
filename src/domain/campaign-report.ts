import type { Redis } from 'ioredis';
import { channelDefinition } from '../../channels/registry.js';
import type { AudienceSelector } from '../../channels/adapter.js';
import { getReleaseForCampaign } from '../../channels/press/store.js';
import { audienceKeys, countAudience, listNames } from './audience.js';
import { campaignKeys, channelCounts, type Campaign, type ChannelCounts } from './campaigns.js';

/**
 * What `campaign show`, `campaign failures` and `campaign create` tell the
 * team about a campaign's audience and its failures, read from Redis.
 */

/** The audience a channel selects, or undefined for a channel that posts once (X, Mastodon, webhook). */
export function channelAudience(channel: string, content: Record<string, unknown>): AudienceSelector | undefined {
  return channelDefinition(channel)?.audience?.(content);
}

/** The press channel's delivery that publishes the release (workers/specials.ts). */
const PUBLISH = 'publish';

/** How many subscribers each audience channel would reach if planned now (posting channels: absent). */
export async function audienceSizes(redis: Redis, prefix: string, c: Pick<Campaign, 'channels'>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [channel, content] of Object.entries(c.channels)) {
    const selector = channelAudience(channel, content);
    if (selector) out[channel] = await countAudience(redis, prefix, selector);
  }
  return out;
}

export interface AudienceProblem {
  channel: string;
  list: string;
}

export interface AudienceCheck {
  /** Channels naming a list no import ever created. */
  missing: AudienceProblem[];
  /** Channels whose list exists but would reach nobody now (empty, everyone unsubscribed, or no one matches). */
  empty: Array<AudienceProblem & { filtered: boolean }>;
  /** Every list that exists, sorted. */
  lists: string[];
}

/** Checked at create: a missing list is a mistake (nobody would ever get it); an empty one may be filled before send time. */
export async function checkAudiences(redis: Redis, prefix: string, channels: Record<string, Record<string, unknown>>): Promise<AudienceCheck> {
  const lists = await listNames(redis, prefix);
  const known = new Set(lists);
  const missing: AudienceCheck['missing'] = [];
  const empty: AudienceCheck['empty'] = [];
  for (const [channel, content] of Object.entries(channels)) {
    const selector = channelAudience(channel, content);
    if (!selector?.list) continue;
    if (!known.has(selector.list)) {
      missing.push({ channel, list: selector.list });
      continue;
    }
    const filtered = ('areas' in selector && (selector.areas?.length ?? 0) > 0) || ('topics' in selector && (selector.topics?.length ?? 0) > 0);
    if ((await countAudience(redis, prefix, selector)) === 0) empty.push({ channel, list: selector.list, filtered });
  }
  return { missing, empty, lists };
}

export interface FailureGroup {
  channel: string;
  reason: string;
  count: number;
}

/** Failed deliveries grouped by channel and reason, the largest group first. */
export async function failureGroups(redis: Redis, prefix: string, id: string): Promise<FailureGroup[]> {
  const groups = new Map<string, FailureGroup>();
  for await (const page of scanFailures(redis, prefix, id)) {
    for (const f of page) {
      const key = `${f.channel}\n${f.reason}`;
      const g = groups.get(key) ?? { channel: f.channel, reason: f.reason, count: 0 };
      g.count++;
      groups.set(key, g);
    }
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.channel.localeCompare(b.channel) || a.reason.localeCompare(b.reason));
}

export interface FailedDelivery {
  channel: string;
  /** Subscriber id, or '-' for a post. */
  recipient: string;
  /** The address it was sent to; '' for a post, '(erased)' when the subscriber has since been forgotten. */
  email: string;
  name: string;
  reason: string;
}

async function* scanFailures(redis: Redis, prefix: string, id: string): AsyncGenerator<Array<Omit<FailedDelivery, 'email' | 'name'>>> {
  const key = campaignKeys(prefix, id).failures;
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 500);
    cursor = next;
    const page: Array<Omit<FailedDelivery, 'email' | 'name'>> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i]!;
      const at = field.indexOf(':');
      page.push({ channel: field.slice(0, at), recipient: field.slice(at + 1), reason: flat[i + 1]! });
    }
    if (page.length > 0) yield page;
  } while (cursor !== '0');
}

/** Every failed delivery with who it was for, a page at a time (memory holds one page). */
export async function* failedDeliveries(redis: Redis, prefix: string, id: string): AsyncGenerator<FailedDelivery[]> {
  const ak = audienceKeys(prefix);
  for await (const page of scanFailures(redis, prefix, id)) {
    const pipe = redis.pipeline();
    for (const f of page) pipe.hmget(ak.sub(f.recipient), 'email', 'name');
    const rows = ((await pipe.exec()) ?? []).map(([, r]) => r as Array<string | null>);
    yield page.map((f, i) => {
      const [email, name] = rows[i] ?? [];
      return { ...f, email: f.recipient === '-' ? '' : (email ?? '(erased)'), name: name ?? '' };
    });
  }
}

/** Audience sizes already counted, by selector: `campaign list` counts each list once, however many campaigns use it. */
export type AudienceCounts = Map<string, Promise<number>>;

export interface ChannelView extends ChannelCounts {
  /** Whether the channel has been fanned out into deliveries (that happens at send time). */
  planned: boolean;
  /** Before planning, for an audience channel: the subscribers it would reach if planned now. */
  audience?: number;
  /**
   * Press: the release's publication to the press room, which is not a message
   * and so is not in sent or pending. `at` is the embargo time while it waits.
   */
  publication?: { published: boolean; failed: boolean; at?: string; path?: string };
}

/**
 * Per-channel counts as `campaign show` reports them. Before planning, an
 * audience channel's pending count is the audience it would reach now (a
 * posting channel's is its one post); a campaign cancelled before planning
 * has nothing pending.
 */
export async function channelViews(redis: Redis, prefix: string, c: Campaign, counted: AudienceCounts = new Map()): Promise<Record<string, ChannelView>> {
  const counts = await channelCounts(redis, prefix, c);
  const flags = await redis.hgetall(campaignKeys(prefix, c.id).counts);
  const out: Record<string, ChannelView> = {};
  for (const [channel, n] of Object.entries(counts)) {
    const planned = flags[`${channel}:planned`] === '1';
    const selector = planned || c.status === 'cancelled' ? undefined : channelAudience(channel, c.channels[channel] ?? {});
    if (selector) {
      const key = JSON.stringify(selector);
      if (!counted.has(key)) counted.set(key, countAudience(redis, prefix, selector));
      const audience = await counted.get(key)!;
      out[channel] = { ...n, pending: audience, planned, audience };
    } else {
      out[channel] = { ...n, planned };
    }
    if (channel === 'press' && planned) out[channel] = await withPublication(redis, prefix, c, out[channel]!);
  }
  return out;
}

/** Takes the press channel's publishing step out of its message counts and reports it on its own. */
async function withPublication(redis: Redis, prefix: string, c: Campaign, v: ChannelView): Promise<ChannelView> {
  const published = (await redis.sismember(campaignKeys(prefix, c.id).done('press'), PUBLISH)) === 1;
  const failed = !published && (await redis.hexists(campaignKeys(prefix, c.id).failures, `press:${PUBLISH}`)) === 1;
  const release = published ? await getReleaseForCampaign(redis, prefix, c.id) : null;
  const embargo = c.channels.press?.embargo_until_iso;
  return {
    ...v,
    sent: v.sent - (published ? 1 : 0),
    failed: v.failed - (failed ? 1 : 0),
    pending: Math.max(0, v.pending - (published || failed || c.status === 'cancelled' ? 0 : 1)),
    publication: {
      published,
      failed,
      ...(release ? { at: release.publishedAt.toISOString(), path: `/press/${release.slug}` } : typeof embargo === 'string' ? { at: embargo } : {}),
    },
  };
}
