import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withOverrides } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { createLogger } from '../src/log.js';
import { buildServer } from '../src/server/index.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier } from './helpers/crier.js';
import { startSmtpSink } from './helpers/smtp-sink.js';

/**
 * A wrong SMTP password pauses the email channel instead of failing the list
 * one refused login per recipient: the reason shows in `campaign show` and
 * /healthz, and the same recipients go out once the login works.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

describe('SMTP login refused', () => {
  it('pauses the channel with "SMTP login failed: check SMTP_URL"; after a restart with the right password everyone gets it once', async () => {
    const N = 50;
    const sink = await startSmtpSink({ parse: false, auth: { user: 'crier', pass: 'right-password' } });
    cleanups.push(() => sink.close());
    const wrong = sink.url.replace('right-password', 'wrong-password');
    const config = testConfig({ env: { SMTP_URL: wrong }, yaml: 'batch_size: 10\nchannels:\n  email: { concurrency: 5, backoff_ms: 100 }\n' });
    const a = await startCrier(config, { server: true });
    let aOpen = true;
    cleanups.push(async () => {
      if (aOpen) await a.close();
    });
    const emails = Array.from({ length: N }, (_, i) => `l${i}@example.org`);
    const csv = path.join(config.dataDir, 'login.csv');
    writeFileSync(csv, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
    await importSubscribers(a.handle.redis, config.redis_prefix, csv, 'login', { rejectsDir: config.dataDir });
    const c = await a.create(`title: Login\nkind: newsletter\nsend_at: ${londonIn(0)}\nchannels:\n  email: { list: login, subject: "Hi", body: "News." }\n`);

    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await a.show(c.id);
      if (s.counts.email?.paused && s.status === 'sending' && s.counts.email.pending === N) break;
      if (Date.now() > deadline) throw new Error(`email never paused: ${s.status} ${JSON.stringify(s.counts)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const paused = await a.show(c.id);
    expect(paused.status).toBe('sending');
    expect(paused.counts.email).toMatchObject({ sent: 0, failed: 0, pending: N });
    expect(paused.counts.email?.paused).toMatch(/^SMTP login failed: check SMTP_URL/);
    const health = (await (await fetch(`${a.baseUrl}/healthz`)).json()) as { ok: boolean; paused?: Record<string, string> };
    expect(health.paused?.email).toMatch(/^SMTP login failed: check SMTP_URL/);
    // A few refused logins (at most one per worker slot and the start check), not one per recipient.
    await new Promise((r) => setTimeout(r, 1000));
    expect(sink.authFailures).toBeLessThanOrEqual(12);
    expect(sink.count).toBe(0);
    await a.close();
    aOpen = false;

    // Restarted with the right SMTP_URL: the start check resumes the channel.
    const fixed = withOverrides(config, { smtpUrl: sink.url });
    const b = await startCrier(fixed);
    cleanups.push(() => b.close());
    const done = await b.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 30_000);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: N, failed: 0, pending: 0 });
    const got = new Map<string, number>();
    for (const m of sink.messages) for (const to of m.to) got.set(to, (got.get(to) ?? 0) + 1);
    expect(emails.filter((e) => got.get(e) !== 1)).toEqual([]);
    const server = await buildServer(fixed, b.handle, createLogger('silent'));
    const after = (await server.inject({ method: 'GET', url: '/healthz' }).then((r) => r.json())) as { paused?: unknown };
    expect(after.paused).toBeUndefined();
    await server.close();
  }, 90_000);
});
