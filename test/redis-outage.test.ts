import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { CLI_JS, ROOT } from './helpers/dist.js';
import { removeDir, startPrivateRedis } from './helpers/redis-server.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';
import { childEnv } from './helpers/worker-child.js';

/**
 * Redis killed (SIGKILL) in the middle of a send and away for longer than the
 * old reconnection budget (20 tries, ~21 s), then started again on its AOF:
 * the same process finishes the send and delivers the campaign that fell due
 * meanwhile. While Redis is away /healthz answers 503 at once and a CLI
 * command fails fast with exit 2.
 */

const OUTAGE_MS = 26_000;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

async function audience(config: Config, crier: TestCrier, list: string, n: number): Promise<string[]> {
  const emails = Array.from({ length: n }, (_, i) => `${list}${i}@example.org`);
  const csv = path.join(config.dataDir, `${list}.csv`);
  writeFileSync(csv, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
  await importSubscribers(crier.handle.redis, config.redis_prefix, csv, list, { rejectsDir: config.dataDir });
  return emails;
}

const yaml = (title: string, list: string, at: string) => `title: ${title}\nkind: newsletter\nsend_at: ${at}\nchannels:\n  email: { list: ${list}, subject: "Hi", body: "News." }\n`;

function runCli(config: Config, args: string[]): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_JS, ...args], { cwd: ROOT, env: childEnv(config), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, ms: Date.now() - started, stderr }));
  });
}

function missing(sink: SmtpSink, emails: string[]): string[] {
  const got = new Set(sink.messages.flatMap((m) => m.to));
  return emails.filter((e) => !got.has(e));
}

describe('Redis outage', () => {
  it('Redis SIGKILLed for longer than 21 s, restarted on its AOF: the same process finishes the send and the next campaign', async () => {
    const redis = await startPrivateRedis();
    cleanups.push(async () => {
      await redis.stop();
      removeDir(redis.dir);
    });
    const sink = await startSmtpSink({ parse: false });
    cleanups.push(() => sink.close());
    const config = testConfig({ env: { SMTP_URL: sink.url, REDIS_URL: redis.url }, yaml: 'batch_size: 20\nchannels:\n  email: { rate_per_second: 40, concurrency: 5, backoff_ms: 200 }\n' });
    const crier = await startCrier(config, { server: true });
    cleanups.push(() => crier.close());
    const first = await audience(config, crier, 'first', 300);
    const second = await audience(config, crier, 'second', 20);
    const a = await crier.create(yaml('First', 'first', londonIn(0)));
    // Falls due while Redis is away.
    const b = await crier.create(yaml('Second', 'second', londonIn(8000)));

    const deadline = Date.now() + 20_000;
    while (sink.count < 40) {
      if (Date.now() > deadline) throw new Error(`only ${sink.count} sent`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await redis.kill();
    const killedAt = Date.now();

    const health = await fetch(`${crier.baseUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(503);
    const cli = await runCli(config, ['campaign', 'list']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/cannot reach Redis/);
    expect(cli.ms).toBeLessThan(15_000);

    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - killedAt))));
    await redis.start();

    const doneA = await crier.waitForStatus(a.id, ['sent', 'partially_failed', 'failed'], 60_000);
    expect(doneA.status).toBe('sent');
    expect(missing(sink, first)).toEqual([]);
    const doneB = await crier.waitForStatus(b.id, ['sent', 'partially_failed', 'failed'], 30_000);
    expect(doneB.status).toBe('sent');
    expect(missing(sink, second)).toEqual([]);
    const healthAfter = await fetch(`${crier.baseUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(healthAfter.status).toBe(200);
  }, 150_000);
});
