import type { Redis } from 'ioredis';

/**
 * The audit log: every action that changes a campaign or the audience, with
 * who, when and what. A Redis stream, so entries are ordered, timestamped by
 * the server (one clock for every machine) and trimmed only far in the past.
 */

export type AuditAction =
  | 'campaign.create'
  | 'campaign.approve'
  | 'campaign.cancel'
  | 'campaign.reschedule'
  | 'campaign.send'
  | 'campaign.hold'
  | 'subscriber.import'
  | 'subscriber.unsubscribe'
  | 'subscriber.forget';

export type AuditDetail = Record<string, string | number | boolean>;

export interface AuditEvent {
  /** The acting user (config.user), or a system actor such as "worker" / "public". */
  actor: string;
  /** One of AuditAction (others are stored as given). */
  action: string;
  /** What it acted on: a campaign id, a list name, a subscriber hash. Never personal data. */
  subject: string;
  detail?: AuditDetail;
}

export interface AuditEntry {
  /** The stream id (`<ms>-<seq>`). */
  id: string;
  at: Date;
  actor: string;
  action: string;
  subject: string;
  detail: AuditDetail;
}

export interface ReadAuditOptions {
  /** Entries at or after this instant, oldest first. */
  since?: Date;
  /** At most this many (default 1000). Without `since`, the most recent ones. */
  limit?: number;
}

/** Approximate trim keeps XADD O(1); a million entries is years of a small team's work. */
const MAX_ENTRIES = 1_000_000;
const DEFAULT_LIMIT = 1000;

export function auditKey(prefix: string): string {
  return `${prefix}:audit`;
}

export async function appendAudit(redis: Redis, prefix: string, e: AuditEvent): Promise<string> {
  const id = await redis.xadd(
    auditKey(prefix),
    'MAXLEN',
    '~',
    String(MAX_ENTRIES),
    '*',
    'actor',
    e.actor,
    'action',
    e.action,
    'subject',
    e.subject,
    'detail',
    JSON.stringify(e.detail ?? {}),
  );
  if (!id) throw new Error('XADD returned no id');
  return id;
}

function parseDetail(raw: string | undefined): AuditDetail {
  if (!raw) return {};
  try {
    const value: unknown = JSON.parse(raw);
    if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
    const out: AuditDetail = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    }
    return out;
  } catch {
    return {};
  }
}

function toEntry([id, fields]: [string, string[]]): AuditEntry {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  return {
    id,
    at: new Date(Number(id.split('-')[0])),
    actor: map.get('actor') ?? '',
    action: map.get('action') ?? '',
    subject: map.get('subject') ?? '',
    detail: parseDetail(map.get('detail')),
  };
}

export async function readAudit(redis: Redis, prefix: string, opts: ReadAuditOptions = {}): Promise<AuditEntry[]> {
  const limit = opts.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const key = auditKey(prefix);
  if (opts.since) {
    const ms = Math.max(0, opts.since.getTime());
    const rows = await redis.xrange(key, `${ms}-0`, '+', 'COUNT', limit);
    return rows.map(toEntry);
  }
  const rows = await redis.xrevrange(key, '+', '-', 'COUNT', limit);
  return rows.reverse().map(toEntry);
}
