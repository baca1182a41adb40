import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UserError } from '../errors.js';
import { runScript } from '../redis/scripts.js';
import { pausedChannels } from './channel-pause.js';
import type { CampaignDraft, CampaignKind } from './campaign-file.js';
import { APPROVE, BEGIN, CANCEL, FAIL_PLAN, FAIL_REST, HOLD_SENDING, RELEASE, RESCHEDULE, RETRY_FAILED } from './campaign-scripts.js';

export const STATUSES = ['draft', 'awaiting_approval', 'scheduled', 'held', 'sending', 'sent', 'partially_failed', 'failed', 'cancelled'] as const;
export type CampaignStatus = (typeof STATUSES)[number];

export interface Campaign {
  id: string;
  title: string;
  kind: CampaignKind;
  status: CampaignStatus;
  sendAt: Date;
  timezone: string;
  essential: boolean;
  author: string;
  approvedBy?: string;
  /** Who released it during a pre-election window, and the windows released for (see workers/plan.ts). */
  releasedBy?: string;
  releasedFor?: string[];
  reason?: string;
  version: number;
  createdAt: Date;
  channels: Record<string, Record<string, unknown>>;
  /** The recurring campaign (series) this is an occurrence of. */
  series?: string;
  /** What the campaign was made without (a newsletter run whose feed was down). */
  note?: string;
}

export interface ChannelCounts {
  sent: number;
  failed: number;
  pending: number;
  skipped: number;
  error?: string;
  /** Why the channel is paused for every campaign (an SMTP login refused), if it is. */
  paused?: string;
}

/** Redis keys of one campaign. */
export function campaignKeys(prefix: string, id: string) {
  const base = `${prefix}:campaign:${id}`;
  return {
    hash: base,
    counts: `${base}:counts`,
    batches: `${base}:batches`,
    done: (channel: string) => `${base}:done:${channel}`,
    failures: `${base}:failures`,
    /** `<channel>:<batch>` → the id of the batch's current job, when it is not the planned one (`<campaign>:<channel>:<batch>`). */
    jobs: `${base}:jobs`,
    /** `<channel>:<recipient>` → tries that ended in a transient failure (each delivery has its own budget). */
    tries: `${base}:tries`,
    /** sha256 → image bytes, stored at create time (channels/images.ts). */
    media: `${base}:media`,
    /** `<channel>:<recipient>` → the network's id for what was sent (post id, message id). */
    sent: `${base}:sent`,
    index: `${prefix}:campaigns`,
  };
}

export function newCampaignId(): string {
  return `c${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').toLowerCase()}`;
}

export interface NewCampaignOptions {
  /** A chosen id (a series occurrence's); default a fresh random one. */
  id?: string;
  series?: string;
  note?: string;
}

export async function saveNewCampaign(redis: Redis, prefix: string, draft: CampaignDraft, status: CampaignStatus, author: string, now: Date, opts: NewCampaignOptions = {}): Promise<Campaign> {
  const id = opts.id ?? newCampaignId();
  const k = campaignKeys(prefix, id);
  const extra = { ...(opts.series ? { series: opts.series } : {}), ...(opts.note ? { note: opts.note } : {}) };
  const c: Campaign = { id, title: draft.title, kind: draft.kind, status, sendAt: draft.sendAt, timezone: draft.timezone, essential: draft.essential, author, version: 1, createdAt: now, channels: draft.channels, ...extra };
  const tx = redis.multi();
  if (draft.media && draft.media.size > 0) tx.hset(k.media, Object.fromEntries(draft.media));
  await tx
    .hset(k.hash, {
      id,
      title: c.title,
      kind: c.kind,
      status,
      send_at: c.sendAt.toISOString(),
      timezone: c.timezone,
      essential: c.essential ? '1' : '0',
      author,
      version: '1',
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      channels: JSON.stringify(c.channels),
      channels_list: Object.keys(c.channels).join(','),
      ...extra,
    })
    .zadd(k.index, now.getTime(), id)
    .exec();
  return c;
}

function fromHash(h: Record<string, string>): Campaign {
  return {
    id: h.id!,
    title: h.title!,
    kind: h.kind as CampaignKind,
    status: h.status as CampaignStatus,
    sendAt: new Date(h.send_at!),
    timezone: h.timezone!,
    essential: h.essential === '1',
    author: h.author!,
    approvedBy: h.approved_by || undefined,
    releasedBy: h.released_by || undefined,
    releasedFor: h.released_for ? h.released_for.split(',') : undefined,
    reason: h.reason || undefined,
    version: Number(h.version),
    createdAt: new Date(h.created_at!),
    channels: JSON.parse(h.channels ?? '{}') as Record<string, Record<string, unknown>>,
    ...(h.series ? { series: h.series } : {}),
    ...(h.note ? { note: h.note } : {}),
  };
}

export async function findCampaign(redis: Redis, prefix: string, id: string): Promise<Campaign | null> {
  const h = await redis.hgetall(campaignKeys(prefix, id).hash);
  return h.id ? fromHash(h) : null;
}

export async function getCampaign(redis: Redis, prefix: string, id: string): Promise<Campaign> {
  const c = /^[a-z0-9]{1,40}$/.test(id) ? await findCampaign(redis, prefix, id) : null;
  if (!c) throw new UserError(`no campaign with id "${id}" (see \`crier campaign list\`)`, 'CRIER_ERR_NOT_FOUND');
  return c;
}

export async function listCampaigns(redis: Redis, prefix: string, limit = 500): Promise<Campaign[]> {
  const ids = await redis.zrevrange(campaignKeys(prefix, '').index, 0, limit - 1);
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hgetall(campaignKeys(prefix, id).hash);
  const rows = (await pipe.exec()) ?? [];
  return rows.map(([, h]) => h as Record<string, string>).filter((h) => h.id).map(fromHash);
}

/**
 * The most recent `limit` campaigns in one of `statuses`: each campaign's status is read first (one small
 * pipelined read), and only the matching ones in full. Reconcile runs this every minute in every worker
 * process; reading thousands of finished campaigns in full stalled the sends going on in the same process.
 */
export async function listCampaignsIn(redis: Redis, prefix: string, statuses: CampaignStatus[], limit = 10_000): Promise<Campaign[]> {
  const ids = await redis.zrevrange(campaignKeys(prefix, '').index, 0, limit - 1);
  if (ids.length === 0) return [];
  const probe = redis.pipeline();
  for (const id of ids) probe.hget(campaignKeys(prefix, id).hash, 'status');
  const status = ((await probe.exec()) ?? []).map(([, s]) => s as string | null);
  const wanted = ids.filter((_, i) => statuses.includes(status[i] as CampaignStatus));
  if (wanted.length === 0) return [];
  const pipe = redis.pipeline();
  for (const id of wanted) pipe.hgetall(campaignKeys(prefix, id).hash);
  const rows = (await pipe.exec()) ?? [];
  return rows.map(([, h]) => h as Record<string, string>).filter((h) => h.id && statuses.includes(h.status as CampaignStatus)).map(fromHash);
}

export async function channelCounts(redis: Redis, prefix: string, c: Campaign): Promise<Record<string, ChannelCounts>> {
  const [counts, paused] = await Promise.all([redis.hgetall(campaignKeys(prefix, c.id).counts), pausedChannels(redis, prefix)]);
  const out: Record<string, ChannelCounts> = {};
  for (const ch of Object.keys(c.channels)) {
    const n = (f: string) => Number(counts[`${ch}:${f}`] ?? 0);
    const total = n('total');
    const planned = counts[`${ch}:planned`] === '1';
    const sent = n('sent');
    const failed = n('failed');
    const skipped = n('skipped');
    // Before planning finishes the total is still growing; a not-yet-started channel counts as one pending delivery at least.
    const pending = Math.max(total - sent - failed - skipped, planned || c.status === 'cancelled' ? 0 : 1);
    out[ch] = { sent, failed, pending, skipped, ...(counts[`${ch}:error`] ? { error: counts[`${ch}:error`] } : {}), ...(paused[ch] && pending > 0 ? { paused: paused[ch] } : {}) };
  }
  return out;
}

/** The campaign job's guard: only the current version of a scheduled campaign starts. */
export async function beginSending(redis: Redis, prefix: string, id: string, version: number, heldReason: string, now: Date): Promise<string> {
  return runScript<string>(redis, BEGIN, [campaignKeys(prefix, id).hash], [version, heldReason, now.toISOString()]);
}

/**
 * Stops a sending campaign where it is (held, with the reason); true if it was sending. Once released or
 * rescheduled it starts again, and reconcile re-adds the batches it left.
 */
export async function holdSending(redis: Redis, prefix: string, id: string, reason: string, now: Date): Promise<boolean> {
  return (await runScript<number>(redis, HOLD_SENDING, [campaignKeys(prefix, id).hash], [reason, now.toISOString()])) === 1;
}

export async function cancelCampaign(redis: Redis, prefix: string, id: string, now: Date): Promise<void> {
  const r = await runScript<string>(redis, CANCEL, [campaignKeys(prefix, id).hash], [now.toISOString()]);
  if (r === 'missing') throw new UserError(`no campaign with id "${id}"`, 'CRIER_ERR_NOT_FOUND');
  if (r !== 'ok') throw new UserError(`campaign ${id} is ${r}; it can no longer be cancelled`, 'CRIER_ERR_STATE');
}

/** Failed deliveries back to pending (RETRY_FAILED); the caller re-adds the channels' delivery jobs. */
export async function retryFailed(redis: Redis, prefix: string, c: Campaign, now: Date): Promise<{ deliveries: number; retry: number; channels: string[]; replan: boolean }> {
  const k = campaignKeys(prefix, c.id);
  const names = Object.keys(c.channels);
  const [status, deliveries, retry, channels, replan] = await runScript<[string, number, number, string, number]>(
    redis,
    RETRY_FAILED,
    [k.hash, k.counts, k.failures, k.tries, ...names.map((ch) => k.done(ch))],
    [now.toISOString(), ...names],
  );
  if (status === 'missing') throw new UserError(`no campaign with id "${c.id}"`, 'CRIER_ERR_NOT_FOUND');
  if (status === 'refused:nothing') throw new UserError(`campaign ${c.id} has no failed deliveries to retry`, 'CRIER_ERR_STATE');
  if (status.startsWith('refused:')) throw new UserError(`campaign ${c.id} is ${status.slice(8)}; only a failed or partially failed campaign can be retried`, 'CRIER_ERR_STATE');
  return { deliveries, retry, channels: channels.split(',').filter(Boolean), replan: replan === 1 };
}

export async function rescheduleCampaign(redis: Redis, prefix: string, id: string, sendAt: Date, now: Date): Promise<{ status: CampaignStatus; version: number }> {
  const [status, version] = await runScript<[string, number]>(redis, RESCHEDULE, [campaignKeys(prefix, id).hash], [sendAt.toISOString(), now.toISOString()]);
  if (status === 'missing') throw new UserError(`no campaign with id "${id}"`, 'CRIER_ERR_NOT_FOUND');
  if (status.startsWith('refused:')) throw new UserError(`campaign ${id} is ${status.slice(8)}; only a scheduled, held or unapproved campaign can be rescheduled`, 'CRIER_ERR_STATE');
  return { status: status as CampaignStatus, version };
}

export async function approveCampaign(redis: Redis, prefix: string, id: string, approver: string, now: Date): Promise<{ status: CampaignStatus; version: number }> {
  const [status, version] = await runScript<[string, number]>(redis, APPROVE, [campaignKeys(prefix, id).hash], [approver, now.toISOString()]);
  if (status === 'missing') throw new UserError(`no campaign with id "${id}"`, 'CRIER_ERR_NOT_FOUND');
  if (status.startsWith('refused:')) {
    const s = status.slice(8);
    const why =
      s === 'held'
        ? 'it is held by the pre-election period; an essential campaign is released with `crier campaign release ID`, any other is rescheduled after the window'
        : `it is ${s}`;
    throw new UserError(`campaign ${id} cannot be approved: ${why}`, 'CRIER_ERR_STATE');
  }
  return { status: status as CampaignStatus, version };
}

/** An approver releases an essential campaign held by the pre-election period, for the windows named. */
export async function releaseCampaign(redis: Redis, prefix: string, id: string, approver: string, windows: string[], now: Date): Promise<{ status: CampaignStatus; version: number }> {
  const [status, version] = await runScript<[string, number]>(redis, RELEASE, [campaignKeys(prefix, id).hash], [approver, windows.join(','), now.toISOString()]);
  if (status === 'missing') throw new UserError(`no campaign with id "${id}"`, 'CRIER_ERR_NOT_FOUND');
  if (status === 'refused:not-essential') {
    throw new UserError(`campaign ${id} is not marked essential: true; only an essential campaign can be released during the pre-election period (reschedule it after the window)`, 'CRIER_ERR_STATE');
  }
  if (status.startsWith('refused:')) throw new UserError(`campaign ${id} is ${status.slice(8)}; only a campaign held by the pre-election period can be released`, 'CRIER_ERR_STATE');
  return { status: status as CampaignStatus, version };
}

/** The stored bytes of the images a channel's content names (by sha256). */
export async function campaignMedia(redis: Redis, prefix: string, id: string, content: Record<string, unknown>): Promise<Map<string, Buffer> | undefined> {
  const images = Array.isArray(content.images) ? content.images : [];
  const shas = images.map((i: unknown) => (i && typeof i === 'object' ? (i as { sha256?: unknown }).sha256 : undefined)).filter((x): x is string => typeof x === 'string');
  if (shas.length === 0) return undefined;
  const found = await redis.hmgetBuffer(campaignKeys(prefix, id).media, ...shas);
  const out = new Map<string, Buffer>();
  shas.forEach((sha, i) => {
    const b = found[i];
    if (b) out.set(sha, b);
  });
  return out;
}

/** The network ids of what a campaign sent, by `<channel>:<recipient>` (recipient '-' for posts). */
export async function sentIds(redis: Redis, prefix: string, id: string): Promise<Record<string, string>> {
  return redis.hgetall(campaignKeys(prefix, id).sent);
}

/** Marks every recipient of a batch that has no outcome yet as failed (FAIL_REST); returns how many. */
export async function failUndelivered(redis: Redis, prefix: string, id: string, channel: string, batch: string, reason: string, now: Date): Promise<number> {
  const k = campaignKeys(prefix, id);
  const [, n] = await runScript<[string, number]>(redis, FAIL_REST, [k.hash, k.counts, k.done(channel), k.failures, k.batches], [channel, batch, reason, now.toISOString()]);
  return n;
}

/** Closes every channel whose planning did not finish with one failed delivery carrying the reason (FAIL_PLAN). */
export async function failPlanning(redis: Redis, prefix: string, c: Campaign, reason: string, now: Date): Promise<string> {
  const k = campaignKeys(prefix, c.id);
  const names = Object.keys(c.channels);
  return runScript<string>(redis, FAIL_PLAN, [k.hash, k.counts, k.failures, ...names.map((ch) => k.done(ch))], [reason, now.toISOString(), ...names]);
}
