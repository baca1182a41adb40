import nodemailer from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { composeEmail } from '../channels/email/message.js';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { findCampaign } from '../src/domain/campaigns.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { Scheduler } from '../src/scheduler.js';
import { formatLocal } from '../src/time.js';
import { startWorkers } from '../workers/index.js';
import { arg, benchConfig, forceNoDelay, mb, sampleRss, startCountingSink, startRedis, writeAudienceCsv, type CountingSink } from './lib.js';

/**
 * Crier's end-to-end email throughput against a bare pooled nodemailer loop
 * sending the same messages to the same local SMTP sink in the same run.
 *
 *   npm run bench:fanout -- --n 100000
 *
 * Crier's email channel opens its SMTP sockets with TCP_NODELAY; a bare
 * nodemailer pool does not, and then waits ~40 ms per message on Nagle's
 * algorithm. For a fair comparison the benchmark turns Nagle off on every
 * socket of the process (forceNoDelay), the baseline's included.
 */

const SUBJECT = 'Your {{name}} newsletter';
const BODY = `# Hello {{name}}

This month the team held **twelve** community meetings across the county and
answered 340 questions about roads, burglary and rural crime.

- New patrols in [Rugby](https://example.org/rugby)
- Grants: applications open until the end of the month
- Consultation: *have your say* on the police and crime plan

Thank you for reading.
`;

const log = createLogger('silent');

/** The pool Crier's email channel builds for this config (same size, same messages per connection). */
function pooledTransport(config: Config) {
  const { concurrency } = config.channelSettings('email');
  return nodemailer.createTransport(new SMTPPool({ pool: true, url: config.smtpUrl, maxConnections: Math.max(1, Math.min(concurrency, 10)), maxMessages: 100 }));
}

async function baseline(config: Config, sink: CountingSink, n: number): Promise<number> {
  const smtp = pooledTransport(config);
  const window = 2 * Math.max(1, Math.min(config.channelSettings('email').concurrency, 10));
  const start0 = sink.count;
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const recipient = { id: `b${i}`, email: `reader${i}@example.org`, name: `Reader ${i}`, area: 'Rugby', topics: ['roads'] };
      const mail = composeEmail(config, { subject: SUBJECT, markdown: BODY, list: 'newsletter', campaignId: 'baseline', key: `baseline:email:b${i}`, recipient, now: new Date() });
      await smtp.sendMail(mail);
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  const secs = (performance.now() - t0) / 1000;
  smtp.close();
  if (sink.count - start0 !== n) throw new Error(`baseline: sink got ${sink.count - start0}, expected ${n}`);
  return secs;
}

async function crier(config: Config, sink: CountingSink, n: number): Promise<{ secs: number; importSecs: number }> {
  const handle = await connectRedis(config, log);
  const csv = writeAudienceCsv(config.dataDir, n);
  const ti = performance.now();
  const imported = await importSubscribers(handle.redis, config.redis_prefix, csv, 'newsletter', { rejectsDir: config.dataDir });
  const importSecs = (performance.now() - ti) / 1000;
  if (imported.imported !== n) throw new Error(`import: ${JSON.stringify(imported)}`);

  const pool = startWorkers({ config, handle, log, queues: ['campaigns', 'deliver-email'] });
  const scheduler = new Scheduler(config, handle, log);
  const at = new Date();
  const yaml = [
    'title: Bench newsletter',
    'kind: newsletter',
    `send_at: ${formatLocal(at, config.timezone)}`,
    'channels:',
    `  email: { list: newsletter, subject: ${JSON.stringify(SUBJECT)}, body: ${JSON.stringify(BODY)} }`,
  ].join('\n');
  const start0 = sink.count;
  const t0 = performance.now();
  const c = await scheduler.create(parseCampaign(yaml, 'bench.yaml', config, { now: at }), { actor: 'bench' });
  let status = '';
  for (;;) {
    status = (await findCampaign(handle.redis, config.redis_prefix, c.id))?.status ?? 'missing';
    if (!['scheduled', 'sending'].includes(status)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const secs = (performance.now() - t0) / 1000;
  await pool.close();
  await scheduler.close();
  await handle.close();
  if (status !== 'sent') throw new Error(`campaign ended ${status}`);
  if (sink.count - start0 !== n) throw new Error(`crier: sink got ${sink.count - start0}, expected ${n}`);
  return { secs, importSecs };
}

async function main(): Promise<void> {
  const n = arg('n', 100_000);
  forceNoDelay();
  const redis = await startRedis();
  const sink = await startCountingSink();
  const rss = sampleRss();
  try {
    const concurrency0 = arg('concurrency', 10);
    const config = benchConfig({ REDIS_URL: redis.url, SMTP_URL: sink.url }, `channels:\n  email:\n    concurrency: ${concurrency0}\n`);
    const { concurrency } = config.channelSettings('email');
    console.log(`fan-out benchmark: ${n} recipients, email concurrency ${concurrency}, batch_size ${config.batch_size}, sink and redis on 127.0.0.1, TCP_NODELAY on every socket`);
    const cpu0 = process.cpuUsage();
    const b = await baseline(config, sink, n);
    const cpuB = process.cpuUsage(cpu0);
    const bytes = sink.bytes / n;
    console.log(`baseline (pooled nodemailer loop): ${n} in ${b.toFixed(1)} s = ${(n / b).toFixed(0)} msg/s (avg message ${(bytes / 1024).toFixed(1)} KiB)`);
    const cpu1 = process.cpuUsage();
    const r = await crier(config, sink, n);
    const cpuC = process.cpuUsage(cpu1);
    console.log(`crier (import ${r.importSecs.toFixed(1)} s, not timed) create → sent: ${n} in ${r.secs.toFixed(1)} s = ${(n / r.secs).toFixed(0)} msg/s`);
    const perMsg = (u: NodeJS.CpuUsage) => `${((u.user + u.system) / n).toFixed(0)} µs`;
    console.log(`CPU of this process per message (sink included): baseline ${perMsg(cpuB)}, crier ${perMsg(cpuC)} (import included)`);
    console.log(`ratio crier/baseline: ${(b / r.secs).toFixed(2)}x (target >= 0.8x); peak RSS ${mb(rss.stop())}`);
  } finally {
    rss.stop();
    await sink.close();
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
