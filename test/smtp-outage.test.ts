import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { importSubscribers } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier } from './helpers/crier.js';
import { freePort } from './helpers/redis-server.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * The relay refuses connections at the start of a send, then comes back: the
 * send carries on by itself and everyone gets the message once. (Each refused
 * connection used to keep its pool slot: ten refusals and the pool was frozen.)
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

describe('SMTP relay outage', () => {
  it('relay down at the start of a send, then up: every recipient exactly once, no restart', async () => {
    const N = 60;
    const port = await freePort(); // nothing listens here yet: connections are refused
    const config = testConfig({
      env: { SMTP_URL: `smtp://127.0.0.1:${port}` },
      yaml: 'batch_size: 5\nchannels:\n  email: { concurrency: 10, attempts: 8, backoff_ms: 300 }\n',
    });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());
    const emails = Array.from({ length: N }, (_, i) => `o${i}@example.org`);
    const csv = path.join(config.dataDir, 'outage.csv');
    writeFileSync(csv, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
    await importSubscribers(crier.handle.redis, config.redis_prefix, csv, 'outage', { rejectsDir: config.dataDir });
    const c = await crier.create(`title: Outage\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: outage, subject: "Hi", body: "News." }\n`);

    // The outage lasts a few seconds into the send: long enough for every pool slot to meet a refusal.
    await crier.waitForStatus(c.id, ['sending'], 20_000);
    await new Promise((r) => setTimeout(r, 5000));
    const sink: SmtpSink = await startSmtpSink({ parse: false, port });
    cleanups.push(() => sink.close());

    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 45_000);
    expect(done.counts.email).toMatchObject({ sent: N, failed: 0, pending: 0 });
    expect(done.status).toBe('sent');
    const got = new Map<string, number>();
    for (const m of sink.messages) for (const to of m.to) got.set(to, (got.get(to) ?? 0) + 1);
    expect(emails.filter((e) => got.get(e) !== 1)).toEqual([]);
    expect(sink.count).toBe(N);
  }, 90_000);
});
