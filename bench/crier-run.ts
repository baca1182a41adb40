import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { findCampaign } from '../src/domain/campaigns.js';
import { createLogger } from '../src/log.js';
import type { RedisHandle } from '../src/redis/connection.js';
import { Scheduler } from '../src/scheduler.js';
import { formatLocal } from '../src/time.js';
import { BODY, SUBJECT } from './content.js';
import { cpuOfPid, cpuOfRedis, median, memoryOf, spread, spawnWorker, stopChild, type SinkProcess } from './procs.js';

/**
 * One measured Crier send for the fan-out benchmarks: `workers` separate
 * `crier worker` processes are started and idle, an email campaign to the
 * `newsletter` list is created due on a whole second ~2 s ahead, and the time
 * from send_at to the sink's last message is measured, with the CPU every
 * process used in that window.
 */

const log = createLogger('silent');

export interface Run {
  secs: number;
  /** CPU µs per message: sender process(es), sink process, redis-server. */
  cpu: { sender: number; sink: number; redis: number };
  /** Peak RSS (VmHWM) of the largest worker process over the whole send, planning and delivery. */
  peakRss: number;
}

export async function runCrier(config: Config, handle: RedisHandle, sink: SinkProcess, stats: Redis, n: number, label: string, workers = 1): Promise<Run> {
  await sink.reset();
  const procs = await Promise.all(Array.from({ length: workers }, () => spawnWorker(config, ['campaigns', 'deliver-email'])));
  const scheduler = new Scheduler(config, handle, log);
  try {
    const sendAt = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    const yaml = [
      `title: Bench newsletter ${label}`,
      'kind: newsletter',
      `send_at: ${formatLocal(new Date(sendAt), config.timezone)}`,
      'channels:',
      `  email: { list: newsletter, subject: ${JSON.stringify(SUBJECT)}, body: ${JSON.stringify(BODY)} }`,
    ].join('\n');
    const c = await scheduler.create(parseCampaign(yaml, 'bench.yaml', config, { now: new Date() }), { actor: 'bench' });
    await new Promise((r) => setTimeout(r, Math.max(0, sendAt - 50 - Date.now())));
    const senderCpu = () => procs.reduce((sum, p) => sum + cpuOfPid(p.pid!), 0);
    const worker0 = senderCpu();
    const sink0 = cpuOfPid(sink.pid);
    const redis0 = await cpuOfRedis(stats);
    const s = await sink.waitFor(n);
    let status = '';
    for (;;) {
      status = (await findCampaign(handle.redis, config.redis_prefix, c.id))?.status ?? 'missing';
      if (!['scheduled', 'sending'].includes(status)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const run: Run = {
      secs: (s.lastAt - sendAt) / 1000,
      cpu: { sender: (senderCpu() - worker0) / n, sink: (cpuOfPid(sink.pid) - sink0) / n, redis: ((await cpuOfRedis(stats)) - redis0) / n },
      peakRss: Math.max(...procs.map((p) => memoryOf(p.pid!).hwm)),
    };
    if (status !== 'sent') throw new Error(`campaign ended ${status}`);
    const after = await sink.stats();
    if (after.count !== n) throw new Error(`crier: sink got ${after.count}, expected ${n}`);
    return run;
  } finally {
    await scheduler.close();
    await Promise.all(procs.map((p) => stopChild(p)));
  }
}

/** "label: median (min–max) msg/s; CPU per message …" */
export function describeRuns(label: string, runs: Run[], n: number): string {
  const rate = runs.map((r) => n / r.secs);
  const cpu = (k: keyof Run['cpu']) => median(runs.map((r) => r.cpu[k]));
  const total = median(runs.map((r) => r.cpu.sender + r.cpu.sink + r.cpu.redis));
  const rss = runs.some((r) => r.peakRss > 0) ? `; worker peak RSS ${(Math.max(...runs.map((r) => r.peakRss)) / 1048576).toFixed(0)} MB` : '';
  return `${label}: ${spread(rate, (x) => x.toFixed(0))} msg/s; CPU per message ${total.toFixed(0)} µs (sender ${cpu('sender').toFixed(0)}, sink ${cpu('sink').toFixed(0)}, redis ${cpu('redis').toFixed(0)})${rss}`;
}
