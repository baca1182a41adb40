import { deriveKey } from '../../keys.js';

/** The session cookie's encryption key (32 bytes for secure-session's secretbox): the secret's 'session' key (HKDF-SHA256). */
export function sessionKey(secret: string): Buffer {
  return deriveKey(secret, 'session');
}
