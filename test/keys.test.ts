import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createWebhookAdapter, verifyWebhookSignature, webhookKey, type WebhookBody } from '../channels/webhook/index.js';
import { signUnsubscribeToken, verifyUnsubscribeToken } from '../src/domain/unsubscribe-token.js';
import { deriveKey } from '../src/keys.js';
import { silentLogger, testConfig } from './helpers/context.js';

/**
 * One key per purpose, derived from the secret with HKDF: what a webhook
 * receiver holds cannot sign an unsubscribe link, and a configured
 * webhook.secret wins.
 */

const SECRET = 'test-secret-0123456789abcdef'; // what testConfig() sets as CRIER_SECRET

interface Written {
  headers: Record<string, string>;
  body: WebhookBody;
}

async function signedByAdapter(yaml = ''): Promise<Written> {
  const config = testConfig({ yaml });
  const adapter = createWebhookAdapter(config);
  const r = await adapter.send(
    { campaignId: 'c1', campaignTitle: 'T', kind: 'social', channel: 'webhook', content: { text: 'hello' }, key: 'c1:webhook:-' },
    { log: silentLogger(), now: () => new Date() },
  );
  return JSON.parse(readFileSync(r.outboxFile!, 'utf8')) as Written;
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('keys derived per purpose (HKDF)', () => {
  it('are 32 bytes, stable, different per purpose and per secret, and none is the secret', () => {
    const purposes = ['unsubscribe', 'webhook', 'suppression', 'session'] as const;
    const keys = purposes.map((p) => deriveKey(SECRET, p).toString('hex'));
    expect(new Set(keys).size).toBe(purposes.length);
    for (const [i, p] of purposes.entries()) {
      expect(deriveKey(SECRET, p).length).toBe(32);
      expect(deriveKey(SECRET, p).toString('hex')).toBe(keys[i]);
      expect(deriveKey(`${SECRET}x`, p).toString('hex')).not.toBe(keys[i]);
      expect(keys[i]).not.toContain(Buffer.from(SECRET).toString('hex'));
    }
    expect(() => deriveKey('', 'webhook')).toThrow(/without a secret/);
  });

  it('webhooks are signed with the derived webhook key, not the secret; the signature verifies with webhookKey()', async () => {
    const { headers, body } = await signedByAdapter();
    const raw = JSON.stringify(body);
    const ts = headers['X-Crier-Timestamp']!;
    const sig = headers['X-Crier-Signature']!;
    expect(verifyWebhookSignature(webhookKey(SECRET), ts, raw, sig)).toBe(true);
    expect(verifyWebhookSignature(SECRET, ts, raw, sig)).toBe(false);
    expect(webhookKey(SECRET)).toBe(deriveKey(SECRET, 'webhook').toString('hex'));
  });

  it('a configured webhook.secret wins', async () => {
    const { headers, body } = await signedByAdapter('webhook: { secret: "receiver-shared-secret" }\n');
    const raw = JSON.stringify(body);
    expect(verifyWebhookSignature('receiver-shared-secret', headers['X-Crier-Timestamp']!, raw, headers['X-Crier-Signature']!)).toBe(true);
    expect(verifyWebhookSignature(webhookKey(SECRET), headers['X-Crier-Timestamp']!, raw, headers['X-Crier-Signature']!)).toBe(false);
  });

  it('a webhook receiver cannot forge an unsubscribe link with the key it holds (nor with the bare secret)', () => {
    const id = 'abc123';
    const genuine = signUnsubscribeToken(SECRET, id, 'news');
    expect(verifyUnsubscribeToken(SECRET, genuine)).toEqual({ subscriberId: id, list: 'news' });
    for (const key of [webhookKey(SECRET), SECRET, deriveKey(SECRET, 'webhook')]) {
      const forged = createHmac('sha256', key).update(`crier:unsubscribe:v2\n${id}\nnews`).digest('base64url');
      expect(verifyUnsubscribeToken(SECRET, `${b64(id)}.${b64('news')}.${forged}`)).toBeNull();
      // The old format: HMAC(secret, "crier:unsubscribe:v1:<id>").
      const old = createHmac('sha256', key).update(`crier:unsubscribe:v1:${id}`).digest('base64url');
      expect(verifyUnsubscribeToken(SECRET, `${b64(id)}.${old}`)).toBeNull();
    }
  });
});
