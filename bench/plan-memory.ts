import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import type { Config } from '../src/config.js';
import { audienceKeys, subscriberId } from '../src/domain/audience.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { campaignKeys } from '../src/domain/campaigns.js';
import { createLogger } from '../src/log.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { Scheduler, deliverQueueName } from '../src/scheduler.js';
import { formatLocal } from '../src/time.js';
import { arg, benchConfig, mb, startRedis } from './lib.js';
import { cpuOfPid, cpuOfRedis, crierEnv, median, memoryOf, nodeArgs, spawnWorker, spread, stopChild } from './procs.js';


/**
 * Peak RSS of the process that plans a campaign to a 1,000,000-recipient list
 * (target: flat, < 300 MB). The audience is written straight into Redis in the
 * importer's key layout (see src/domain/audience-import.ts), then a separate
 * `crier worker --queues campaigns` process plans it: it registers every batch
 * and adds every delivery job, and nothing is sent. That process's RSS is read
 * from /proc every 100 ms (Linux), plus the kernel's own high-water mark.
 *
 *   npm run build && node dist/bench/plan-memory.js [--n 1000000]
 */

const log = createLogger('silent');

/** What importSubscribers writes per new subscriber, pipelined. */
async function seedAudience(handle: RedisHandle, prefix: string, list: string, n: number): Promise<void> {
  const k = audienceKeys(prefix);
  const now = new Date().toISOString();
  const chunk = 5000;
  for (let start = 0; start < n; start += chunk) {
    const pipe = handle.redis.pipeline();
    const subs: Array<string | number> = [];
    for (let i = start; i < Math.min(n, start + chunk); i++) {
      const email = `reader${i}@example.org`;
      const id = subscriberId(email);
      const seq = i + 1;
      pipe.hset(k.sub(id), {
        email,
        name: `Reader ${i}`,
        area: 'Rugby',
        topics: 'roads;burglary',
        status: 'subscribed',
        consent_source: 'import:bench.csv',
        consent_at: now,
        created_at: now,
        updated_at: now,
      });
      subs.push(seq, id);
    }
    pipe.zadd(k.subs, ...subs).zadd(k.list(list), ...subs);
    await pipe.exec();
  }
  // The first import into an empty audience marks its (empty) unsubscribed and opt-out sets complete.
  await handle.redis.multi().set(k.seq, n).sadd(k.lists, list).set(k.exclusionsIndexed, '1').exec();
}

/** Rewrites the AOF now and waits until no rewrite is running. */
async function settleAof(redis: RedisHandle['redis']): Promise<void> {
  const rewriting = async () => /aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await redis.info('persistence'));
  while (await rewriting()) await new Promise((r) => setTimeout(r, 200));
  await redis.bgrewriteaof();
  await new Promise((r) => setTimeout(r, 200));
  while (await rewriting()) await new Promise((r) => setTimeout(r, 200));
}

interface PlanRun {
  secs: number;
  peakRss: number;
  /** CPU seconds of the measured process and of redis-server over the run. */
  cpu: number;
  redisCpu: number;
}

/** The hand-rolled baseline (bench/plan-baseline-main.ts) in its own process. */
async function planBaseline(config: Config, n: number): Promise<PlanRun> {
  const child = fork(path.join(import.meta.dirname, 'plan-baseline-main.js'), [], { env: crierEnv(config, { PLAN_LIST: 'everyone' }), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeArgs() });
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, memoryOf(child.pid!).hwm);
  }, 100);
  const done = await new Promise<{ secs: number; recipients: number; cpu: number; redisCpu: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`baseline exited (${code})`)));
    child.on('message', (m: { type: string; secs: number; recipients: number; cpu: number; redisCpu: number }) => {
      if (m.type !== 'done') return;
      peak = Math.max(peak, memoryOf(child.pid!).hwm);
      resolve(m);
    });
  });
  clearInterval(timer);
  child.removeAllListeners('exit');
  await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
  if (done.recipients !== n) throw new Error(`baseline read ${done.recipients}, expected ${n}`);
  return { secs: done.secs, peakRss: peak, cpu: done.cpu, redisCpu: done.redisCpu };
}

/** Crier: a fresh `crier worker --queues campaigns` plans one campaign to the whole list. */
async function planCrier(config: Config, handle: RedisHandle, n: number, round: number, stats: boolean): Promise<PlanRun> {
  const prefix = config.redis_prefix;
  const planner = await spawnWorker(config, ['campaigns']);
  const pid = planner.pid!;
  if (stats) await handle.redis.config('RESETSTAT');
  const cpu0 = cpuOfPid(pid);
  const redis0 = await cpuOfRedis(handle.redis);
  const scheduler = new Scheduler(config, handle, log);
  // --stats: the planner's own log lines about this campaign, timed from the campaign's creation.
  const logged: Array<{ time: number; msg: string }> = [];
  if (stats) {
    createInterface({ input: planner.stderr! }).on('line', (line) => {
      const l = JSON.parse(line) as { time: number; msg: string };
      if (/plann/.test(l.msg)) logged.push(l);
    });
  }
  try {
    const at = new Date();
    const yaml = `title: Million ${round}\nkind: newsletter\nsend_at: ${formatLocal(at, config.timezone)}\nchannels:\n  email: { list: everyone, subject: "Hello {{name}}", body: "News." }\n`;
    const tp = performance.now();
    const t0 = Date.now();
    const c = await scheduler.create(parseCampaign(yaml, 'bench.yaml', config, { now: at }), { actor: 'bench' });
    const counts = campaignKeys(prefix, c.id).counts;
    while ((await handle.redis.hget(counts, 'email:planned')) !== '1') await new Promise((r) => setTimeout(r, 50));
    const secs = (performance.now() - tp) / 1000;
    const cpu = (cpuOfPid(pid) - cpu0) / 1e6;
    const redisCpu = (await cpuOfRedis(handle.redis) - redis0) / 1e6;
    const { hwm } = memoryOf(pid);
    if (stats) {
      console.log(commandStats(await handle.redis.info('commandstats')));
      console.log(logged.map((l) => `    planner +${l.time - t0} ms ${l.msg}`).join('\n'));
    }
    const total = Number(await handle.redis.hget(counts, 'email:total'));
    if (total !== n) throw new Error(`planned ${total} recipients, expected ${n}`);
    await scheduler.queue(deliverQueueName('email')).obliterate({ force: true });
    return { secs, peakRss: hwm, cpu, redisCpu };
  } finally {
    await scheduler.close();
    // SIGTERM, so a profiled planner (BENCH_NODE_ARGS="--cpu-prof ...") writes its profile.
    await stopChild(planner, 5000);
  }
}

/** INFO commandstats, the commands that took most of redis-server's time first. */
function commandStats(info: string): string {
  const rows = [...info.matchAll(/^cmdstat_(\w+):calls=(\d+),usec=(\d+)/gm)].map((m) => ({ cmd: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }));
  rows.sort((a, b) => b.usec - a.usec);
  return rows
    .slice(0, 8)
    .map((r) => `    redis ${r.cmd.padEnd(16)} ${String(r.calls).padStart(9)} calls ${(r.usec / 1e6).toFixed(2).padStart(6)} s`)
    .join('\n');
}

async function main(): Promise<void> {
  const n = arg('n', 1_000_000);
  const rounds = arg('rounds', 3);
  // --stats: INFO commandstats after each Crier round (where redis-server's time went).
  const stats = process.argv.includes('--stats');
  const redis = await startRedis();
  try {
    const config = benchConfig({ REDIS_URL: redis.url });
    const handle = await connectRedis(config, log);
    const t0 = performance.now();
    await seedAudience(handle, config.redis_prefix, 'everyone', n);
    // Seeding grows the AOF past its rewrite threshold: redis-server then rewrites it in a forked child,
    // which slowed whatever ran beside it (the first rounds). The rewrite is done here, before timing.
    await settleAof(handle.redis);
    console.log(`planning: ${n} subscribers written in ${((performance.now() - t0) / 1000).toFixed(1)} s; batch_size ${config.batch_size}; ${rounds} alternating rounds`);
    const base: PlanRun[] = [];
    const crier: PlanRun[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? (['baseline', 'crier'] as const) : (['crier', 'baseline'] as const);
      for (const who of order) {
        await settleAof(handle.redis);
        const r = who === 'baseline' ? await planBaseline(config, n) : await planCrier(config, handle, n, i, stats);
        (who === 'baseline' ? base : crier).push(r);
        console.log(`  round ${i + 1} ${who.padEnd(8)} ${r.secs.toFixed(1)} s (${(n / r.secs).toFixed(0)} recipients/s), process peak RSS ${mb(r.peakRss)}, CPU ${r.cpu.toFixed(1)} s, redis-server CPU ${r.redisCpu.toFixed(1)} s`);
      }
    }
    const secs = (xs: PlanRun[]) => spread(xs.map((r) => r.secs), (x) => `${x.toFixed(1)} s`);
    console.log(`baseline (page through the list, addBulk jobs with ids): ${secs(base)}`);
    console.log(`crier (plan worker: filter, batches, delivery jobs): ${secs(crier)}; planner peak RSS ${mb(Math.max(...crier.map((r) => r.peakRss)))} (VmHWM)`);
    console.log(`ratio crier/baseline: ${(median(base.map((r) => r.secs)) / median(crier.map((r) => r.secs))).toFixed(2)}x (target >= 0.8x)`);
    await handle.close();
  } finally {
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
