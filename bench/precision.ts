import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { importSubscribers } from '../src/domain/audience.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { planJobId, Scheduler } from '../src/scheduler.js';
import { formatLocal } from '../src/time.js';
import { arg, benchConfig, startRedis } from './lib.js';
import { crierEnv, median, percentile, spawnWorker, spread, startSinkProcess, stopChild } from './procs.js';

/**
 * Scheduling precision: --n campaigns (one recipient each) due within the same
 * minute (--spread-s seconds, on whole seconds as campaign times are written),
 * delivered by a `crier worker` process; the lag from each campaign's due time
 * to its message reaching the SMTP sink (its own process), p50 / p99 / max.
 * Baseline, in the same run: the same due times as bare BullMQ delayed jobs,
 * each sending one message through a pooled nodemailer transport in a process
 * of its own (bench/precision-baseline-main.ts). Target: Crier p99 < 100 ms.
 *
 * Baseline and Crier alternate (the order swaps each round), --rounds 3 by
 * default; each round prints every step of the lag from BullMQ's own job
 * timestamps, and the medians over the rounds come last.
 *
 * Each sender is a running process, as in production: --warmup 20 unmeasured messages fall due
 * 3 s before the measured minute (a fresh process's first SMTP connections and first runs of its
 * code took ~200 ms more for the first second's messages). --warmup 0 measures a cold process.
 *
 *   npm run build && node dist/bench/precision.js [--n 1000] [--spread-s 60] [--rounds 3] [--warmup 20]
 */

const log = createLogger('silent');

interface Stage {
  label: string;
  /** Per id: the stage's epoch ms (NaN when unknown). */
  at: Map<string, number>;
}

/** Median and p99 of each step between consecutive stages (due → … → sink), over the ids every stage knows. */
function stageReport(label: string, due: Map<string, number>, stages: Stage[]): void {
  const parts: string[] = [];
  let prev: Stage = { label: 'due', at: due };
  for (const s of stages) {
    const d = [...due.keys()].map((id) => (s.at.get(id) ?? Number.NaN) - (prev.at.get(id) ?? Number.NaN)).filter((x) => !Number.isNaN(x));
    if (d.length > 0) parts.push(`${prev.label} → ${s.label} p50 ${percentile(d, 50)} / p99 ${percentile(d, 99)}`);
    prev = s;
  }
  console.log(`  ${label} steps (ms): ${parts.join('; ')}`);
}

/** BullMQ's own timestamps of each job (hash fields timestamp, processedOn, finishedOn), by key in `ids`. */
async function jobTimes(redis: Redis, keyOf: (id: string) => string, ids: string[]): Promise<Record<'added' | 'active' | 'finished', Map<string, number>>> {
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keyOf(id), 'timestamp', 'processedOn', 'finishedOn');
  const rows = ((await pipe.exec()) ?? []).map(([, r]) => r as (string | null)[]);
  const out = { added: new Map<string, number>(), active: new Map<string, number>(), finished: new Map<string, number>() };
  rows.forEach((r, i) => {
    const id = ids[i]!;
    out.added.set(id, Number(r[0] ?? Number.NaN));
    out.active.set(id, Number(r[1] ?? Number.NaN));
    out.finished.set(id, Number(r[2] ?? Number.NaN));
  });
  return out;
}

function firstArrivals(arrivals: Array<[number, string]>): Map<string, number> {
  const first = new Map<string, number>();
  for (const [at, id] of arrivals) if (!first.has(id)) first.set(id, at);
  return first;
}

/** Due seconds counted as the sender's warm-up (a fresh process: code not yet optimised, SMTP connections being opened). */
const WARMUP_S = 5;

function lagReport(label: string, due: Map<string, number>, arrivals: Array<[number, string]>): { all: number[]; warm: number[] } {
  const first = new Map<string, number>();
  for (const [at, id] of arrivals) if (due.has(id) && !first.has(id)) first.set(id, at);
  const start = Math.min(...due.values());
  const lags = [...due].map(([id, t]) => [(first.get(id) ?? Number.NaN) - t, t] as const);
  const missing = lags.filter(([x]) => Number.isNaN(x)).length;
  const ok = lags.filter(([x]) => !Number.isNaN(x));
  const all = ok.map(([x]) => x);
  const warm = ok.filter(([, t]) => t >= start + WARMUP_S * 1000).map(([x]) => x);
  console.log(
    `${label}: lag due → first message p50 ${percentile(all, 50)} ms, p99 ${percentile(all, 99)} ms, max ${Math.max(...all)} ms${missing ? `, ${missing} never arrived` : ''}; ` +
      `after the first ${WARMUP_S} s: p50 ${percentile(warm, 50)}, p99 ${percentile(warm, 99)}, max ${Math.max(...warm)} ms`,
  );
  return { all, warm };
}

interface RoundResult {
  p50: number;
  p99: number;
  max: number;
  /** The same after the first WARMUP_S due seconds. */
  warmP50: number;
  warmP99: number;
  warmMax: number;
}

const summary = ({ all, warm }: { all: number[]; warm: number[] }): RoundResult => ({
  p50: percentile(all, 50),
  p99: percentile(all, 99),
  max: Math.max(...all),
  warmP50: percentile(warm, 50),
  warmP99: percentile(warm, 99),
  warmMax: Math.max(...warm),
});

/** One run of the baseline: bare BullMQ delayed jobs with the given due times, one message each, sent by a process of its own. */
async function runBaseline(ctx: Ctx, round: number): Promise<RoundResult> {
  const { n, spreadS, config, redis, sink } = ctx;
  const start = Math.ceil(Date.now() / 1000) * 1000 + 5000;
  const queue = new Queue('bare-precision', { connection: new Redis(redis.url, { maxRetriesPerRequest: null }) });
  const due = new Map<string, number>();
  // The warm-up jobs (not measured) fall due 3 s before the measured ones, once the process is up.
  const warm = Array.from({ length: ctx.warmup }, (_, i) => ({ name: 'send', data: { id: `r${round}w${i}` }, opts: { jobId: `r${round}w${i}`, delay: start - 3000 - Date.now() } }));
  await queue.addBulk([
    ...warm,
    ...Array.from({ length: n }, (_, i) => {
      const id = `r${round}b${i}`;
      const at = start + Math.floor((i * spreadS) / n) * 1000;
      due.set(id, at);
      return { name: 'send', data: { id }, opts: { jobId: id, delay: at - Date.now() } };
    }),
  ]);
  await ctx.handle.redis.config('RESETSTAT');
  const bare = fork(path.join(import.meta.dirname, 'precision-baseline-main.js'), [], { env: crierEnv(config), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await sink.waitFor(n + ctx.warmup, (spreadS + 120) * 1000);
  await printStats(ctx, 'baseline');
  await stopChild(bare);
  await queue.close();
  const arrivals = await sink.arrivals();
  await sink.reset();
  const lags = lagReport(`round ${round} baseline (bare BullMQ delayed job + nodemailer)`, due, arrivals);
  const t = await jobTimes(ctx.handle.redis, (id) => `bull:bare-precision:${id}`, [...due.keys()]);
  stageReport('baseline', due, [
    { label: 'job active', at: t.active },
    { label: 'sink', at: firstArrivals(arrivals) },
    { label: 'job finished', at: t.finished },
  ]);
  return summary(lags);
}

/** One run of Crier: the same kind of due times as campaigns, sent by a `crier worker` process. */
async function runCrier(ctx: Ctx, round: number): Promise<RoundResult> {
  const { n, spreadS, config, handle, sink } = ctx;
  const worker = await spawnWorker(config, ['campaigns', 'deliver-email']);
  const scheduler = new Scheduler(config, handle, log);
  const start = Math.ceil(Date.now() / 1000) * 1000 + 10_000;
  const due = new Map<string, number>();
  const versions = new Map<string, number>();
  // The warm-up campaigns (not measured) fall due 3 s before the measured ones.
  for (let i = 0; i < ctx.warmup; i++) {
    const yaml = `title: Warm-up ${i}\nkind: community\nsend_at: ${formatLocal(new Date(start - 3000), config.timezone)}\nchannels:\n  email: { list: one, subject: "Warm-up ${i}", body: "Road closed." }\n`;
    await scheduler.create(parseCampaign(yaml, 'bench.yaml', config, { now: new Date() }), { actor: 'bench' });
  }
  for (let i = 0; i < n; i++) {
    const at = start + Math.floor((i * spreadS) / n) * 1000;
    const yaml = `title: Precision ${i}\nkind: community\nsend_at: ${formatLocal(new Date(at), config.timezone)}\nchannels:\n  email: { list: one, subject: "Alert ${i}", body: "Road closed." }\n`;
    const c = await scheduler.create(parseCampaign(yaml, 'bench.yaml', config, { now: new Date() }), { actor: 'bench' });
    due.set(c.id, at);
    versions.set(c.id, c.version);
  }
  if (Date.now() > start) throw new Error('creating the campaigns took longer than the head start; use a smaller --n');
  await ctx.handle.redis.config('RESETSTAT');
  await sink.waitFor(n + ctx.warmup, (spreadS + 120) * 1000);
  await printStats(ctx, 'crier');
  await scheduler.close();
  await stopChild(worker);
  const arrivals = await sink.arrivals();
  await sink.reset();
  const lags = lagReport(`round ${round} crier (campaign → crier worker → SMTP)`, due, arrivals);
  const p = config.redis_prefix;
  const ids = [...due.keys()];
  const ct = await jobTimes(handle.redis, (id) => `${p}:campaigns:${planJobId(id, versions.get(id)!)}`, ids);
  const dt = await jobTimes(handle.redis, (id) => `${p}:deliver-email:${id}:email:0`, ids);
  // PRECISION_DUMP=/tmp/p writes each campaign's timestamps to /tmp/p.<round>.json (for a look at single seconds).
  if (process.env.PRECISION_DUMP) writeFileSync(`${process.env.PRECISION_DUMP}.${round}.json`, JSON.stringify(ids.map((id) => ({ id, due: due.get(id), cActive: ct.active.get(id), dAdded: dt.added.get(id), dActive: dt.active.get(id), sink: firstArrivals(arrivals).get(id), dFinished: dt.finished.get(id) }))));
  stageReport('crier', due, [
    { label: 'campaign job active', at: ct.active },
    { label: 'delivery job added', at: dt.added },
    { label: 'delivery job active', at: dt.active },
    { label: 'sink', at: firstArrivals(arrivals) },
    { label: 'delivery job finished', at: dt.finished },
  ]);
  return summary(lags);
}

/** Commands redis-server ran per message since the last RESETSTAT (those inside scripts included), from INFO commandstats. */
async function printStats(ctx: Ctx, label: string): Promise<void> {
  const info = await ctx.handle.redis.info('commandstats');
  const calls = [...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])] as const);
  const total = calls.reduce((a, [, k]) => a + k, 0);
  const scripts = calls.filter(([c]) => c === 'evalsha' || c === 'eval').reduce((a, [, k]) => a + k, 0);
  console.log(`  ${label}: Redis ran ${(total / ctx.n).toFixed(0)} commands per message (${(scripts / ctx.n).toFixed(1)} script calls)`);
}

interface Ctx {
  n: number;
  /** Unmeasured messages each sender sends 3 s before the measured minute (0: measure a cold process). */
  warmup: number;
  spreadS: number;
  config: ReturnType<typeof benchConfig>;
  redis: Awaited<ReturnType<typeof startRedis>>;
  handle: Awaited<ReturnType<typeof connectRedis>>;
  sink: Awaited<ReturnType<typeof startSinkProcess>>;
}

async function main(): Promise<void> {
  const n = arg('n', 1000);
  const spreadS = arg('spread-s', 60);
  const rounds = arg('rounds', 3);
  const warmup = arg('warmup', 20);
  const redis = await startRedis();
  const sink = await startSinkProcess({ record: true });
  try {
    const config = benchConfig({ REDIS_URL: redis.url, SMTP_URL: sink.url });
    const handle = await connectRedis(config, log);
    const csv = path.join(config.dataDir, 'one.csv');
    writeFileSync(csv, 'email,name,area,topics\nreader@example.org,Reader,Rugby,roads\n');
    await importSubscribers(handle.redis, config.redis_prefix, csv, 'one', { rejectsDir: config.dataDir });
    const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
    console.log(
      `scheduling precision: ${n} campaigns due within ${spreadS} s (whole seconds), one recipient each, ${rounds} rounds alternating; ` +
        `${warmup ? `each sender warmed by ${warmup} unmeasured messages 3 s before` : 'cold senders (--warmup 0)'}; load average ${load()}`,
    );
    const ctx: Ctx = { n, warmup, spreadS, config, redis, handle, sink };
    const base: RoundResult[] = [];
    const crier: RoundResult[] = [];
    for (let r = 1; r <= rounds; r++) {
      // The order swaps each round.
      if (r % 2 === 1) {
        base.push(await runBaseline(ctx, r));
        crier.push(await runCrier(ctx, r));
      } else {
        crier.push(await runCrier(ctx, r));
        base.push(await runBaseline(ctx, r));
      }
    }
    await handle.close();
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    const line = (label: string, xs: RoundResult[]) => {
      console.log(`${label}: p50 ${spread(xs.map((x) => x.p50), ms)}, p99 ${spread(xs.map((x) => x.p99), ms)}, max ${spread(xs.map((x) => x.max), ms)}`);
      console.log(`    after the first ${WARMUP_S} s: p50 ${spread(xs.map((x) => x.warmP50), ms)}, p99 ${spread(xs.map((x) => x.warmP99), ms)}, max ${spread(xs.map((x) => x.warmMax), ms)}`);
    };
    console.log(`medians over ${rounds} rounds (min–max); load average at the end ${load()}`);
    line('  baseline (bare BullMQ delayed job + nodemailer)', base);
    line('  crier (campaign → crier worker → SMTP)', crier);
    console.log(`ratio of median p99s crier/baseline: ${(median(crier.map((x) => x.p99)) / Math.max(1, median(base.map((x) => x.p99)))).toFixed(2)}x (target: crier p99 < 100 ms)`);
  } finally {
    await sink.stop();
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
