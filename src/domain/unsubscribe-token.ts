import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Per-recipient unsubscribe tokens: `<base64url(subscriberId)>.<base64url(HMAC-SHA256)>`.
 * The id travels in the token so the endpoint needs no lookup table; the MAC
 * (keyed with CRIER_SECRET, domain-separated so no other signed value can pass
 * as one) makes a forged or altered token worthless.
 */

const PURPOSE = 'crier:unsubscribe:v1:';

function mac(secret: string, subscriberId: string): Buffer {
  return createHmac('sha256', secret).update(PURPOSE + subscriberId, 'utf8').digest();
}

export function signUnsubscribeToken(secret: string, subscriberId: string): string {
  if (!secret) throw new Error('cannot sign an unsubscribe token without a secret');
  const id = Buffer.from(subscriberId, 'utf8').toString('base64url');
  return `${id}.${mac(secret, subscriberId).toString('base64url')}`;
}

/** The subscriber id the token was signed for, or null when it is not genuine. */
export function verifyUnsubscribeToken(secret: string, token: string): string | null {
  if (!secret || typeof token !== 'string' || token.length > 2048) return null;
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) return null;
  const idPart = token.slice(0, dot);
  const macPart = token.slice(dot + 1);
  const b64url = /^[A-Za-z0-9_-]+$/;
  if (!b64url.test(idPart) || !b64url.test(macPart)) return null;
  const subscriberId = Buffer.from(idPart, 'base64url').toString('utf8');
  // Re-encoding rejects non-canonical spellings of the same bytes (and invalid UTF-8).
  if (Buffer.from(subscriberId, 'utf8').toString('base64url') !== idPart) return null;
  const given = Buffer.from(macPart, 'base64url');
  if (given.toString('base64url') !== macPart) return null;
  const expected = mac(secret, subscriberId);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return subscriberId;
}
