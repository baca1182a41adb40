import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery, type Recipient, type SendContext } from '../adapter.js';
import { silentLogger, testConfig } from '../../test/helpers/context.js';
import { startSmtpSink, type SmtpSink } from '../../test/helpers/smtp-sink.js';
import { createCommunityAdapter, type GatewayMessage } from './index.js';

const NOW = new Date('2026-12-01T09:00:00Z');
const ctx: SendContext = { log: silentLogger(), now: () => NOW };

function recipient(over: Partial<Recipient> = {}): Recipient {
  return { id: 'sub-1', email: 'ann@example.org', name: 'Ann', area: 'rugby', topics: ['Burglary', 'asb'], ...over };
}

function delivery(over: Partial<Delivery> = {}, content: Record<string, unknown> = {}): Delivery {
  return {
    campaignId: 'alert1',
    campaignTitle: 'Burglary alert',
    kind: 'community',
    channel: 'community',
    content: {
      areas: ['Rugby', 'Nuneaton'],
      topics: ['burglary', 'fraud'],
      subject: 'Break-ins on Hillmorton Road',
      body: 'Hello {{name}}, lock your sheds.',
      ...content,
    },
    recipient: recipient(),
    key: 'alert1:community:0:sub-1',
    ...over,
  };
}

interface GatewayHit {
  headers: IncomingHttpHeaders;
  body: GatewayMessage;
}

async function startGateway(): Promise<{ url: string; hits: GatewayHit[]; replies: Array<[number, Record<string, string>]>; server: Server }> {
  const hits: GatewayHit[] = [];
  const replies: Array<[number, Record<string, string>]> = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString('utf8')));
    req.on('end', () => {
      hits.push({ headers: req.headers, body: JSON.parse(data) as GatewayMessage });
      const [status, headers] = replies.shift() ?? [202, {}];
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ status }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/sms`, hits, replies, server };
}

describe('community alerts by email', () => {
  let sink: SmtpSink;
  let adapter: ChannelAdapter;

  beforeAll(async () => {
    sink = await startSmtpSink();
    adapter = createCommunityAdapter(testConfig({ env: { SMTP_URL: sink.url } }));
  });
  afterAll(async () => {
    await adapter.close();
    await sink.close();
  });
  afterEach(() => {
    sink.messages.length = 0;
  });

  it('prefixes the subject with the area and the topics the recipient follows', async () => {
    await adapter.send(delivery(), ctx);
    await adapter.send(delivery({ recipient: recipient({ id: 'sub-2', email: 'bo@example.org', topics: ['fraud', 'burglary'] }) }), ctx);
    await adapter.send(delivery({ recipient: recipient({ id: 'sub-3', email: 'cy@example.org', topics: [] }) }), ctx);
    await adapter.send(delivery({ recipient: recipient({ id: 'sub-4', email: 'di@example.org', area: '', topics: [] }) }), ctx);
    const subjects = (await sink.waitFor(4)).map((m) => m.parsed!.subject);
    expect(subjects).toEqual([
      '[Rugby · burglary] Break-ins on Hillmorton Road',
      '[Rugby · burglary · fraud] Break-ins on Hillmorton Road',
      '[Rugby] Break-ins on Hillmorton Road',
      'Break-ins on Hillmorton Road',
    ]);
    const mail = sink.messages[0]!.parsed!;
    expect(mail.html).toContain('Hello Ann, lock your sheds.');
    expect(mail.headerLines.find((h) => h.key === 'list-unsubscribe-post')?.line).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    expect(mail.headerLines.find((h) => h.key === 'list-id')?.line).toMatch(/^List-Id: community <community\./i);
  });

  it('keeps the prefix from injecting headers', async () => {
    await adapter.send(delivery({ recipient: recipient({ area: 'Rugby\r\nBcc: evil@x' }) }), ctx);
    const [msg] = await sink.waitFor(1);
    expect(msg!.to).toEqual(['ann@example.org']);
    expect(msg!.parsed!.bcc).toBeUndefined();
    expect(msg!.parsed!.subject).toBe('[Rugby Bcc: evil@x · burglary] Break-ins on Hillmorton Road');
  });

  it('refuses content without a subject', async () => {
    await expect(adapter.send(delivery({}, { subject: undefined }), ctx)).rejects.toBeInstanceOf(PermanentError);
  });
});

describe('community alerts to the SMS gateway', () => {
  let sink: SmtpSink;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  let adapter: ChannelAdapter;

  beforeAll(async () => {
    sink = await startSmtpSink();
    gateway = await startGateway();
    adapter = createCommunityAdapter(testConfig({ env: { SMTP_URL: sink.url }, yaml: `community:\n  gateway_url: ${gateway.url}\n` }));
  });
  afterAll(async () => {
    await adapter.close();
    await sink.close();
    await new Promise((r) => gateway.server.close(r));
  });

  it('posts a short JSON message with an idempotency key, then emails', async () => {
    await adapter.send(delivery({}, { subject: `Alert ${'x'.repeat(300)}` }), ctx);
    await sink.waitFor(1);
    expect(gateway.hits).toHaveLength(1);
    const hit = gateway.hits[0]!;
    expect(hit.headers['idempotency-key']).toBe('alert1:community:0:sub-1');
    expect(hit.body).toMatchObject({ to: 'ann@example.org', subscriber_id: 'sub-1', area: 'rugby', topics: ['burglary'] });
    expect([...hit.body.text].length).toBeLessThanOrEqual(160);
    expect(hit.body.text.startsWith('[Rugby · burglary] Alert xxx')).toBe(true);

    await adapter.send(delivery({ key: 'k2' }, { sms: 'Hi {{name}}: sheds.' }), ctx);
    expect(gateway.hits[1]!.body.text).toBe('Hi Ann: sheds.');
    expect(gateway.hits[1]!.body.phone).toBeUndefined();

    // A subscriber who gave a mobile number: the gateway gets it beside the address.
    const withPhone = delivery({ key: 'k3' });
    await adapter.send({ ...withPhone, recipient: { ...withPhone.recipient!, phone: '+447911123456' } }, ctx);
    expect(gateway.hits[2]!.body).toMatchObject({ to: 'ann@example.org', phone: '+447911123456' });
  });

  it('maps gateway failures: 5xx transient (no email), 429 rate limited, 4xx permanent', async () => {
    const before = sink.count;
    gateway.replies.push([503, {}], [429, { 'retry-after': '30' }], [400, {}]);
    await expect(adapter.send(delivery(), ctx)).rejects.toBeInstanceOf(TransientError);
    const limited = await adapter.send(delivery(), ctx).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).resetAt.getTime()).toBe(NOW.getTime() + 30_000);
    await expect(adapter.send(delivery(), ctx)).rejects.toBeInstanceOf(PermanentError);
    expect(sink.count).toBe(before);
  });
});

describe('community alerts dry run', () => {
  it('writes the .eml and the gateway payload to the outbox', async () => {
    const config = testConfig({ yaml: 'community:\n  gateway_url: http://127.0.0.1:9/sms\n' });
    const adapter = createCommunityAdapter(config);
    expect(adapter.dryRun).toBe(true);
    const result = await adapter.send(delivery(), ctx);
    await adapter.close();
    expect(result.outboxFile).toBe(`${config.outboxDir}/alert1-community-sub-1.eml`);
    const mail = await simpleParser(await readFile(result.outboxFile!));
    expect(mail.subject).toBe('[Rugby · burglary] Break-ins on Hillmorton Road');
    const sms = JSON.parse(await readFile(`${config.outboxDir}/alert1-community-sub-1.sms.json`, 'utf8')) as GatewayMessage;
    expect(sms.text).toBe('[Rugby · burglary] Break-ins on Hillmorton Road');
  });
});
