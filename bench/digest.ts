import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { ObservationStore, type ObservationInput } from '../src/domain/observations.js';
import { parsePeriod, periodOf, previousPeriod } from '../src/domain/periods.js';
import { TREND_POINTS } from '../src/digest/model.js';
import { composeDigest } from '../src/digest/send.js';
import { createLogger } from '../src/log.js';
import { catalogueFor } from '../src/metrics-config.js';
import { arg, benchConfig, startRedis } from './lib.js';

/**
 * Building one week's digest over a year of daily observations for 50
 * measures (the issue's budget: under 1 s), against a baseline that only
 * reads the same keys the digest reads (each measure's index range for the
 * 8 trend periods, then its hash) and does nothing with them. Runs alternate,
 * medians reported. The digest build includes rendering HTML, text and one
 * PNG per measure.
 *
 *   npm run build --silent && node dist/bench/digest.js [--runs 9] [--days 365]
 */

const runs = arg("runs", 9);
const days = arg('days', 365);
const ZONE = 'Europe/London';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  // 29 built-in measures + 21 of the team's own = 50, every one kept daily here.
  const own = Array.from({ length: 21 }, (_, i) => `    - { name: team.measure_${i}, unit: count, description: "Team measure ${i}", heading: Direct engagement, good: up, period: day, rollup: sum${i % 3 === 0 ? `, target: ${500 + i}` : ''} }`);
  const config = benchConfig({ REDIS_URL: redis.url }, `metrics:\n  measures:\n${own.join('\n')}\n`);
  const catalogue = catalogueFor(config.metrics);
  const measures = catalogue.list();
  const client = new Redis(redis.url, { enableAutoPipelining: true });
  const store = new ObservationStore(client, config.redis_prefix, catalogue, { zone: ZONE });
  const week = parsePeriod('2026-W48', ZONE);
  const collectedAt = new Date('2026-11-30T06:00:00Z');
  const seedStart = performance.now();
  const rows: ObservationInput[] = [];
  for (const m of measures) {
    for (let d = 0; d < days; d++) {
      const day = periodOf('day', new Date(week.end.getTime() - (days - d) * 86_400_000 + 3_600_000), ZONE);
      rows.push({ measure: m.name, period: day, value: m.unit === 'percent' ? 40 + (d % 20) : 100 + d + (d % 7) * 3, source: m.source, collectedAt });
    }
  }
  await store.recordMany(rows);
  const seeded = performance.now() - seedStart;

  const deps = { config, redis: client, log: createLogger('silent'), now: () => new Date('2026-11-30T08:00:00Z') };
  // The keys the digest reads: per measure, the index range covering the 8 trend periods, then the hash.
  const windows = measures.map((m) => {
    const kind = m.period === 'day' || m.period === 'week' ? 'week' : m.period;
    const p = kind === 'week' ? week : periodOf(kind, new Date(week.end.getTime() - 1), ZONE);
    return { name: m.name, from: previousPeriod(p, TREND_POINTS - 1).start.getTime(), to: p.end.getTime() };
  });
  const pad = (ms: number) => String(ms).padStart(15, '0');
  const bareRead = async (): Promise<number> => {
    let n = 0;
    await Promise.all(
      windows.map(async (w) => {
        const members = await client.zrangebylex(`${config.redis_prefix}:obs:${w.name}:index`, `[${pad(w.from)}`, `(${pad(w.to)}`);
        if (members.length === 0) return;
        const raws = await client.hmget(`${config.redis_prefix}:obs:${w.name}`, ...members.map((x) => x.slice(x.indexOf('|') + 1)));
        n += raws.length;
      }),
    );
    return n;
  };

  // Warm-up (JIT, script cache, resvg), then alternate.
  await composeDigest(deps, week);
  const read = await bareRead();
  const base: number[] = [];
  const digest: number[] = [];
  let images = 0;
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    await bareRead();
    base.push(performance.now() - t);
    t = performance.now();
    const r = await composeDigest(deps, week);
    digest.push(performance.now() - t);
    images = r.images.length;
  }
  const b = median(base);
  const d = median(digest);
  console.log(`digest bench: ${measures.length} measures × ${days} daily observations = ${rows.length.toLocaleString('en-GB')} observations (seeded in ${(seeded / 1000).toFixed(1)} s)`);
  console.log(`  baseline, bare read of the same keys (${read} observations): median ${b.toFixed(1)} ms over ${runs} runs`);
  console.log(`  digest build (read, roll up, HTML + text, ${images} PNGs):    median ${d.toFixed(1)} ms (min ${Math.min(...digest).toFixed(1)}, max ${Math.max(...digest).toFixed(1)})`);
  console.log(`  ratio digest / bare read: ${(d / b).toFixed(1)}x; budget 1000 ms: ${d < 1000 ? 'within' : 'OVER'}`);
  await client.quit();
  await redis.stop();
  if (d >= 1000) process.exitCode = 1;
}

await main();
