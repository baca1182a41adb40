import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { importSubscribers } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier } from './helpers/crier.js';
import { startSmtpSink } from './helpers/smtp-sink.js';

/**
 * Each recipient has its own budget of tries (channels.<ch>.attempts), not a
 * share of its batch's: a greylisting relay that defers every 7th message
 * defers many recipients of a batch once each, and none of them may fail.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

describe('per-recipient retries', () => {
  it('a relay answering 451 to every 7th message: nobody deferred once ends failed, everyone once', async () => {
    const N = 600;
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    sink.deferEvery(7, 451, 'Greylisted, please try again later');
    const config = testConfig({ env: { SMTP_URL: sink.url }, yaml: 'batch_size: 100\nchannels:\n  email: { concurrency: 5, attempts: 4, backoff_ms: 100 }\n' });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());
    const emails = Array.from({ length: N }, (_, i) => `g${i}@example.org`);
    const csv = path.join(config.dataDir, 'grey.csv');
    writeFileSync(csv, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
    await importSubscribers(crier.handle.redis, config.redis_prefix, csv, 'grey', { rejectsDir: config.dataDir });
    const c = await crier.create(`title: Grey\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: grey, subject: "Hi", body: "News." }\n`);

    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 60_000);
    expect(sink.refused).toBeGreaterThan(N / 7 - 5);
    expect(done.counts.email).toMatchObject({ sent: N, failed: 0, pending: 0 });
    expect(done.status).toBe('sent');
    const got = new Map<string, number>();
    for (const m of sink.messages) for (const to of m.to) got.set(to, (got.get(to) ?? 0) + 1);
    expect(emails.filter((e) => got.get(e) !== 1)).toEqual([]);
  }, 90_000);
});
