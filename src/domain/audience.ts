import type { Redis } from 'ioredis';
import type { AudienceSelector, Recipient } from '../../channels/adapter.js';
import { UserError } from '../errors.js';
import {
  audienceKeys,
  execAll,
  listOptOutField,
  suppressionHashes,
  normaliseEmail,
  subscriberId,
  type AudienceEventHook,
} from './audience-keys.js';
import { safeCsvLine } from './csv.js';
import { defineScript, runScript } from '../redis/scripts.js';

/**
 * The audience: subscribers (one hash each), lists (zsets of ids in insertion
 * order), consent, unsubscribe and the suppression list (hashes of emails that
 * must never be mailed again, which outlives re-imports and erasure).
 */

export { subscriberId, emailHash, normaliseEmail, checkListName, audienceKeys, emailProblem, listOptOutField, suppressionHash, suppressionHashes } from './audience-keys.js';
export type { AudienceEventHook } from './audience-keys.js';
export { importSubscribers, type ImportResult, type ImportOptions } from './audience-import.js';

export type SubscriberStatus = 'subscribed' | 'unsubscribed';

export interface Subscriber extends Recipient {
  status: SubscriberStatus;
  consentSource: string;
  consentAt: string;
  createdAt: string;
  updatedAt: string;
}

/** A whole list, or (community alerts) subscribers by area and topic, optionally within a list: one type, the adapters'. */
export type { AudienceSelector };


export interface AudienceOpts {
  now?: () => Date;
  onEvent?: AudienceEventHook;
  /** The derived 'suppression' key (deriveKey(secret, 'suppression')): suppression entries are keyed with it. */
  suppressionKey?: Buffer;
}

export function splitTopics(topics: string | undefined): string[] {
  if (!topics) return [];
  return topics
    .split(';')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

function toSubscriber(id: string, h: Record<string, string>): Subscriber | null {
  if (!h.email) return null;
  return {
    id,
    email: h.email,
    name: h.name ?? '',
    area: h.area ?? '',
    topics: splitTopics(h.topics),
    ...(h.phone ? { phone: h.phone } : {}),
    status: h.status === 'unsubscribed' ? 'unsubscribed' : 'subscribed',
    consentSource: h.consent_source ?? '',
    consentAt: h.consent_at ?? '',
    createdAt: h.created_at ?? '',
    updatedAt: h.updated_at ?? '',
  };
}

export async function getSubscriber(redis: Redis, prefix: string, id: string): Promise<Subscriber | null> {
  return toSubscriber(id, await redis.hgetall(audienceKeys(prefix).sub(id)));
}

export async function findSubscriber(redis: Redis, prefix: string, email: string): Promise<Subscriber | null> {
  return getSubscriber(redis, prefix, subscriberId(email));
}

export async function isSuppressed(redis: Redis, prefix: string, email: string, suppressionKey?: Buffer): Promise<boolean> {
  const { keyed, legacy } = suppressionHashes(email, suppressionKey);
  return (await redis.smismember(audienceKeys(prefix).suppressed, keyed, legacy)).includes(1);
}

/**
 * The recipients to send to now, in the order of `ids`: null for anyone gone,
 * unsubscribed or suppressed since planning (checked at send time so a
 * campaign already sending stops mailing them).
 */
export async function getRecipients(redis: Redis, prefix: string, ids: string[], suppressionKey?: Buffer): Promise<Array<Recipient | null>> {
  if (ids.length === 0) return [];
  const k = audienceKeys(prefix);
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hgetall(k.sub(id));
  const hashes = (await execAll(pipe)) as Array<Record<string, string>>;
  const subs = ids.map((id, i) => toSubscriber(id, hashes[i] ?? {}));
  const live = subs.filter((s): s is Subscriber => s !== null && s.status === 'subscribed');
  const suppressed = new Set<string>();
  if (live.length > 0) {
    const hashes = live.flatMap((s) => Object.values(suppressionHashes(s.email, suppressionKey)));
    const flags = await redis.smismember(k.suppressed, ...hashes);
    live.forEach((s, i) => {
      if (flags[2 * i] === 1 || flags[2 * i + 1] === 1) suppressed.add(s.id);
    });
  }
  return subs.map((s) =>
    s && s.status === 'subscribed' && !suppressed.has(s.id)
      ? { id: s.id, email: s.email, name: s.name, area: s.area, topics: s.topics, ...(s.phone ? { phone: s.phone } : {}) }
      : null,
  );
}

// One round trip per page: the next ids by score after ARGV[1], and of those the subscribed
// ones (with area and topics when filtering, which JS does for Unicode-aware case folding).
// Reply: last score seen, ids scanned, then the ids (or id, area, topics triples).
const PAGE = defineScript(
  'audience_page',
  `
local raw = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {raw[#raw] or '', tostring(#raw / 2)}
for i = 1, #raw, 2 do
  local key = ARGV[3] .. raw[i]
  if ARGV[4] == '1' then
    local v = redis.call('HMGET', key, 'status', 'area', 'topics')
    if v[1] == 'subscribed' then
      out[#out + 1] = raw[i]; out[#out + 1] = v[2] or ''; out[#out + 1] = v[3] or ''
    end
  elseif redis.call('HGET', key, 'status') == 'subscribed' then
    out[#out + 1] = raw[i]
  end
end
return out`,
);

/**
 * The selector's areas and topics, trimmed and lower-cased (JavaScript's Unicode case mapping), each
 * undefined when it does not filter: what audienceFilter tests against, and what the planning script
 * (PLAN_PAGE in campaign-scripts.ts) is given.
 */
export function audienceFilterSets(selector: AudienceSelector): { areas?: Set<string>; topics?: Set<string> } {
  const lower = (xs: string[] | undefined): Set<string> | undefined =>
    xs && xs.length > 0 ? new Set(xs.map((x) => x.trim().toLowerCase())) : undefined;
  const areas = 'areas' in selector ? lower(selector.areas) : undefined;
  const topics = 'topics' in selector ? lower(selector.topics) : undefined;
  return { ...(areas ? { areas } : {}), ...(topics ? { topics } : {}) };
}

/**
 * The selector's area and topic test (case- and space-insensitive), or undefined
 * when it selects the whole list. Shared by every reader of an audience.
 */
export function audienceFilter(selector: AudienceSelector): ((area: string, topics: string) => boolean) | undefined {
  const { areas, topics } = audienceFilterSets(selector);
  if (!areas && !topics) return undefined;
  return (area, tops) =>
    (!areas || areas.has(area.trim().toLowerCase())) && (!topics || splitTopics(tops).some((t) => topics.has(t.toLowerCase())));
}

/**
 * Pages of subscribed ids in stable (insertion) order. Pages the zset by score
 * (each id's score is its unique sequence number), so ids removed or added
 * while streaming never shift the pages, and memory holds about two pages.
 */
export async function* streamAudience(
  redis: Redis,
  prefix: string,
  selector: AudienceSelector,
  pageSize: number,
): AsyncGenerator<string[]> {
  const k = audienceKeys(prefix);
  const key = selector.list ? k.list(selector.list) : k.subs;
  const matches = audienceFilter(selector);
  const filtered = matches !== undefined;
  const size = Math.max(1, Math.floor(pageSize));
  let after = '-inf';
  let ready: string[] = [];
  for (;;) {
    const reply = (await runScript(redis, PAGE, [key], [after, String(size), k.sub(''), filtered ? '1' : '0'])) as string[];
    const [last = '', scanned = '0'] = reply;
    if (filtered) {
      for (let i = 2; i + 2 < reply.length; i += 3) {
        const [id = '', area = '', tops = ''] = reply.slice(i, i + 3);
        if (matches(area, tops)) ready.push(id);
      }
    } else {
      for (let i = 2; i < reply.length; i++) ready.push(reply[i] as string);
    }
    while (ready.length >= size) {
      yield ready.slice(0, size);
      ready = ready.slice(size);
    }
    if (Number(scanned) < size || last === '') break;
    after = `(${last}`;
  }
  if (ready.length > 0) yield ready;
}

export async function countAudience(redis: Redis, prefix: string, selector: AudienceSelector): Promise<number> {
  let n = 0;
  for await (const page of streamAudience(redis, prefix, selector, 1000)) n += page.length;
  return n;
}

export async function listNames(redis: Redis, prefix: string): Promise<string[]> {
  return (await redis.smembers(audienceKeys(prefix).lists)).sort();
}

// Checks the email is still the one we read, so a concurrent forget cannot leave a half hash behind.
const UNSUBSCRIBE = defineScript(
  'audience_unsubscribe',
  `
if redis.call('HGET', KEYS[1], 'email') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'unsubscribed' then
  redis.call('HSET', KEYS[1], 'status', 'unsubscribed', 'unsubscribed_at', ARGV[2],
    'unsubscribe_source', ARGV[3], 'updated_at', ARGV[2])
end
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[4])
if ARGV[5] ~= ARGV[4] then redis.call('SREM', KEYS[2], ARGV[5]) end
return 1`,
);

/** Unsubscribes at once and suppresses the address for good; idempotent (keeps the first time). */
export async function unsubscribe(
  redis: Redis,
  prefix: string,
  id: string,
  source: string,
  opts: AudienceOpts = {},
): Promise<{ email: string } | null> {
  const k = audienceKeys(prefix);
  const email = await redis.hget(k.sub(id), 'email');
  if (!email) return null;
  const now = (opts.now ?? (() => new Date()))().toISOString();
  const { keyed, legacy } = suppressionHashes(email, opts.suppressionKey);
  const done = await runScript(redis, UNSUBSCRIBE, [k.sub(id), k.suppressed, k.unsubscribed], [email, now, source, keyed, legacy, id]);
  if (done !== 1) return null;
  await opts.onEvent?.('subscriber.unsubscribe', { id, source });
  return { email };
}

// Checks the email is still the one we read, as UNSUBSCRIBE does. Keeps the first time.
const UNSUBSCRIBE_LIST = defineScript(
  'audience_unsubscribe_list',
  `
if redis.call('HGET', KEYS[1], 'email') ~= ARGV[1] then return 0 end
redis.call('HSETNX', KEYS[1], ARGV[4], ARGV[2])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[5])
return 1`,
);

/**
 * Unsubscribes from one list, at once (the one-click link in a message
 * unsubscribes from the list the message came from): the subscriber stays on
 * their other lists, is skipped by any campaign to this list still sending,
 * and a re-import into this list leaves them out. Idempotent.
 */
export async function unsubscribeFromList(
  redis: Redis,
  prefix: string,
  id: string,
  list: string,
  source: string,
  opts: AudienceOpts = {},
): Promise<{ email: string } | null> {
  const k = audienceKeys(prefix);
  const email = await redis.hget(k.sub(id), 'email');
  if (!email) return null;
  const now = (opts.now ?? (() => new Date()))().toISOString();
  const done = await runScript(redis, UNSUBSCRIBE_LIST, [k.sub(id), k.optOuts(list)], [email, now, source, listOptOutField(list), id]);
  if (done !== 1) return null;
  await opts.onEvent?.('subscriber.unsubscribe', { id, source, list });
  return { email };
}

const FORGET = defineScript(
  'audience_forget',
  `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
for _, name in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('ZREM', ARGV[3] .. name, ARGV[1])
  redis.call('SREM', ARGV[5] .. name, ARGV[1])
end
redis.call('SADD', KEYS[4], ARGV[2])
if ARGV[4] ~= ARGV[2] then redis.call('SREM', KEYS[4], ARGV[4]) end
return existed`,
);

/**
 * GDPR erasure: deletes the subscriber and every list membership, keeping only
 * the email's keyed hash on the suppression list so no import brings them back.
 * Suppresses even an unknown address (the person asked not to be contacted);
 * returns whether there was anything to erase.
 */
export async function forgetSubscriber(
  redis: Redis,
  prefix: string,
  email: string,
  opts: AudienceOpts = {},
): Promise<boolean> {
  const norm = normaliseEmail(email);
  if (norm === '') throw new UserError('no email given', 'CRIER_ERR_INPUT', { field: 'email' });
  const k = audienceKeys(prefix);
  const id = subscriberId(norm);
  const { keyed, legacy } = suppressionHashes(norm, opts.suppressionKey);
  const existed = await runScript(redis, FORGET, [k.sub(id), k.subs, k.lists, k.suppressed, k.unsubscribed], [id, keyed, k.listPrefix, legacy, k.optOutPrefix]);
  await opts.onEvent?.('subscriber.forget', { id, found: existed === 1 ? 'yes' : 'no' });
  return existed === 1;
}

export const EXPORT_HEADER = ['email', 'name', 'area', 'topics', 'status', 'consent_source', 'consent_at'];

/**
 * Writes the list as CSV (header first), unsubscribed members included so the
 * team sees who opted out. `write` may return a promise to apply backpressure.
 * Returns the number of subscribers written.
 */
export async function exportList(
  redis: Redis,
  prefix: string,
  list: string,
  write: (line: string) => void | Promise<void>,
): Promise<number> {
  const k = audienceKeys(prefix);
  if ((await redis.sismember(k.lists, list)) !== 1) {
    throw new UserError(`no list named "${list}"`, 'CRIER_ERR_NOT_FOUND', { field: 'list' });
  }
  await write(safeCsvLine(EXPORT_HEADER));
  let count = 0;
  let after = '-inf';
  const page = 1000;
  for (;;) {
    const raw = await redis.zrangebyscore(k.list(list), after, '+inf', 'WITHSCORES', 'LIMIT', 0, page);
    if (raw.length === 0) break;
    after = `(${raw[raw.length - 1] as string}`;
    const pipe = redis.pipeline();
    for (let i = 0; i < raw.length; i += 2) pipe.hmget(k.sub(raw[i] as string), ...EXPORT_HEADER, listOptOutField(list));
    const rows = (await execAll(pipe)) as Array<Array<string | null>>;
    const statusAt = EXPORT_HEADER.indexOf('status');
    for (const full of rows) {
      // Someone who unsubscribed from this list (only) shows as unsubscribed in its export.
      const row = full.slice(0, EXPORT_HEADER.length);
      if (full[EXPORT_HEADER.length]) row[statusAt] = 'unsubscribed';
      if (!row[0]) continue;
      await write(safeCsvLine(row.map((v) => v ?? '')));
      count++;
    }
    if (raw.length < page * 2) break;
  }
  return count;
}

/**
 * One page of indexExclusions: the subscribers after score ARGV[1] (up to ARGV[2]) whose status
 * is unsubscribed go into the unsubscribed set, and those with a list's opt-out field into that
 * list's opt-out set. KEYS: every subscriber (zset), unsubscribed set, list names. ARGV: after,
 * page size, subscriber key prefix, opt-out set prefix, the opt-out field's prefix (listOptOutField('')).
 * → {last score read, subscribers read}, or '' when done.
 */
const INDEX_EXCLUSIONS_PAGE = defineScript(
  'audience_index_exclusions_page',
  `
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
if #rows == 0 then return '' end
local lists = redis.call('SMEMBERS', KEYS[3])
for i = 1, #rows, 2 do
  local id = rows[i]
  local key = ARGV[3] .. id
  if redis.call('HGET', key, 'status') == 'unsubscribed' then redis.call('SADD', KEYS[2], id) end
  for _, name in ipairs(lists) do
    if redis.call('HEXISTS', key, ARGV[5] .. name) == 1 then redis.call('SADD', ARGV[4] .. name, id) end
  end
end
return {rows[#rows], #rows / 2}`,
);

/**
 * Builds the unsubscribed and opt-out sets over an audience written before Crier kept them (their
 * unsubscribe scripts keep them from then on), then marks them complete, so planning can read them
 * instead of every member's hash. A page of 2,000 subscribers per call; nothing to do once marked.
 * → subscribers read (0 when already indexed).
 */
export async function indexExclusions(redis: Redis, prefix: string, onProgress?: (read: number) => void): Promise<number> {
  const k = audienceKeys(prefix);
  if ((await redis.exists(k.exclusionsIndexed)) === 1) return 0;
  const page = 2000;
  let after = '-inf';
  let read = 0;
  for (;;) {
    const reply = await runScript<'' | [string, number]>(redis, INDEX_EXCLUSIONS_PAGE, [k.subs, k.unsubscribed, k.lists], [after, page, k.sub(''), k.optOutPrefix, listOptOutField('')]);
    if (reply === '' || !Array.isArray(reply)) break;
    after = String(reply[0]);
    read += Number(reply[1]);
    if (read % 100_000 < page) onProgress?.(read);
  }
  await redis.set(k.exclusionsIndexed, '1');
  return read;
}
