import { hkdfSync } from 'node:crypto';

/**
 * The session cookie's encryption key (32 bytes for secure-session's
 * secretbox), derived from CRIER_SECRET with HKDF-SHA256 so it is never the
 * secret itself. Salt and label are those of the key-per-purpose module
 * (`deriveKey(secret, 'session')` from the secrets work), so switching to it
 * when it lands changes no key and signs nobody out.
 */
export function sessionKey(secret: string): Buffer {
  if (!secret) throw new Error('cannot derive the session key without a secret');
  return Buffer.from(hkdfSync('sha256', secret, 'crier', 'crier:session:v1', 32));
}
