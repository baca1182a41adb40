import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { removeDir, startPrivateRedis, type PrivateRedis } from './helpers/redis-server.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';
import { spawnWorker, type WorkerChild } from './helpers/worker-child.js';

/**
 * Crashes in the middle of a campaign: the worker process killed with -9, and
 * Redis restarted (AOF). Afterwards everyone has their message; only the
 * messages in flight at the kill may repeat, and none is lost.
 */

const N = 2000;
const CONCURRENCY = 5;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

async function importAudience(config: Config, crier: TestCrier, list: string): Promise<string[]> {
  const emails = Array.from({ length: N }, (_, i) => `r${i}@example.org`);
  const file = path.join(config.dataDir, `${list}.csv`);
  writeFileSync(file, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
  const res = await importSubscribers(crier.handle.redis, config.redis_prefix, file, list, { rejectsDir: config.dataDir });
  expect(res.imported).toBe(N);
  return emails;
}

const campaignYaml = (list: string) =>
  `title: Recovery\nkind: newsletter\nsend_at: ${londonIn(1000)}\nchannels:\n  email: { list: ${list}, subject: "Hello {{name}}", body: "Roads news for {{name}}." }\n`;

/** Per address, how many messages arrived. */
function tally(sink: SmtpSink): Map<string, number> {
  const m = new Map<string, number>();
  for (const msg of sink.messages) for (const to of msg.to) m.set(to, (m.get(to) ?? 0) + 1);
  return m;
}

function check(sink: SmtpSink, emails: string[]): { missing: string[]; duplicates: number } {
  const got = tally(sink);
  const missing = emails.filter((e) => !got.has(e));
  let duplicates = 0;
  for (const n of got.values()) duplicates += n - 1;
  return { missing, duplicates };
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('recovery in the middle of a campaign', () => {
  it('kill -9 of the worker process, then a new worker: everyone mailed, repeats bounded by concurrency', async () => {
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    const config = testConfig({
      env: { SMTP_URL: sink.url },
      yaml: `worker_lock_ms: 2000\nchannels:\n  email: { rate_per_second: 400, concurrency: ${CONCURRENCY}, backoff_ms: 200 }\n`,
    });
    // Scheduler and reads in this process; the workers only in the children.
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const emails = await importAudience(config, crier, 'crash');

    const first = spawnWorker(config);
    const children: WorkerChild[] = [first];
    cleanups.push(async () => {
      for (const c of children) await c.kill('SIGKILL');
    });
    await first.ready;
    const c = await crier.create(campaignYaml('crash'));

    await until(() => sink.count >= N / 2, 20_000, 'half the messages');
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    const atKill = sink.count;
    expect(atKill).toBeLessThan(N);
    const mid = await crier.show(c.id);
    expect(mid.status).toBe('sending');

    const second = spawnWorker(config);
    children.push(second);
    await second.ready;
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 40_000);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: N, failed: 0, pending: 0 });

    const { missing, duplicates } = check(sink, emails);
    expect(missing).toEqual([]);
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    expect(sink.count).toBe(N + duplicates);
    if (process.env.RECOVERY_STATS) console.info({ atKill, duplicates });
    await second.kill('SIGTERM');
  }, 60_000);

  it('Redis restarted (AOF) mid-campaign: the campaign completes and nobody is missing', async () => {
    const redis: PrivateRedis = await startPrivateRedis();
    cleanups.push(async () => {
      await redis.stop();
      removeDir(redis.dir);
    });
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    const config = testConfig({
      env: { SMTP_URL: sink.url, REDIS_URL: redis.url },
      yaml: `channels:\n  email: { rate_per_second: 400, concurrency: ${CONCURRENCY}, backoff_ms: 200 }\n`,
    });
    const crier = await startCrier(config);
    cleanups.push(() => crier.close());
    const emails = await importAudience(config, crier, 'restart');
    const c = await crier.create(campaignYaml('restart'));

    await until(() => sink.count >= N / 3, 20_000, 'a third of the messages');
    await redis.restart();
    const afterRestart = sink.count;
    expect(afterRestart).toBeLessThan(N);

    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 40_000);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: N, failed: 0, pending: 0 });
    const { missing, duplicates } = check(sink, emails);
    expect(missing).toEqual([]);
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    if (process.env.RECOVERY_STATS) console.info({ afterRestart, duplicates });
  }, 60_000);
});
