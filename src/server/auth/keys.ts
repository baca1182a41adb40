import { hkdfSync } from 'node:crypto';

/**
 * The session cookie's encryption key (32 bytes for secure-session's
 * secretbox), derived from CRIER_SECRET with HKDF-SHA256 so it is never the
 * secret itself and changing its purpose label gives an unrelated key.
 * (Stands in until the one key-per-purpose module from the secrets work lands;
 * the label stays the same then.)
 */
export function sessionKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'crier', 'crier session cookie v1', 32));
}
