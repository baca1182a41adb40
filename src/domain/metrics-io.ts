import path from 'node:path';
import { UserError, type Where } from '../errors.js';
import { csvField, neutraliseCell, readCsvRecords } from './csv.js';
import { deriveMargin, describeMargin } from './margin.js';
import type { Catalogue, Measure } from './measures.js';
import { validateObservation, type Observation, type ObservationInput, type ObservationStore, type RecordOutcome } from './observations.js';
import { parsePeriod, type PeriodKind } from './periods.js';

/**
 * Observations in and out as files: `crier metrics import FILE.csv` (one row
 * an observation; bad rows reported with line and reason, good rows kept; a
 * file that cannot be read as a whole writes nothing) and `crier metrics
 * export` (streamed CSV or NDJSON, every field).
 */

/** "1,234", "£2,500.50", "45%" → number; the symbol must suit the unit. */
export function parseValue(text: string, measure: Measure | undefined, where: Where): number {
  const t = text.trim();
  let s = t.replace(/,(?=\d{3}(\D|$))/g, '');
  if (s.startsWith('£')) {
    if (measure && measure.unit !== 'gbp') throw new UserError(`"${t}": ${measure.name} is not in pounds`, 'CRIER_ERR_INPUT', where);
    s = s.slice(1);
  }
  if (s.endsWith('%')) {
    if (measure && measure.unit !== 'percent') throw new UserError(`"${t}": ${measure.name} is not a percentage`, 'CRIER_ERR_INPUT', where);
    s = s.slice(0, -1);
  }
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(s.trim())) throw new UserError(`"${t}" is not a number`, 'CRIER_ERR_INPUT', where);
  return Number(s);
}

const PERIOD_COLUMNS: Record<string, PeriodKind | undefined> = { period: undefined, date: 'day', week: 'week', month: 'month', quarter: 'quarter' };
const FIXED = new Set(['measure', 'value', 'subject', 'population', 'note', ...Object.keys(PERIOD_COLUMNS)]);

export interface ImportReport {
  /** Rows written (new + replaced + unchanged). */
  imported: number;
  outcomes: Record<RecordOutcome, number>;
  rejected: number;
  /** One per rejected row: file:line, field and reason. */
  errors: UserError[];
  /** Margins of error derived for consultations in the file. */
  margins: string[];
}

export async function importObservations(store: ObservationStore, catalogue: Catalogue, file: string, now: Date): Promise<ImportReport> {
  let header: string[] | undefined;
  const good: Array<{ line: number; input: ObservationInput }> = [];
  const errors: UserError[] = [];
  const source = 'import';
  const fileName = path.basename(file);
  for await (const rec of readCsvRecords(file)) {
    if (!header) {
      header = rec.fields.map((f) => f.trim().toLowerCase());
      const missing = ['measure', 'value'].filter((c) => !header!.includes(c));
      if (missing.length) throw new UserError(`the header row needs columns ${missing.join(' and ')} (found: ${header.join(', ')})`, 'CRIER_ERR_INPUT', { file, line: rec.line });
      if (!header.some((c) => c in PERIOD_COLUMNS)) throw new UserError('the header row needs a period column: period, date, week, month or quarter', 'CRIER_ERR_INPUT', { file, line: rec.line });
      const dup = header.find((c, i) => c !== '' && header!.indexOf(c) !== i);
      if (dup) throw new UserError(`column "${dup}" appears twice in the header`, 'CRIER_ERR_INPUT', { file, line: rec.line });
      // Dimensions are built as plain objects: a "__proto__" column would vanish from every row without a word.
      if (header.includes('__proto__')) throw new UserError('column "__proto__" cannot be a dimension: rename it', 'CRIER_ERR_INPUT', { file, line: rec.line });
      continue;
    }
    if (rec.fields.every((f) => f.trim() === '')) continue;
    const where = (field: string): Where => ({ file, line: rec.line, field });
    try {
      if (rec.fields.length > header.length) throw new UserError(`${rec.fields.length} fields, the header has ${header.length}`, 'CRIER_ERR_INPUT', { file, line: rec.line });
      const cell = (name: string) => (rec.fields[header!.indexOf(name)] ?? '').trim();
      const measureName = cell('measure');
      if (!measureName) throw new UserError('required', 'CRIER_ERR_INPUT', where('measure'));
      const measure = catalogue.require(measureName, where('measure'));
      if (!cell('value')) throw new UserError('required (a missing figure is left out, never 0)', 'CRIER_ERR_INPUT', where('value'));
      const value = parseValue(cell('value'), measure, where('value'));
      const given = Object.keys(PERIOD_COLUMNS).filter((c) => header!.includes(c) && cell(c) !== '');
      if (given.length === 0) throw new UserError('no period: fill one of period, date, week, month, quarter', 'CRIER_ERR_INPUT', where('period'));
      if (given.length > 1) throw new UserError(`more than one period given (${given.join(', ')})`, 'CRIER_ERR_INPUT', where(given[1]!));
      const col = given[0]!;
      const period = parsePeriod(cell(col), store.zone, where(col), PERIOD_COLUMNS[col]);
      const dimensions: Record<string, string> = {};
      for (const [i, name] of header.entries()) {
        if (FIXED.has(name) || name === '') continue;
        const v = (rec.fields[i] ?? '').trim();
        if (v !== '') dimensions[name] = v;
      }
      const note = cell('note');
      const input: ObservationInput = { measure: measure.name, subject: cell('subject'), dimensions, period, value, source, collectedAt: now, meta: { file: fileName, ...(note ? { note } : {}) } };
      validateObservation(catalogue, input, { file, line: rec.line });
      const population = cell('population');
      const rows = [input];
      if (population) {
        if (measure.name !== 'consultation.respondents') throw new UserError('population goes with consultation.respondents only', 'CRIER_ERR_INPUT', where('population'));
        const N = parseValue(population, undefined, where('population'));
        if (N < value) throw new UserError(`population ${N} is smaller than the ${value} respondents`, 'CRIER_ERR_INPUT', where('population'));
        rows.push({ ...input, measure: 'consultation.population', value: N });
      }
      for (const r of rows) good.push({ line: rec.line, input: r });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      errors.push(err);
    }
  }
  if (!header) throw new UserError('the file has no header row', 'CRIER_ERR_INPUT', { file, line: 1 });
  // The whole file has been read: only now is anything written.
  const outcomes = await store.recordMany(good.map((g) => g.input));
  const margins: string[] = [];
  const seen = new Set<string>();
  for (const { input } of good) {
    if (input.measure !== 'consultation.respondents' && input.measure !== 'consultation.population') continue;
    const k = JSON.stringify([input.subject, input.dimensions, typeof input.period === 'string' ? input.period : input.period.key]);
    if (seen.has(k)) continue;
    seen.add(k);
    const d = await deriveMargin(store, { subject: input.subject, dimensions: input.dimensions, period: input.period }, now);
    if (d) margins.push(`${input.subject || 'consultation'} ${typeof input.period === 'string' ? input.period : input.period.key}: ${describeMargin(d.margin)}`);
  }
  return { imported: good.length, outcomes, rejected: errors.length, errors, margins };
}

export type ExportFormat = 'csv' | 'ndjson';

export const EXPORT_COLUMNS = ['measure', 'subject', 'dimensions', 'period', 'period_kind', 'period_start', 'period_end', 'value', 'unit', 'source', 'collected_at', 'meta'] as const;


/** One observation as a CSV line: text cells neutralised, the value as a plain number. */
export function observationCsv(o: Observation, catalogue: Catalogue): string {
  const text = (v: string) => csvField(neutraliseCell(v));
  const json = (r: Record<string, string> | undefined) => (r && Object.keys(r).length ? text(JSON.stringify(r)) : '');
  return [
    text(o.measure),
    text(o.subject),
    json(o.dimensions),
    o.period,
    o.period_kind,
    o.period_start,
    o.period_end,
    String(o.value),
    catalogue.get(o.measure)?.unit ?? '',
    text(o.source),
    o.collected_at,
    json(o.meta),
  ].join(',');
}

export function observationJson(o: Observation, catalogue: Catalogue): string {
  return JSON.stringify({ ...o, unit: catalogue.get(o.measure)?.unit, meta: o.meta ?? {} });
}

/** Streams observations to `write` (which should wait for drain): memory stays flat. Returns the count. */
export async function exportObservations(
  store: ObservationStore,
  catalogue: Catalogue,
  opts: { from?: Date; to?: Date; measures?: string[]; format: ExportFormat },
  write: (line: string) => Promise<void> | void,
): Promise<number> {
  if (opts.format === 'csv') await write(EXPORT_COLUMNS.join(','));
  let n = 0;
  for await (const o of store.iterate({ measures: opts.measures, from: opts.from, to: opts.to })) {
    const line = opts.format === 'csv' ? observationCsv(o, catalogue) : observationJson(o, catalogue);
    const w = write(line);
    if (w) await w;
    n++;
  }
  return n;
}
