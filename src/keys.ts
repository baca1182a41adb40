import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * One key per purpose, derived from the secret (CRIER_SECRET, or the one kept
 * in Redis) with HKDF-SHA256, so a key handed to one party (a webhook
 * receiver) says nothing about another (unsubscribe links, the suppression
 * hash, sessions). Purposes in use: 'unsubscribe', 'webhook', 'suppression',
 * 'sealed' (values kept encrypted in Redis); 'session' is for the dashboard's cookies.
 */
export type KeyPurpose = 'unsubscribe' | 'webhook' | 'suppression' | 'session' | 'sealed';

const SALT = 'crier';

// Derived once per secret and purpose: a send signs an unsubscribe link per recipient, and HKDF each time cost ~25 µs.
const derived = new Map<string, Buffer>();

export function deriveKey(secret: string, purpose: KeyPurpose): Buffer {
  if (!secret) throw new Error(`cannot derive the ${purpose} key without a secret`);
  const memo = `${purpose}\u0000${secret}`;
  let key = derived.get(memo);
  if (!key) {
    if (derived.size >= 64) derived.clear();
    key = Buffer.from(hkdfSync('sha256', secret, SALT, `crier:${purpose}:v1`, 32));
    derived.set(memo, key);
  }
  // A copy: the caller may not change the key every later caller gets.
  return Buffer.from(key);
}

/**
 * Seals a value kept in Redis that is itself a credential (a Slack or Teams
 * webhook URL carries its secret in the path): AES-256-GCM under the 'sealed'
 * key. `v1.<iv>.<ciphertext>.<tag>`, base64url.
 */
export function seal(secret: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(secret, 'sealed'), iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, ct, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

/** The sealed value, or null when it was sealed under another secret or altered. */
export function unseal(secret: string, sealed: string): string | null {
  const [v, iv, ct, tag] = sealed.split('.');
  if (v !== 'v1' || iv === undefined || ct === undefined || tag === undefined) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(secret, 'sealed'), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
