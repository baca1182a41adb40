import { spawn } from 'node:child_process';
import path from 'node:path';
import { buildCatalogue } from '../src/domain/measures.js';
import { ObservationStore, type ObservationInput } from '../src/domain/observations.js';
import { parsePeriod, previousPeriod } from '../src/domain/periods.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { arg, benchConfig, mb, startRedis } from './lib.js';
import { memoryOf } from './procs.js';

const CLI = path.resolve(import.meta.dirname, '../src/cli/main.js');

/**
 * `crier metrics export` must stream: its memory may not grow with the
 * dataset. Writes N observations (default 1,000,000: per-post daily figures
 * over 10 measures, as collectors make them) through ObservationStore, then
 * runs `crier metrics export --format csv|ndjson` as its own process, reading
 * its stdout to the end, and samples that process's RSS every 50 ms (plus the
 * kernel's VmHWM). Baseline: the same export restricted to one measure
 * (a tenth of the rows) in the same run: flat memory means a ratio near 1.
 *
 *   npm run build && node dist/bench/export-memory.js [--n 1000000]
 */

const log = createLogger('silent');
const MEASURES = ['x.impressions', 'x.engagements', 'x.link_clicks', 'mastodon.boosts', 'mastodon.favourites', 'mastodon.replies', 'engagement.events', 'engagement.attendees', 'engagement.questions', 'engagement.actions'];

async function exportRun(env: NodeJS.ProcessEnv, args: string[]): Promise<{ rows: number; bytes: number; peak: number; hwm: number; secs: number }> {
  const t = performance.now();
  const child = spawn(process.execPath, [CLI, 'metrics', 'export', ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let peak = 0;
  let hwm = 0;
  const timer = setInterval(() => {
    const m = memoryOf(child.pid!);
    peak = Math.max(peak, m.rss);
    hwm = Math.max(hwm, m.hwm);
  }, 50);
  let rows = 0;
  let bytes = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`export exited ${code}`);
  return { rows, bytes, peak, hwm, secs: (performance.now() - t) / 1000 };
}

async function main(): Promise<void> {
  const n = arg('n', 1_000_000);
  const redis = await startRedis();
  try {
    const config = benchConfig({ REDIS_URL: redis.url });
    const handle = await connectRedis(config, log);
    const store = new ObservationStore(handle.redis, config.redis_prefix, buildCatalogue());
    const t0 = performance.now();
    const perMeasure = Math.ceil(n / MEASURES.length);
    const days = 100;
    let written = 0;
    let day = parsePeriod('2026-11-22');
    const dayPeriods = Array.from({ length: days }, () => (day = previousPeriod(day)));
    for (const measure of MEASURES) {
      let batch: ObservationInput[] = [];
      for (let i = 0; i < perMeasure && written < n; i++, written++) {
        const dims = measure.startsWith('engagement.') ? { location: `Town ${i % 50}` } : undefined;
        batch.push({ measure, subject: `post:${Math.floor(i / days)}`, dimensions: dims, period: dayPeriods[i % days]!, value: i % 1000, source: 'bench' });
        if (batch.length === 10_000) {
          await store.recordMany(batch);
          batch = [];
        }
      }
      if (batch.length) await store.recordMany(batch);
    }
    await handle.close();
    console.log(`export-memory benchmark: ${written} observations written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${MEASURES.length} measures)`);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: redis.url, CRIER_CONFIG: config.configFile, CRIER_DATA_DIR: config.dataDir, CRIER_SECRET: config.secret, LOG_LEVEL: 'warn' };
    for (const format of ['csv', 'ndjson']) {
      const small = await exportRun(env, ['--format', format, '--measure', MEASURES[0]!]);
      const all = await exportRun(env, ['--format', format]);
      // V8 grows its heap lazily, so RSS alone mixes garbage not yet collected with data kept: with the
      // old generation capped at 64 MB, finishing at all shows what is kept does not grow with the rows.
      const capped = await exportRun({ ...env, NODE_OPTIONS: '--max-old-space-size=64' }, ['--format', format]);
      console.log(
        `${format}: all ${all.rows} rows (${mb(all.bytes)}) in ${all.secs.toFixed(1)} s, peak RSS ${mb(all.peak)} (VmHWM ${mb(all.hwm)}); ` +
          `one measure ${small.rows} rows, peak RSS ${mb(small.peak)} (VmHWM ${mb(small.hwm)}); ratio ${(all.hwm / small.hwm).toFixed(2)}x; ` +
          `all rows with a 64 MB old generation: ${capped.rows} rows, VmHWM ${mb(capped.hwm)}, ${capped.secs.toFixed(1)} s`,
      );
    }
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
