import { DelayedError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ChannelError, LoginFailedError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery, type Recipient } from '../channels/adapter.js';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import { channelDefinition } from '../channels/registry.js';
import { audienceKeys, getRecipients, listOptOutField, suppressionHashes } from '../src/domain/audience.js';
import { deriveKey } from '../src/keys.js';
import { MARK, MAY_SEND } from '../src/domain/campaign-scripts.js';
import { campaignKeys, campaignMedia, findCampaign, holdSending, type Campaign } from '../src/domain/campaigns.js';
import { appendAudit } from '../src/domain/audit.js';
import { redisProgress } from '../src/domain/progress.js';
import { runScript } from '../src/redis/scripts.js';
import type { DeliverJobData } from '../src/scheduler.js';
import { holdReason } from '../src/domain/purdah.js';

/**
 * A delivery job: one batch of one channel of one campaign. Each recipient is
 * marked done only after the adapter returned (the transport accepted it), and
 * skipped if already done, so a retried or re-run batch repeats at most the
 * message that was in flight.
 */

export interface DeliverDeps {
  config: Config;
  redis: Redis;
  adapter: ChannelAdapter;
  now(): Date;
  /** The channel's logger: `channel` is already bound. */
  log: Logger;
  /** Waits for the channel's messages-per-second budget; true when it had to wait. */
  throttle(): Promise<boolean>;
  /** Pauses the channel's queue until the network's reset time. */
  pauseUntil(resetAt: Date): Promise<void>;
  /** Pauses the channel's queue until its login works again (shown with the reason). */
  pauseChannel(reason: string): Promise<void>;
  /** Special deliveries that are not a message (press publishing). */
  special?: Record<string, (c: Campaign, deps: DeliverDeps) => Promise<void>>;
}

export type Outcome = 'sent' | 'failed' | 'skipped';

/** Thrown to hand a rate-limited job back to BullMQ (not a failure). */
export class PausedForRateLimit extends Error {}

/** The next recipient whose MAY_SEND verdict a MARK should fetch in the same round trip. */
interface NextCheck {
  id: string;
  /** Keyed suppression hash, and the unkeyed one older versions wrote. */
  emailHash: string;
  legacyHash: string;
  /** The subscriber-hash field of an unsubscribe from the channel's list ('' = none). */
  optOut: string;
}

/**
 * Records one outcome (and audits the campaign's end if it was the last one);
 * returns the MAY_SEND verdict for `next`, or '' without one.
 */
export async function markOutcome(redis: Redis, prefix: string, c: Campaign, channel: string, id: string, outcome: Outcome, reason: string, now: Date, networkId = '', next?: NextCheck): Promise<string> {
  const k = campaignKeys(prefix, c.id);
  const keys = [k.hash, k.counts, k.done(channel), k.failures, k.sent];
  const args = [channel, id, outcome, reason, now.toISOString(), networkId];
  if (next) {
    const ak = audienceKeys(prefix);
    keys.push(ak.sub(next.id), ak.suppressed);
    args.push(next.emailHash, next.optOut, next.legacyHash, next.id);
  }
  const [finished, verdict] = await runScript<[string, string]>(redis, MARK, keys, args);
  if (finished) await appendAudit(redis, prefix, { actor: 'worker', action: 'campaign.send', subject: c.id, detail: { status: finished } });
  return verdict;
}

/**
 * A batch job is worked in passes. A transient failure costs only that recipient
 * one of its tries (channels.<ch>.attempts); the pass goes on with the others
 * (or stops, when the network itself is unreachable), and the job comes back
 * after the backoff for what is left, without spending a try of the job's own.
 */
export async function processDeliverJob(job: Job<DeliverJobData>, deps: DeliverDeps, token?: string, signal?: AbortSignal): Promise<void> {
  const { config, redis } = deps;
  const prefix = config.redis_prefix;
  const { campaignId, channel, batch } = job.data;
  const k = campaignKeys(prefix, campaignId);
  // The campaign and the batch's ids in one round trip (each wait is a turn of the event loop, and a
  // message due at 09:00:00 waits for every one of them: bench/precision.ts).
  const [c, batchIds] = await Promise.all([findCampaign(redis, prefix, campaignId), redis.hget(k.batches, batch)]);
  if (!c || c.status !== 'sending') return; // cancelled (or gone): send nothing more
  // deps.log already names the channel (workers/index.ts): binding it again would print the key twice.
  const log = deps.log.child({ campaignId, batch });
  const ids = (batchIds ?? '').split(',').filter(Boolean);
  const content = c.channels[channel] ?? {};
  // Who is done already, the batch's names and addresses, and the campaign's images, at once. Just before
  // each send the subscription and the campaign's status are read again (MAY_SEND); after the first
  // recipient that read rides on the previous recipient's MARK, so each recipient costs one Redis round
  // trip besides its send. (A batch picked up again reads the done ones' details too: one batch at most.)
  const audience = ids.filter((id) => !deps.special?.[id] && id !== '-');
  const suppressionKey = deriveKey(config.secret, 'suppression');
  const [done, recipients, media] = await Promise.all([
    ids.length > 0 ? redis.smismember(k.done(channel), ...ids) : Promise.resolve([]),
    getRecipients(redis, prefix, audience, suppressionKey),
    campaignMedia(redis, prefix, campaignId, content),
  ]);
  const todo = ids.filter((_, i) => done[i] !== 1);
  if (todo.length === 0) return;
  const settings = deps.config.channelSettings(channel);
  let deferred = 0; // the most tries any recipient deferred in this pass has used
  const details = new Map<string, Recipient | null>();
  recipients.forEach((r, i) => details.set(audience[i]!, r));
  const ak = audienceKeys(prefix);
  // Unsubscribing from this channel's list (the link in its messages) stops it at once too.
  const list = channelDefinition(channel)?.audience?.(content).list;
  const optOut = list ? listOptOutField(list) : '';
  // Each recipient's suppression hashes (an HMAC and a SHA-256) are computed once.
  const hashed = new Map<string, { keyed: string; legacy: string }>();
  const hashes = (email: string) => {
    let h = hashed.get(email);
    if (!h) hashed.set(email, (h = suppressionHashes(email, suppressionKey)));
    return h;
  };
  const checkFor = (i: number): NextCheck | undefined => {
    const id = todo[i];
    const r = id === undefined ? null : details.get(id);
    if (id === undefined || !r) return undefined;
    const { keyed, legacy } = hashes(r.email);
    return { id, emailHash: keyed, legacyHash: legacy, optOut };
  };
  let prefetched = ''; // todo[i]'s verdict, fetched by the previous MARK ('' = not fetched)
  const mark = async (i: number, outcome: Outcome, reason: string, networkId = '') => {
    const next = checkFor(i + 1);
    prefetched = await markOutcome(redis, prefix, c, channel, todo[i]!, outcome, reason, deps.now(), networkId, next);
  };
  const later = async (): Promise<never> => {
    const delay = settings.backoff_ms * 2 ** Math.min(deferred - 1, 20);
    log.info({ deferred, delayMs: delay }, 'transient failures: the rest of the batch is tried again later');
    await job.moveToDelayed(Date.now() + delay, token);
    throw new DelayedError();
  };
  for (const [i, id] of todo.entries()) {
    const special = deps.special?.[id];
    let ahead = prefetched;
    prefetched = '';
    let waited = false;
    if (!special) {
      // Everything is checked after the wait for the channel's rate, right before the transport call:
      // a verdict read before the wait is stale, and the pre-election period may have begun meanwhile.
      waited = await deps.throttle();
      if (waited) ahead = '';
      const hold = holdReason(deps.config, c, deps.now());
      if (hold) {
        if (await holdSending(redis, prefix, campaignId, hold, deps.now())) {
          log.warn({ reason: hold }, 'campaign held in the middle of its send');
          await appendAudit(redis, prefix, { actor: 'worker', action: 'campaign.hold', subject: campaignId, detail: { reason: hold } });
        }
        return;
      }
    }
    let recipient: Recipient | undefined;
    if (!special && id !== '-') {
      const r = details.get(id) ?? null;
      let verdict = 'skip';
      if (r) verdict = ahead || (await runScript<string>(redis, MAY_SEND, [k.hash, ak.sub(id), ak.suppressed, k.done(channel)], [hashes(r.email).keyed, optOut, hashes(r.email).legacy, id]));
      if (verdict === 'stop') return;
      if (verdict === 'done') continue;
      if (verdict === 'skip' || !r) {
        await mark(i, 'skipped', 'unsubscribed');
        continue;
      }
      recipient = r;
    } else if ((i > 0 || waited) && (await redis.hget(k.hash, 'status')) !== 'sending') return;
    // This worker lost the job (its lock lapsed while Redis was away): another run has it now.
    if (signal?.aborted) throw new Error('delivery job taken over by another run: stopping this one');
    const delivery: Delivery = { campaignId, campaignTitle: c.title, kind: c.kind, channel, content, recipient, key: `${campaignId}:${channel}:${id}`, media };
    try {
      let networkId = '';
      if (special) await special(c, deps);
      else {
        // Post ids (X, Mastodon) and message ids are what the collectors look up later.
        const progress = redisProgress(redis, prefix, delivery.key);
        networkId = (await deps.adapter.send(delivery, { log, now: deps.now, progress })).id ?? '';
      }
      await mark(i, 'sent', '', networkId);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (err instanceof RateLimitedError) {
        log.warn({ resetAt: err.resetAt.toISOString() }, 'rate limited: pausing channel');
        await deps.pauseUntil(err.resetAt);
        throw new PausedForRateLimit(e.message);
      }
      if (err instanceof LoginFailedError && deps.adapter.pausesOnLoginFailure) {
        // Every recipient would fail the same way (and a relay locks an account after a few): wait for a fix.
        log.error({ reason: e.message }, 'login refused: pausing channel');
        await deps.pauseChannel(e.message);
        await job.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
      const permanent = err instanceof ChannelError && err.kind !== 'transient';
      const tries = permanent ? 0 : await redis.hincrby(k.tries, `${channel}:${id}`, 1);
      if (permanent || tries >= settings.attempts) {
        const reason = permanent ? e.message : `gave up after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${e.message}`;
        log.warn({ recipient: id, reason }, 'delivery failed');
        await mark(i, 'failed', reason);
        continue;
      }
      log.info({ recipient: id, tries, err: e.message }, 'transient failure: will retry');
      deferred = Math.max(deferred, tries);
      if (err instanceof TransientError && err.unreachable) return later();
    }
  }
  if (deferred > 0) await later();
}
