import { fork } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { describeRuns, runCrier, type Run } from './crier-run.js';
import { arg, benchConfig, startRedis, writeAudienceCsv } from './lib.js';
import { cpuOfPid, cpuOfRedis, crierEnv, median, nodeArgs, startSinkProcess, type SinkProcess } from './procs.js';

/**
 * Crier's email fan-out against a bare pooled nodemailer loop, measured fairly:
 * the SMTP sink, the baselines and Crier (a `crier worker` process) each run in
 * a process of their own; they take turns for --rounds rounds (the order rotates);
 * medians with their spread; CPU per message counts every process involved
 * (the sender, the sink and redis-server).
 *
 *   npm run build && node dist/bench/fanout.js [--n 20000] [--rounds 3] [--sink-delay-ms 0] [--concurrency 10] [--crier-only]
 *
 * Two baselines: the hand-rolled script (a pooled nodemailer loop, nodemailer composing each
 * message: the issue's target, >= 0.95x) and the same loop sending Crier's own bytes
 * (composeRawEmail), which leaves Crier's overhead per message over the transport itself.
 * Baselines: timed from the moment the loop starts to the sink's last message.
 * Crier: timed from the campaign's send_at to the sink's last message (the
 * worker is started before, so its start-up is not counted; planning is).
 */

const log = createLogger('silent');

async function runBaseline(config: Config, sink: SinkProcess, stats: Redis, n: number, raw: boolean): Promise<Run> {
  await sink.reset();
  const sink0 = cpuOfPid(sink.pid);
  const redis0 = await cpuOfRedis(stats);
  const child = fork(path.join(import.meta.dirname, 'baseline-main.js'), [], { env: crierEnv(config, { BASELINE_N: String(n), BASELINE_RAW: raw ? '1' : '0' }), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeArgs() });
  const done = await new Promise<{ startedAt: number; cpu: NodeJS.CpuUsage }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`baseline exited (${code}) before it finished`)));
    child.on('message', (m: { type: string; startedAt: number; cpu: NodeJS.CpuUsage }) => {
      if (m.type === 'done') resolve(m);
    });
  });
  child.removeAllListeners('exit');
  const s = await sink.waitFor(n);
  const run: Run = {
    secs: (s.lastAt - done.startedAt) / 1000,
    peakRss: 0,
    cpu: { sender: (done.cpu.user + done.cpu.system) / n, sink: (cpuOfPid(sink.pid) - sink0) / n, redis: ((await cpuOfRedis(stats)) - redis0) / n },
  };
  await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
  if (s.count !== n) throw new Error(`baseline: sink got ${s.count}, expected ${n}`);
  return run;
}

async function main(): Promise<void> {
  const n = arg('n', 20_000);
  const rounds = arg('rounds', 3);
  const delayMs = process.argv.includes('--sink-delay-ms') ? arg('sink-delay-ms', 1) : 0;
  const concurrency = arg('concurrency', 10);
  const redis = await startRedis();
  const sink = await startSinkProcess({ delayMs });
  const stats = new Redis(redis.url);
  try {
    const config = benchConfig({ REDIS_URL: redis.url, SMTP_URL: sink.url }, `channels:\n  email:\n    concurrency: ${concurrency}\n`);
    const handle = await connectRedis(config, log);
    const imported = await importSubscribers(handle.redis, config.redis_prefix, writeAudienceCsv(config.dataDir, n), 'newsletter', { rejectsDir: config.dataDir });
    if (imported.imported !== n) throw new Error(`import: ${JSON.stringify(imported)}`);
    console.log(`fan-out: ${n} recipients, ${rounds} alternating rounds, email concurrency ${concurrency}, sink ${delayMs ? `answering after ${delayMs} ms` : 'answering at once'} (own process), redis-server with AOF`);
    // Two baselines: the hand-rolled script the issue names (nodemailer composes each message), and the same
    // loop sending Crier's own bytes (composeRawEmail), which leaves only Crier's per-message overhead.
    // --crier-only: Crier alone (a long send's memory, e.g. --n 200000), no ratio.
    const crierOnly = process.argv.includes('--crier-only');
    const subjects = crierOnly ? (['crier'] as const) : (['baseline', 'raw', 'crier'] as const);
    const runs: Record<'baseline' | 'raw' | 'crier', Run[]> = { baseline: [], raw: [], crier: [] };
    for (let i = 0; i < rounds; i++) {
      // Rotate which goes first, so none always runs on a warmer machine.
      const order = subjects.map((_, j) => subjects[(i + j) % subjects.length]!);
      for (const who of order) {
        const r = who === 'crier' ? await runCrier(config, handle, sink, stats, n, String(i)) : await runBaseline(config, sink, stats, n, who === 'raw');
        runs[who].push(r);
        console.log(`  round ${i + 1} ${who.padEnd(8)} ${(n / r.secs).toFixed(0).padStart(6)} msg/s  (${r.secs.toFixed(2)} s, CPU ${(r.cpu.sender + r.cpu.sink + r.cpu.redis).toFixed(0)} µs/msg)`);
      }
    }
    if (crierOnly) {
      console.log(describeRuns('crier    (crier worker, send_at → last message)', runs.crier, n));
      await handle.close();
      return;
    }
    console.log(describeRuns('baseline (bare pooled nodemailer loop, nodemailer composes)', runs.baseline, n));
    console.log(describeRuns("raw      (the same loop sending Crier's bytes, composeRawEmail)", runs.raw, n));
    console.log(describeRuns('crier    (crier worker, send_at → last message)', runs.crier, n));
    const secs = (k: keyof typeof runs) => median(runs[k].map((r) => r.secs));
    const per = (k: keyof typeof runs) => runs.crier.map((c, j) => (runs[k][j]!.secs / c.secs).toFixed(2)).join(', ');
    console.log(`ratio crier/baseline: ${(secs('baseline') / secs('crier')).toFixed(2)}x (per round ${per('baseline')}; target >= 0.95x)`);
    console.log(`ratio crier/raw:      ${(secs('raw') / secs('crier')).toFixed(2)}x (per round ${per('raw')}; Crier's own overhead over the transport)`);
    await handle.close();
  } finally {
    stats.disconnect();
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
