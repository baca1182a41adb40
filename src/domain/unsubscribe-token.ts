import { createHmac, timingSafeEqual } from 'node:crypto';
import { deriveKey } from '../keys.js';

/**
 * Per-recipient unsubscribe tokens:
 * `<base64url(subscriberId)>.<base64url(list)>.<base64url(HMAC-SHA256)>`.
 * The id and the list the message came from travel in the token so the
 * endpoint needs no lookup table; the MAC, keyed with the 'unsubscribe' key
 * derived from the secret (src/keys.ts) and never with the secret itself or a
 * key anyone else holds, makes a forged or altered token worthless. An empty
 * list part means "from everything".
 */

export interface UnsubscribeTarget {
  subscriberId: string;
  /** The list the message came from; undefined: every list. */
  list?: string;
}

function mac(secret: string, subscriberId: string, list: string): Buffer {
  return createHmac('sha256', deriveKey(secret, 'unsubscribe')).update(`crier:unsubscribe:v2\n${subscriberId}\n${list}`, 'utf8').digest();
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

export function signUnsubscribeToken(secret: string, subscriberId: string, list = ''): string {
  if (!secret) throw new Error('cannot sign an unsubscribe token without a secret');
  return `${b64(subscriberId)}.${b64(list)}.${mac(secret, subscriberId, list).toString('base64url')}`;
}

/** Decodes a canonical base64url part, or null (re-encoding rejects other spellings of the same bytes, and invalid UTF-8). */
function decode(part: string, allowEmpty: boolean): string | null {
  if (part === '') return allowEmpty ? '' : null;
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return null;
  const text = Buffer.from(part, 'base64url').toString('utf8');
  return b64(text) === part ? text : null;
}

/** Whom and from which list the token unsubscribes, or null when it is not genuine. */
export function verifyUnsubscribeToken(secret: string, token: string): UnsubscribeTarget | null {
  if (!secret || typeof token !== 'string' || token.length > 2048) return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [idPart, listPart, macPart] = parts as [string, string, string];
  const subscriberId = decode(idPart, false);
  const list = decode(listPart, true);
  if (subscriberId === null || list === null || !/^[A-Za-z0-9_-]+$/.test(macPart)) return null;
  const given = Buffer.from(macPart, 'base64url');
  if (given.toString('base64url') !== macPart) return null;
  const expected = mac(secret, subscriberId, list);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return list ? { subscriberId, list } : { subscriberId };
}
