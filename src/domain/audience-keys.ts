import { createHash, createHmac } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { UserError } from '../errors.js';

/**
 * Where the audience lives in Redis, and how an email becomes an id. The id is
 * derived from the email so a re-import finds the same subscriber; the full
 * hash is what the suppression list keeps after erasure.
 */

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Full sha256 hex of the normalised email: the subscriber id's source, and the suppression list's entry before it was keyed. */
export function emailHash(email: string): string {
  return createHash('sha256').update(normaliseEmail(email)).digest('hex');
}

/**
 * The suppression list's entry for an address: HMAC-SHA256 of the normalised
 * email under the 'suppression' key derived from the secret (src/keys.ts), so
 * a copy of Redis does not let anyone test addresses against it. Without a key
 * (library use, older tests) the plain sha256.
 */
export function suppressionHash(email: string, key?: Buffer): string {
  return key ? createHmac('sha256', key).update(normaliseEmail(email)).digest('hex') : emailHash(email);
}

/**
 * What to look for on the suppression list: the keyed entry, and the plain
 * sha256 that versions before the keyed hash wrote (still honoured, and
 * replaced by the keyed one whenever Crier meets the address again).
 */
export function suppressionHashes(email: string, key?: Buffer): { keyed: string; legacy: string } {
  return { keyed: suppressionHash(email, key), legacy: emailHash(email) };
}

/** The subscriber-hash field that records an unsubscribe from one list (its value: when). */
export function listOptOutField(list: string): string {
  return `unsub:${list}`;
}

export function subscriberId(email: string): string {
  return emailHash(email).slice(0, 20);
}

export interface AudienceKeys {
  sub(id: string): string;
  /** zset of every subscriber id, scored by insertion sequence. */
  subs: string;
  list(name: string): string;
  /** Prefix of every list zset (forget walks them). */
  listPrefix: string;
  lists: string;
  suppressed: string;
  seq: string;
  /** set of the ids whose status is 'unsubscribed' (kept by the unsubscribe and forget scripts). */
  unsubscribed: string;
  /** set of the ids that unsubscribed from one list (their hash has the listOptOutField). */
  optOuts(list: string): string;
  /** Prefix of every opt-out set (forget walks them). */
  optOutPrefix: string;
  /**
   * Present once `unsubscribed` and every `optOuts` set name everyone they should: set by the first
   * import into an empty audience, or by indexExclusions() over an audience written by a version
   * that did not keep the sets. Planning reads the sets instead of each member's hash only then.
   */
  exclusionsIndexed: string;
}

export function audienceKeys(prefix: string): AudienceKeys {
  return {
    sub: (id) => `${prefix}:sub:${id}`,
    subs: `${prefix}:subs`,
    list: (name) => `${prefix}:list:${name}`,
    listPrefix: `${prefix}:list:`,
    lists: `${prefix}:lists`,
    suppressed: `${prefix}:suppressed`,
    seq: `${prefix}:seq`,
    unsubscribed: `${prefix}:unsubscribed`,
    optOuts: (list) => `${prefix}:optout:${list}`,
    optOutPrefix: `${prefix}:optout:`,
    exclusionsIndexed: `${prefix}:exclusions-indexed`,
  };
}

const LIST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** List names become key parts: keep them plain. */
export function checkListName(name: string): string {
  if (!LIST_NAME.test(name)) {
    throw new UserError(
      `bad list name "${name}": use letters, digits, '-', '_' or '.', up to 64 characters`,
      'CRIER_ERR_INPUT',
      { field: 'list' },
    );
  }
  return name;
}

// Local part and domain labels per RFC 5321 limits; no quoted local parts or IP literals.
const EMAIL =
  /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why a normalised email is unusable, or null when it is fine. */
export function emailProblem(email: string): string | null {
  if (email === '') return 'missing email';
  if (email.length > 254) return `email longer than 254 characters`;
  const at = email.lastIndexOf('@');
  if (at > 64) return 'bad email (part before @ longer than 64 characters)';
  if (!EMAIL.test(email)) return 'bad email';
  return null;
}

/** Audit hook: the detail never holds an email, so the audit log needs no erasure. */
export type AudienceEventHook = (action: string, detail: Record<string, string | number>) => Promise<void>;

/** Runs a pipeline and returns its replies, throwing the first command error. */
export async function execAll(pipe: ChainableCommander): Promise<unknown[]> {
  const res = await pipe.exec();
  if (!res) throw new Error('redis pipeline was aborted');
  return res.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
