import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { UserError } from '../errors.js';

/**
 * Where the audience lives in Redis, and how an email becomes an id. The id is
 * derived from the email so a re-import finds the same subscriber; the full
 * hash is what the suppression list keeps after erasure.
 */

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Full sha256 hex of the normalised email: all that survives `forget`. */
export function emailHash(email: string): string {
  return createHash('sha256').update(normaliseEmail(email)).digest('hex');
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

export interface LuaScript {
  source: string;
  sha: string;
}

export function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** EVALSHA, falling back to EVAL when the server has not seen the script (first use, restart, SCRIPT FLUSH). */
export async function runScript(redis: Redis, script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(script.source, keys.length, ...keys, ...args);
  }
}
