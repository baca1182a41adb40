import { once } from 'node:events';
import { Command, Option } from 'commander';
import { DateTime } from 'luxon';
import { collectQueue, schedulerId } from '../../workers/collect/worker.js';
import { collectorCron, collectorDefinition, collectorDefinitions, collectorEnabled, collectorSources } from '../../workers/collect/registry.js';
import { runCollector } from '../../workers/collect/run.js';
import { readStatus } from '../../workers/collect/status.js';
import { NeedsReauthError, PermanentError } from '../../workers/collect/types.js';
import { DependencyError, UserError } from '../errors.js';
import { deriveMargin, describeMargin } from '../domain/margin.js';
import type { Catalogue, Measure } from '../domain/measures.js';
import { exportObservations, importObservations, parseValue, type ExportFormat } from '../domain/metrics-io.js';
import { ObservationStore } from '../domain/observations.js';
import { parsePeriod, periodOf, type Period, type PeriodKind } from '../domain/periods.js';
import { loadConfig } from '../config.js';
import { catalogueFor } from '../metrics-config.js';
import { withContext, type CliContext } from './context.js';

/**
 * `crier metrics measures|status|collect|record|import|export`: the
 * measures-of-success dataset from the command line. Exit codes: 0 ok; 1 bad
 * input (including rejected import rows, after the good ones are kept) or
 * credentials a source refused; 2 a source or Redis that cannot be reached.
 */

function storeOf(ctx: CliContext): { store: ObservationStore; catalogue: Catalogue } {
  const catalogue = catalogueFor(ctx.config.metrics, ctx.config.configFile);
  return { catalogue, store: new ObservationStore(ctx.redis.redis, ctx.config.redis_prefix, catalogue, { zone: ctx.config.timezone }) };
}

const arrow = (m: Measure) => (m.good === 'up' ? 'up' : 'down');

export function formatMeasures(catalogue: Catalogue): string[] {
  const lines: string[] = [];
  for (const [heading, measures] of catalogue.byHeading()) {
    lines.push(heading);
    const w = Math.max(...measures.map((m) => m.name.length));
    for (const m of measures) {
      const dims = m.dimensions.length ? ` by ${m.dimensions.join(', ')}` : '';
      const target = m.target !== undefined ? `, target ${m.target}` : '';
      lines.push(`  ${m.name.padEnd(w)}  ${m.unit}, ${m.period}, good ${arrow(m)}${target}, from ${m.source}${dims}: ${m.description}`);
    }
  }
  return lines;
}

const when = (iso: string | undefined, zone: string) => (iso ? DateTime.fromISO(iso, { zone }).toFormat('yyyy-MM-dd HH:mm') : 'never');

async function status(ctx: CliContext, json: boolean): Promise<void> {
  const queue = collectQueue(ctx.config, ctx.redis);
  const zone = ctx.config.timezone;
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (const def of collectorDefinitions()) {
      const s = await readStatus(ctx.redis.redis, ctx.config.redis_prefix, def.source);
      const sched = await queue.getJobScheduler(schedulerId(def.source));
      const why = def.unconfigured(ctx.config);
      const state = why ? `not configured: ${why}` : !collectorEnabled(ctx.config, def) ? 'disabled (metrics.collectors.' + def.source + '.enabled: false)' : sched ? 'scheduled' : 'not scheduled yet (starts with `crier start` or `crier worker`)';
      rows.push({ ...s, state, cron: collectorCron(ctx.config, def), next_run_at: sched?.next ? new Date(sched.next).toISOString() : undefined });
    }
  } finally {
    await queue.close();
  }
  if (json) {
    ctx.out(JSON.stringify(rows, null, 2));
    return;
  }
  for (const r of rows) {
    ctx.out(`${String(r.source)}: ${String(r.state)}`);
    ctx.out(`  schedule:     ${String(r.cron)} (${zone}); next run ${r.next_run_at ? when(r.next_run_at as string, zone) : 'none'}`);
    const ok = r.last_success_at as string | undefined;
    ctx.out(`  last success: ${when(ok, zone)}${ok ? ` (${String(r.last_success_observations)} observations)` : ''}`);
    const bad = r.last_failure_at as string | undefined;
    ctx.out(`  last failure: ${when(bad, zone)}${bad ? `: ${String(r.last_failure_reason)}` : ''}`);
    if (r.rate_limited_until) ctx.out(`  rate limited until ${when(r.rate_limited_until as string, zone)}`);
  }
}

async function collect(ctx: CliContext, source: string | undefined): Promise<void> {
  if (source && !collectorDefinition(source)) throw new UserError(`unknown source "${source}" (sources: ${collectorSources().join(', ')})`, 'CRIER_ERR_INPUT', { field: '--source' });
  const defs = source ? [collectorDefinition(source)!] : collectorDefinitions();
  let auth = 0;
  let failed = 0;
  for (const def of defs) {
    const why = def.unconfigured(ctx.config);
    if (why) {
      if (source) throw new UserError(`${def.source} is not configured: ${why}`, 'CRIER_ERR_CONFIG', { field: '--source' });
      ctx.out(`${def.source}: skipped (${why})`);
      continue;
    }
    try {
      const r = await runCollector(def, { config: ctx.config, redis: ctx.redis.redis, log: ctx.log });
      const calls = r.calls !== undefined ? `, ${r.calls} API calls` : '';
      ctx.out(`${def.source}: ${r.observations} observations${calls}${r.warnings.length ? `, ${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}` : ''}`);
      for (const w of r.warnings) process.stderr.write(`crier: ${def.source}: warning: ${w}\n`);
    } catch (err) {
      if (err instanceof NeedsReauthError || err instanceof PermanentError) auth++;
      else failed++;
      process.stderr.write(`crier: ${def.source}: failed: ${err instanceof Error ? err.message : String(err)} (earlier observations kept)\n`);
    }
  }
  if (failed) throw new DependencyError(`${failed + auth} source(s) failed; see \`crier metrics status\``);
  if (auth) throw new UserError(`${auth} source(s) refused the request; check their settings (see \`crier metrics status\`)`, 'CRIER_ERR_CONFIG');
}

interface PeriodOpts {
  date?: string;
  week?: string;
  month?: string;
  quarter?: string;
}

function periodFrom(opts: PeriodOpts, measure: Measure, zone: string, now: Date): Period {
  const given = (['date', 'week', 'month', 'quarter'] as const).filter((k) => opts[k] !== undefined);
  if (given.length > 1) throw new UserError(`give one period, not ${given.map((g) => `--${g}`).join(' and ')}`, 'CRIER_ERR_INPUT');
  const kinds: Record<string, PeriodKind> = { date: 'day', week: 'week', month: 'month', quarter: 'quarter' };
  const k = given[0];
  return k ? parsePeriod(opts[k]!, zone, { field: `--${k}` }, kinds[k]) : periodOf(measure.period, now, zone);
}

function parseDims(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of list) {
    const eq = d.indexOf('=');
    if (eq <= 0) throw new UserError(`"${d}" is not key=value`, 'CRIER_ERR_INPUT', { field: '--dim' });
    out[d.slice(0, eq).trim()] = d.slice(eq + 1).trim();
  }
  return out;
}

async function record(ctx: CliContext, name: string, valueText: string, opts: PeriodOpts & { dim: string[]; subject?: string; population?: string; note?: string }): Promise<void> {
  const { store, catalogue } = storeOf(ctx);
  const measure = catalogue.require(name, { field: 'MEASURE' });
  if (measure.source === 'derived') throw new UserError(`${name} is worked out by Crier: record consultation.respondents with --population instead`, 'CRIER_ERR_INPUT', { field: 'MEASURE' });
  const value = parseValue(valueText, measure, { field: 'VALUE' });
  const now = new Date();
  const period = periodFrom(opts, measure, ctx.config.timezone, now);
  const key = { subject: opts.subject ?? '', dimensions: parseDims(opts.dim), period };
  const meta = opts.note ? { note: opts.note } : undefined;
  let population: number | undefined;
  if (opts.population !== undefined) {
    if (name !== 'consultation.respondents') throw new UserError('--population goes with consultation.respondents', 'CRIER_ERR_INPUT', { field: '--population' });
    population = parseValue(opts.population, undefined, { field: '--population' });
    if (population < value) throw new UserError(`population ${population} is smaller than the ${value} respondents`, 'CRIER_ERR_INPUT', { field: '--population' });
  }
  const outcome = await store.record({ ...key, measure: name, value, source: 'manual', collectedAt: now, meta });
  ctx.out(`${name} ${period.key}${key.subject ? ` ${key.subject}` : ''}${Object.entries(key.dimensions).map(([k, v]) => ` ${k}=${v}`).join('')} = ${value} (${outcome})`);
  if (population !== undefined) await store.record({ ...key, measure: 'consultation.population', value: population, source: 'manual', collectedAt: now, meta });
  if (name.startsWith('consultation.')) {
    const d = await deriveMargin(store, key, now);
    if (d) ctx.out(`consultation.margin_of_error ${period.key}: ${describeMargin(d.margin)}`);
  }
}

async function importFile(ctx: CliContext, file: string): Promise<void> {
  const { store, catalogue } = storeOf(ctx);
  const r = await importObservations(store, catalogue, file, new Date());
  ctx.out(`imported ${r.imported} (new ${r.outcomes.new}, replaced ${r.outcomes.replaced}, unchanged ${r.outcomes.unchanged}), rejected ${r.rejected}`);
  for (const m of r.margins) ctx.out(`margin of error: ${m}`);
  if (r.rejected) throw UserError.all(r.errors);
}

/**
 * `crier metrics export | head`: a reader that stops early ends the command
 * quietly (exit 0, Redis released), as Unix tools do.
 */
class PipeClosed extends Error {}
let pipeClosed = false;

function quietOnClosedPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    pipeClosed = true;
    process.stdout.emit('drain');
  });
}

async function stdoutLine(line: string): Promise<void> {
  if (pipeClosed) throw new PipeClosed();
  if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain');
}

async function exportCmd(ctx: CliContext, opts: { from?: string; to?: string; measure: string[]; format: ExportFormat }): Promise<void> {
  quietOnClosedPipe();
  const { store, catalogue } = storeOf(ctx);
  for (const m of opts.measure) catalogue.require(m, { field: '--measure' });
  const zone = ctx.config.timezone;
  const from = opts.from ? parsePeriod(opts.from, zone, { field: '--from' }).start : undefined;
  const to = opts.to ? parsePeriod(opts.to, zone, { field: '--to' }).end : undefined;
  if (from && to && to <= from) throw new UserError('--to is before --from', 'CRIER_ERR_INPUT', { field: '--to' });
  try {
    await exportObservations(store, catalogue, { from, to, measures: opts.measure.length ? opts.measure : undefined, format: opts.format }, stdoutLine);
  } catch (err) {
    if (!(err instanceof PipeClosed)) throw err;
  }
}

const collectList = (v: string, prev: string[]) => [...prev, v];

export function registerMetricsCommands(program: Command): void {
  const metrics = program.command('metrics').description('measures of success: the catalogue, collectors and the observations dataset');
  metrics
    .command('measures')
    .description('the catalogue of measures, by strategy heading')
    .option('--json', 'as JSON')
    .action((opts: { json?: boolean }) => {
      // The catalogue is configuration: no Redis needed.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
      const config = loadConfig();
      const catalogue = catalogueFor(config.metrics, config.configFile);
      const out = (l: string) => process.stdout.write(`${l}\n`);
      if (opts.json) out(JSON.stringify(catalogue.list(), null, 2));
      else for (const l of formatMeasures(catalogue)) out(l);
    });
  metrics
    .command('status')
    .description('each collector: last success, last failure, next run')
    .option('--json', 'as JSON')
    .action((opts: { json?: boolean }) => withContext((ctx) => status(ctx, opts.json === true)));
  metrics
    .command('collect')
    .description('run the collectors now (all configured ones, or one)')
    .addOption(new Option('--source <source>', 'one source').choices(collectorSources()))
    .action((opts: { source?: string }) => withContext((ctx) => collect(ctx, opts.source)));
  metrics
    .command('record')
    .description('record one figure by hand (replaces an earlier one for the same period)')
    .argument('<measure>', 'measure name (see `crier metrics measures`)')
    .argument('<value>', 'the figure')
    .option('--date <YYYY-MM-DD>', 'a day')
    .option('--week <YYYY-Www>', 'an ISO week')
    .option('--month <YYYY-MM>', 'a month')
    .option('--quarter <YYYY-Qn>', 'a quarter')
    .option('--dim <key=value>', 'a dimension (repeatable)', collectList, [])
    .option('--subject <name>', 'what it is about (a consultation, a campaign)')
    .option('--population <N>', 'consultation.respondents: the population, for the margin of error')
    .option('--note <text>', 'a note kept with the figure')
    .action((measure: string, value: string, opts: PeriodOpts & { dim: string[]; subject?: string; population?: string; note?: string }) =>
      withContext((ctx) => record(ctx, measure, value, opts)),
    );
  metrics
    .command('import')
    .description('import observations from CSV: measure,value, a period column (period|date|week|month|quarter), optional subject,population,note, other columns are dimensions')
    .argument('<file>', 'CSV file with a header row')
    .action((file: string) => withContext((ctx) => importFile(ctx, file)));
  metrics
    .command('export')
    .description('stream observations as CSV or NDJSON to stdout')
    .option('--from <D>', 'periods starting on or after (YYYY-MM-DD, or a week, month, quarter)')
    .option('--to <D>', 'periods starting on or before the end of this day/period')
    .option('--measure <M>', 'only this measure (repeatable)', collectList, [])
    .addOption(new Option('--format <format>', 'csv or ndjson').choices(['csv', 'ndjson']).default('csv'))
    .action((opts: { from?: string; to?: string; measure: string[]; format: ExportFormat }) => withContext((ctx) => exportCmd(ctx, opts)));
}
