import { hkdfSync } from 'node:crypto';

/**
 * One key per purpose, derived from the secret (CRIER_SECRET, or the one kept
 * in Redis) with HKDF-SHA256, so a key handed to one party (a webhook
 * receiver) says nothing about another (unsubscribe links, the suppression
 * hash, sessions). Purposes in use: 'unsubscribe', 'webhook', 'suppression';
 * 'session' is reserved for the dashboard's cookies.
 */
export type KeyPurpose = 'unsubscribe' | 'webhook' | 'suppression' | 'session';

const SALT = 'crier';

export function deriveKey(secret: string, purpose: KeyPurpose): Buffer {
  if (!secret) throw new Error(`cannot derive the ${purpose} key without a secret`);
  return Buffer.from(hkdfSync('sha256', secret, SALT, `crier:${purpose}:v1`, 32));
}
