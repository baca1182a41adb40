import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Config } from '../src/config.js';
import { audienceKeys, subscriberId } from '../src/domain/audience.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { campaignKeys } from '../src/domain/campaigns.js';
import { createLogger } from '../src/log.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { Scheduler, deliverQueueName } from '../src/scheduler.js';
import { formatLocal } from '../src/time.js';
import { arg, benchConfig, mb, startRedis } from './lib.js';

const CLI = path.resolve(import.meta.dirname, '../src/cli/main.js');

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
  await handle.redis.multi().set(k.seq, n).sadd(k.lists, list).exec();
}

/** VmRSS and VmHWM (the kernel's own peak) of a process, in bytes. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** `crier worker --queues campaigns` as its own process: what is measured is only a Crier that plans. */
function spawnPlanner(config: Config): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: config.redisUrl,
    CRIER_CONFIG: config.configFile,
    CRIER_DATA_DIR: config.dataDir,
    CRIER_SECRET: config.secret,
    LOG_LEVEL: 'info',
  };
  const child = spawn(process.execPath, [CLI, 'worker', '--queues', 'campaigns'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    child.once('exit', (code) => reject(new Error(`planner exited (${code}):\n${lines.join('\n')}`)));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      lines.push(line);
      if (line.includes('"msg":"workers started"')) resolve(child);
    });
  });
}

async function main(): Promise<void> {
  const n = arg('n', 1_000_000);
  const redis = await startRedis();
  let planner: ChildProcess | undefined;
  try {
    const config = benchConfig({ REDIS_URL: redis.url });
    const prefix = config.redis_prefix;
    const handle = await connectRedis(config, log);
    const t0 = performance.now();
    await seedAudience(handle, prefix, 'everyone', n);
    console.log(`plan-memory benchmark: ${n} subscribers written in ${((performance.now() - t0) / 1000).toFixed(1)} s; batch_size ${config.batch_size}`);

    planner = await spawnPlanner(config);
    const pid = planner.pid!;
    const idle = memoryOf(pid).rss;
    let peak = idle;
    const timer = setInterval(() => {
      peak = Math.max(peak, memoryOf(pid).rss);
    }, 100);
    const scheduler = new Scheduler(config, handle, log);
    const at = new Date();
    const yaml = `title: Million\nkind: newsletter\nsend_at: ${formatLocal(at, config.timezone)}\nchannels:\n  email: { list: everyone, subject: "Hello {{name}}", body: "News." }\n`;
    const tp = performance.now();
    const c = await scheduler.create(parseCampaign(yaml, 'bench.yaml', config, { now: at }), { actor: 'bench' });
    const counts = campaignKeys(prefix, c.id).counts;
    while ((await handle.redis.hget(counts, 'email:planned')) !== '1') await new Promise((r) => setTimeout(r, 100));
    const secs = (performance.now() - tp) / 1000;
    clearInterval(timer);
    const { rss, hwm } = memoryOf(pid);
    peak = Math.max(peak, rss);
    const total = Number(await handle.redis.hget(counts, 'email:total'));
    const jobs = await scheduler.queue(deliverQueueName('email')).getJobCountByTypes('waiting', 'delayed', 'prioritized');
    await scheduler.close();
    await handle.close();
    if (total !== n) throw new Error(`planned ${total} recipients, expected ${n}`);
    console.log(`planned ${total} recipients into ${jobs} delivery jobs in ${secs.toFixed(1)} s (${(total / secs).toFixed(0)} recipients/s)`);
    console.log(`planner process RSS: idle ${mb(idle)}, peak sampled every 100 ms ${mb(peak)}, kernel high-water mark ${mb(hwm)} (target < 300 MB)`);
  } finally {
    planner?.removeAllListeners('exit');
    planner?.kill('SIGKILL');
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
