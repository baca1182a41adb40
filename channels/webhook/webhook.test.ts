import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type Delivery, type SendContext } from '../adapter.js';
import { contentSchema, createWebhookAdapter, parseRetryAfter, signWebhook, verifyWebhookSignature } from './index.js';
import { silentLogger, testConfig } from '../../test/helpers/context.js';

/** A receiver like a team's own endpoint: records each request, answers as the test tells it. */
interface Received {
  method: string;
  headers: IncomingHttpHeaders;
  raw: string;
  signatureOk: boolean;
}
type Responder = (res: ServerResponse) => void;

const SECRET = 'receiver-shared-secret-1234';
let server: Server;
let baseUrl: string;
let received: Received[] = [];
let responders: Responder[] = [];
const hung: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const signatureOk = verifyWebhookSignature(
        SECRET,
        String(req.headers['x-crier-timestamp']),
        raw,
        String(req.headers['x-crier-signature']),
      );
      received.push({ method: req.method ?? '', headers: req.headers, raw, signatureOk });
      const respond = responders.shift() ?? ((r: ServerResponse) => r.writeHead(204).end());
      respond(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const r of hung) r.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  responders = [];
});

function config(url?: string) {
  const yaml = `webhook:\n  secret: ${SECRET}\n  timeout_ms: 300\n${url ? `  url: ${url}/hook\n` : ''}`;
  return testConfig({ yaml });
}

const ctx: SendContext = { log: silentLogger(), now: () => new Date() };

function delivery(content: Record<string, unknown> = {}, key = 'c_abc:webhook:0'): Delivery {
  return { campaignId: 'c_abc', campaignTitle: 'March newsletter', kind: 'newsletter', channel: 'webhook', content, key };
}

describe('webhook adapter', () => {
  it('posts signed JSON that a receiver can verify', async () => {
    const adapter = createWebhookAdapter(config(baseUrl));
    expect(adapter.dryRun).toBe(false);
    await adapter.verify();
    const result = await adapter.send(delivery({ text: 'Out now: "March" & more — café', payload: { area: 'Rugby', n: 2 } }), ctx);
    expect(result.outboxFile).toBeUndefined();
    expect(received).toHaveLength(1);
    const r = received[0]!;
    expect(r.method).toBe('POST');
    expect(r.signatureOk).toBe(true);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['idempotency-key']).toBe('c_abc:webhook:0');
    const ts = Number(r.headers['x-crier-timestamp']);
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(5);
    expect(r.headers['x-crier-signature']).toBe(signWebhook(SECRET, ts, r.raw));
    const body = JSON.parse(r.raw);
    expect(body).toEqual({
      campaign: { id: 'c_abc', title: 'March newsletter', kind: 'newsletter' },
      channel: 'webhook',
      text: 'Out now: "March" & more — café',
      payload: { area: 'Rugby', n: 2 },
      sent_at: body.sent_at,
    });
    expect(Math.abs(Date.parse(body.sent_at) - ts * 1000)).toBeLessThan(1000);
    await adapter.close();
  });

  it('uses the url from the content over the configured one', async () => {
    const adapter = createWebhookAdapter(config());
    expect(adapter.dryRun).toBe(true);
    await adapter.send(delivery({ url: `${baseUrl}/other` }), ctx);
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!.raw).text).toBe('March newsletter');
  });

  it('verifyWebhookSignature rejects tampering, other secrets and stale or future timestamps', () => {
    const now = new Date('2026-12-01T09:00:00Z');
    const ts = Math.floor(now.getTime() / 1000);
    const raw = '{"a":1}';
    const sig = signWebhook(SECRET, ts, raw);
    expect(verifyWebhookSignature(SECRET, String(ts), raw, sig, 300, now)).toBe(true);
    expect(verifyWebhookSignature(SECRET, ts, Buffer.from(raw), sig, 300, now)).toBe(true);
    expect(verifyWebhookSignature(SECRET, ts, '{"a":2}', sig, 300, now)).toBe(false);
    expect(verifyWebhookSignature('other-secret', ts, raw, sig, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, ts, raw, 'sha256=00', 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, 'abc', raw, sig, 300, now)).toBe(false);
    const later = new Date(now.getTime() + 301_000);
    expect(verifyWebhookSignature(SECRET, ts, raw, sig, 300, later)).toBe(false);
    const earlier = new Date(now.getTime() - 301_000);
    expect(verifyWebhookSignature(SECRET, ts, raw, sig, 300, earlier)).toBe(false);
  });

  it('500 is transient; the retry with the same idempotency key succeeds', async () => {
    const adapter = createWebhookAdapter(config(baseUrl));
    responders = [(r) => r.writeHead(500, { 'content-type': 'text/plain' }).end('database busy'), (r) => r.writeHead(200).end('ok')];
    const err = await adapter.send(delivery(), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain('500');
    expect((err as Error).message).toContain('database busy');
    await expect(adapter.send(delivery(), ctx)).resolves.toEqual({});
    expect(received).toHaveLength(2);
    expect(received.map((r) => r.headers['idempotency-key'])).toEqual(['c_abc:webhook:0', 'c_abc:webhook:0']);
    expect(received.every((r) => r.signatureOk)).toBe(true);
  });

  it('a receiver that does not answer in time is transient', async () => {
    const adapter = createWebhookAdapter(config(baseUrl));
    responders = [(r) => hung.push(r)];
    const started = Date.now();
    const err = await adapter.send(delivery(), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('an unreachable receiver is transient', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const adapter = createWebhookAdapter(config(`http://127.0.0.1:${port}`));
    await expect(adapter.send(delivery(), ctx)).rejects.toBeInstanceOf(TransientError);
  });

  it('404 is permanent with the status and a snippet of the body', async () => {
    const adapter = createWebhookAdapter(config(baseUrl));
    responders = [(r) => r.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'no such hook', pad: 'x'.repeat(500) }))];
    const err = await adapter.send(delivery(), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toContain('404');
    expect((err as Error).message).toContain('no such hook');
    expect((err as Error).message.length).toBeLessThan(400);
  });

  it('401/403 need reauth; 429 is rate limited until Retry-After (seconds or HTTP date)', async () => {
    const adapter = createWebhookAdapter(config(baseUrl));
    responders = [(r) => r.writeHead(401).end(), (r) => r.writeHead(403).end('bad token')];
    await expect(adapter.send(delivery(), ctx)).rejects.toBeInstanceOf(NeedsReauthError);
    await expect(adapter.send(delivery(), ctx)).rejects.toThrow(/reconnect account: .*403.*bad token/);

    const now = new Date('2026-12-01T09:00:00Z');
    const fixed: SendContext = { log: silentLogger(), now: () => now };
    responders = [(r) => r.writeHead(429, { 'retry-after': '120' }).end()];
    const limited = await adapter.send(delivery(), fixed).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).resetAt.toISOString()).toBe('2026-12-01T09:02:00.000Z');

    responders = [(r) => r.writeHead(429, { 'retry-after': 'Tue, 01 Dec 2026 09:05:00 GMT' }).end()];
    const dated = await adapter.send(delivery(), fixed).catch((e: unknown) => e);
    expect((dated as RateLimitedError).resetAt.toISOString()).toBe('2026-12-01T09:05:00.000Z');
    expect(parseRetryAfter(null, now).getTime()).toBe(now.getTime() + 60_000);
  });

  it('invalid content is permanent and names the field', async () => {
    const adapter = createWebhookAdapter(config(baseUrl));
    await expect(adapter.send(delivery({ url: 'ftp://example.org/x' }), ctx)).rejects.toThrow(/field "url"/);
    await expect(adapter.send(delivery({ txt: 'typo' }), ctx)).rejects.toBeInstanceOf(PermanentError);
    expect(contentSchema.safeParse({ text: 'hi', payload: { a: [1] } }).success).toBe(true);
    expect(received).toHaveLength(0);
  });

  it('without any url it is a dry run writing the signed request to the outbox', async () => {
    const cfg = config();
    const adapter = createWebhookAdapter(cfg);
    expect(adapter.dryRun).toBe(true);
    const result = await adapter.send(delivery({ text: 'hello' }), ctx);
    expect(result.outboxFile).toMatch(/outbox\/c_abc-webhook\.json$/);
    expect(result.outboxFile!.startsWith(cfg.outboxDir)).toBe(true);
    const written = JSON.parse(readFileSync(result.outboxFile!, 'utf8'));
    expect(written.url).toBeNull();
    expect(written.body.text).toBe('hello');
    expect(written.headers['Idempotency-Key']).toBe('c_abc:webhook:0');
    const raw = JSON.stringify(written.body);
    expect(verifyWebhookSignature(SECRET, written.headers['X-Crier-Timestamp'], raw, written.headers['X-Crier-Signature'])).toBe(true);
    expect(received).toHaveLength(0);
  });
});
