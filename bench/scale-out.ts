import { Redis } from 'ioredis';
import { importSubscribers } from '../src/domain/audience.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { describeRuns, runCrier, type Run } from './crier-run.js';
import { arg, benchConfig, startRedis, writeAudienceCsv } from './lib.js';
import { median, startSinkProcess } from './procs.js';

/**
 * Scale-out: the same campaign delivered by one `crier worker` process, then by
 * two, against an SMTP sink (its own process) that answers each message after
 * --sink-delay-ms (default 20 ms, a real relay's latency). Alternating rounds;
 * the ratio is two workers' throughput over one's (target >= 1.8x).
 *
 *   npm run build && node dist/bench/scale-out.js [--n 4000] [--rounds 3] [--sink-delay-ms 20]
 */

async function main(): Promise<void> {
  const n = arg('n', 4000);
  const rounds = arg('rounds', 3);
  const delayMs = arg('sink-delay-ms', 20);
  const redis = await startRedis();
  const sink = await startSinkProcess({ delayMs });
  const stats = new Redis(redis.url);
  try {
    const config = benchConfig({ REDIS_URL: redis.url, SMTP_URL: sink.url });
    const handle = await connectRedis(config, createLogger('silent'));
    await importSubscribers(handle.redis, config.redis_prefix, writeAudienceCsv(config.dataDir, n), 'newsletter', { rejectsDir: config.dataDir });
    console.log(`scale-out: ${n} recipients, sink answering after ${delayMs} ms, email concurrency ${config.channelSettings('email').concurrency} per worker, ${rounds} alternating rounds`);
    const one: Run[] = [];
    const two: Run[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? [1, 2] : [2, 1];
      for (const w of order) {
        const r = await runCrier(config, handle, sink, stats, n, `${i}-${w}`, w);
        (w === 1 ? one : two).push(r);
        console.log(`  round ${i + 1} ${w} worker${w > 1 ? 's' : ' '} ${(n / r.secs).toFixed(0).padStart(6)} msg/s (${r.secs.toFixed(2)} s)`);
      }
    }
    console.log(describeRuns('one worker ', one, n));
    console.log(describeRuns('two workers', two, n));
    console.log(`ratio two/one: ${(median(one.map((r) => r.secs)) / median(two.map((r) => r.secs))).toFixed(2)}x (target >= 1.8x)`);
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
