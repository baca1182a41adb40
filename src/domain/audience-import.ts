import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, openSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { UserError } from '../errors.js';
import {
  audienceKeys,
  checkListName,
  suppressionHashes,
  emailProblem,
  execAll,
  normaliseEmail,
  subscriberId,
  type AudienceEventHook,
} from './audience-keys.js';
import { describeEncoding, readCsvRecords, safeCsvLine, scanCsv, unneutraliseCell, type CsvRecord } from './csv.js';
import type { PhoneResult } from './phone.js';
import { defineScript, runScript } from '../redis/scripts.js';

/**
 * `subscribers import`: streams a CSV into the audience in pipelined batches.
 * Each row goes through one Lua script so the suppression check and the write
 * are atomic: an unsubscribe racing the import can never be undone by it.
 */

export interface ImportResult {
  imported: number;
  updated: number;
  rejected: number;
  /** Rows for suppressed or unsubscribed addresses: left untouched. */
  suppressed: number;
  rejectsFile?: string;
  /** Set when some of the file was not UTF-8: which lines, and how they were read. */
  encodingNote?: string;
}

export interface ImportOptions {
  /** Consent source; default `import:<file basename>`. */
  source?: string;
  now?: () => Date;
  /** Where the rejects file goes (the CLI passes `<dataDir>/rejects`). */
  rejectsDir?: string;
  /** Rows per Redis round trip. */
  batchSize?: number;
  onEvent?: AudienceEventHook;
  /** Called after each batch with the counts so far and the file line reached. */
  onProgress?: (soFar: Readonly<ImportResult>, line: number) => void;
  /** Country for phone numbers written without a country code (default GB). */
  phoneCountry?: string;
  /** The derived 'suppression' key: the suppression list is checked with keyed hashes. */
  suppressionKey?: Buffer;
}

type Column = 'email' | 'name' | 'area' | 'topics' | 'phone';
/** Required columns; `phone` is optional. */
const COLUMNS: Column[] = ['email', 'name', 'area', 'topics'];
const ALIASES: Record<string, Column> = {
  email: 'email',
  'e-mail': 'email',
  'email address': 'email',
  name: 'name',
  area: 'area',
  topics: 'topics',
  topic: 'topics',
  phone: 'phone',
  'phone number': 'phone',
  mobile: 'phone',
  'mobile number': 'phone',
  'mobile phone': 'phone',
};
const MAX_LEN: Record<Exclude<Column, 'email' | 'phone'>, number> = { name: 200, area: 100, topics: 500 };

// One call per batch (rows as ARGV groups of 8, their hash keys after the 5 fixed keys).
// New subscribers get consent and a sequence number; existing ones keep consent and take
// non-empty new values (a phone number too); unsubscribed or suppressed ones (or, for this
// list, those who unsubscribed from it: field unsub:<list>) are never touched.
// Replies per row: 1 imported, 2 updated, 3 suppressed.
const UPSERT = defineScript(
  'audience_upsert',
  `
local out = {}
local list, source, now = ARGV[1], ARGV[2], ARGV[3]
for r = 1, #KEYS - 6 do
  local key, a = KEYS[6 + r], 3 + (r - 1) * 8
  local id, hash, email, name, area, topics, phone, legacy = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local status = redis.call('HGET', key, 'status')
  -- A suppression entry from before the keyed hash is replaced by the keyed one.
  if legacy ~= hash and redis.call('SREM', KEYS[4], legacy) == 1 then redis.call('SADD', KEYS[4], hash) end
  if status == 'unsubscribed' or redis.call('SISMEMBER', KEYS[4], hash) == 1 or redis.call('HEXISTS', key, 'unsub:' .. list) == 1 then
    out[r] = 3
  else
    if status then
      local upd = {'updated_at', now}
      if name ~= '' then upd[#upd + 1] = 'name'; upd[#upd + 1] = name end
      if area ~= '' then upd[#upd + 1] = 'area'; upd[#upd + 1] = area end
      if topics ~= '' then upd[#upd + 1] = 'topics'; upd[#upd + 1] = topics end
      if phone ~= '' then upd[#upd + 1] = 'phone'; upd[#upd + 1] = phone end
      redis.call('HSET', key, unpack(upd))
      out[r] = 2
    else
      redis.call('HSET', key, 'email', email, 'name', name, 'area', area, 'topics', topics,
        'status', 'subscribed', 'consent_source', source, 'consent_at', now,
        'created_at', now, 'updated_at', now)
      if phone ~= '' then redis.call('HSET', key, 'phone', phone) end
      out[r] = 1
    end
    local score = status and redis.call('ZSCORE', KEYS[1], id)
    if not score then
      score = redis.call('INCR', KEYS[5])
      -- The first subscriber of an empty audience: every unsubscribe from now on is kept in the sets.
      if score == 1 then redis.call('SET', KEYS[6], '1') end
      redis.call('ZADD', KEYS[1], score, id)
    end
    redis.call('ZADD', KEYS[2], 'NX', score, id)
  end
end
redis.call('SADD', KEYS[3], list)
return out`,
);

interface Row {
  email: string;
  name: string;
  area: string;
  topics: string;
  /** E.164, or '' when the row has none. */
  phone: string;
}

/** Collapses line breaks, tabs and control characters: these values end up in mail headers and pages. */
function clean(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
}

function cleanTopics(value: string): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const part of value.split(';')) {
    const t = clean(part);
    if (t !== '' && !seen.has(t.toLowerCase())) {
      seen.add(t.toLowerCase());
      out.push(t);
    }
  }
  return out.join(';');
}

function headerName(raw: string): string {
  return raw
    .replace(/^(\uFEFF|ï»¿)/, '')
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, ' ');
}

function readHeader(rec: CsvRecord, file: string): Map<Column, number> {
  const cols = new Map<Column, number>();
  rec.fields.forEach((f, i) => {
    // Own keys only: "constructor" or "__proto__" in a header is not one of ours.
    const name = headerName(f);
    const col = Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined;
    if (col && !cols.has(col)) cols.set(col, i);
  });
  const where = { file, line: rec.line };
  if (cols.size === 0 && rec.fields.length === 1 && /email/i.test(rec.raw) && /[;\t]/.test(rec.raw)) {
    throw new UserError(
      'the header is separated by semicolons or tabs, not commas; save the file as "CSV (comma delimited)"',
      'CRIER_ERR_INPUT',
      where,
    );
  }
  if (cols.size === 0) {
    const seen = rec.raw.length > 80 ? `${rec.raw.slice(0, 80)}…` : rec.raw;
    throw new UserError(
      `not a CSV file with a header row: expected columns email,name,area,topics (and optionally phone), found ${JSON.stringify(seen)}`,
      'CRIER_ERR_INPUT',
      where,
    );
  }
  for (const col of COLUMNS) {
    if (!cols.has(col)) {
      throw new UserError(`the header has no "${col}" column (expected email,name,area,topics)`, 'CRIER_ERR_INPUT', {
        ...where,
        field: col,
      });
    }
  }
  return cols;
}

/** A row's problem (for the rejects file), or the clean row. */
type PhoneCheck = (text: string) => PhoneResult;

function readRow(rec: CsvRecord, cols: Map<Column, number>, width: number, checkPhone: PhoneCheck | undefined): Row | string {
  for (const col of COLUMNS) {
    if ((cols.get(col) ?? 0) >= rec.fields.length) return `missing column "${col}"`;
  }
  if (rec.fields.length > width && rec.fields.slice(width).some((f) => f.trim() !== '')) {
    return `${rec.fields.length} fields but the header has ${width} (an unquoted comma?)`;
  }
  const get = (col: Column): string => unneutraliseCell(rec.fields[cols.get(col) ?? 0] ?? '');
  const email = normaliseEmail(get('email'));
  const problem = emailProblem(email);
  if (problem) return problem;
  let phone = '';
  const phoneText = checkPhone ? get('phone').trim() : '';
  if (checkPhone && phoneText !== '') {
    const checked = checkPhone(phoneText);
    if ('problem' in checked) return checked.problem;
    phone = checked.phone;
  }
  const row: Row = { email, name: clean(get('name')), area: clean(get('area')), topics: cleanTopics(get('topics')), phone };
  for (const col of ['name', 'area', 'topics'] as const) {
    const len = col === 'topics' ? get('topics').trim().length : row[col].length;
    if (len > MAX_LEN[col]) return `${col} longer than ${MAX_LEN[col]} characters (${len})`;
  }
  return row;
}

/** A data row as read: the clean row, or the reason it is rejected. */
interface Pending {
  line: number;
  raw: string;
  row: Row | string;
}

/**
 * Records each address's first line in this file and returns, for rows whose
 * address came earlier (in this batch or an earlier one), that first line.
 */
async function firstLines(redis: Redis, seenKey: string, rows: Array<Pending & { row: Row }>): Promise<Map<Pending, string>> {
  const out = new Map<Pending, string>();
  if (rows.length === 0) return out;
  const pipe = redis.pipeline();
  for (const e of rows) pipe.hsetnx(seenKey, subscriberId(e.row.email), String(e.line));
  pipe.expire(seenKey, 86_400);
  const added = (await execAll(pipe)).slice(0, rows.length) as number[];
  const dups = rows.filter((_, i) => added[i] === 0);
  if (dups.length === 0) return out;
  const lines = (await redis.hmget(seenKey, ...dups.map((e) => subscriberId(e.row.email)))) as Array<string | null>;
  dups.forEach((e, i) => out.set(e, lines[i] ?? '?'));
  return out;
}

/** Phone numbers are checked with libphonenumber, loaded only for a file that has a phone column. */
async function phoneChecker(country: string): Promise<PhoneCheck> {
  const { knownCountry, normalisePhone } = await import('./phone.js');
  if (!knownCountry(country)) {
    throw new UserError(`unknown country "${country}" for phone numbers (a two-letter code such as GB)`, 'CRIER_ERR_CONFIG', { field: 'sms.default_country' });
  }
  return (text) => normalisePhone(text, country);
}

/** The rejects file, opened at the first bad row so clean imports leave nothing behind. */
class RejectsWriter {
  private out?: WriteStream;
  file?: string;

  constructor(
    private readonly dir: string,
    private readonly base: string,
    private readonly stamp: string,
  ) {}

  async add(line: number, reason: string, raw: string): Promise<void> {
    if (!this.out) this.open();
    const text = raw.length > 10_000 ? `${raw.slice(0, 10_000)}…` : raw;
    if (!this.out?.write(`${safeCsvLine([String(line), reason, text])}\n`)) await once(this.out as WriteStream, 'drain');
  }

  private open(): void {
    let fd: number | undefined;
    try {
      mkdirSync(this.dir, { recursive: true });
      for (let n = 1; fd === undefined; n++) {
        const file = path.join(this.dir, `${this.base}-${this.stamp}${n > 1 ? `-${n}` : ''}.rejects.csv`);
        try {
          fd = openSync(file, 'wx');
          this.file = file;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
        }
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new UserError(`cannot write the rejects file: ${msg}`, 'CRIER_ERR_INPUT', { file: this.dir });
    }
    this.out = createWriteStream('', { fd });
    this.out.write('line,reason,raw\n');
  }

  async close(): Promise<void> {
    if (!this.out) return;
    const out = this.out;
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(resolve);
    });
  }
}

export async function importSubscribers(
  redis: Redis,
  prefix: string,
  file: string,
  list: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  checkListName(list);
  const now = opts.now ?? (() => new Date());
  const base = path.basename(file).replace(/\.csv$/i, '');
  const source = opts.source ?? `import:${path.basename(file)}`;
  const stamp = now().toISOString().replace(/[-:.]/g, '');
  const rejects = new RejectsWriter(opts.rejectsDir ?? path.join(os.tmpdir(), 'crier-rejects'), base, stamp);
  const batchSize = opts.batchSize ?? 500;
  const k = audienceKeys(prefix);
  const result: ImportResult = { imported: 0, updated: 0, rejected: 0, suppressed: 0 };
  // The whole file is checked (binary, unclosed quote, a huge record) before anything is written.
  const scan = await scanCsv(file);
  const encodingNote = describeEncoding(scan);
  if (encodingNote) result.encodingNote = encodingNote;
  // Addresses seen in this file (id → first line), in Redis so memory stays flat however long the file.
  const seenKey = `${prefix}:import:${stamp}:${randomBytes(4).toString('hex')}:seen`;
  let batch: Pending[] = [];

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const entries = batch;
    batch = [];
    const valid = entries.filter((e): e is Pending & { row: Row } => typeof e.row !== 'string');
    const firstLine = await firstLines(redis, seenKey, valid);
    const upserts: Row[] = [];
    for (const e of entries) {
      const first = typeof e.row === 'string' ? undefined : firstLine.get(e);
      const reason = typeof e.row === 'string' ? e.row : first !== undefined ? `duplicate address: already on line ${first} of this file` : undefined;
      if (reason !== undefined) {
        result.rejected++;
        await rejects.add(e.line, reason, e.raw);
      } else upserts.push(e.row as Row);
    }
    if (upserts.length === 0) return;
    const at = now().toISOString();
    const keys = [k.subs, k.list(list), k.lists, k.suppressed, k.seq, k.exclusionsIndexed];
    const args = [list, source, at];
    for (const r of upserts) {
      const id = subscriberId(r.email);
      keys.push(k.sub(id));
      const { keyed, legacy } = suppressionHashes(r.email, opts.suppressionKey);
      args.push(id, keyed, r.email, r.name, r.area, r.topics, r.phone, legacy);
    }
    const codes = (await runScript(redis, UPSERT, keys, args)) as number[];
    for (const code of codes) {
      if (code === 1) result.imported++;
      else if (code === 2) result.updated++;
      else result.suppressed++;
    }
  };

  try {
    let cols: Map<Column, number> | undefined;
    let width = 0;
    let checkPhone: PhoneCheck | undefined;
    for await (const rec of readCsvRecords(file, scan)) {
      const blank = rec.fields.length === 1 && (rec.fields[0] ?? '').trim() === '';
      if (blank) continue;
      if (!cols) {
        cols = readHeader(rec, file);
        width = rec.fields.length;
        if (cols.has('phone')) checkPhone = await phoneChecker(opts.phoneCountry ?? 'GB');
        continue;
      }
      batch.push({ line: rec.line, raw: rec.raw, row: readRow(rec, cols, width, checkPhone) });
      if (batch.length >= batchSize) {
        await flush();
        opts.onProgress?.(result, rec.line);
      }
    }
    if (!cols) throw new UserError('the file has no header row', 'CRIER_ERR_INPUT', { file, line: 1 });
    await flush();
  } finally {
    await rejects.close();
    await redis.del(seenKey);
  }
  if (rejects.file) result.rejectsFile = rejects.file;
  await opts.onEvent?.('subscriber.import', {
    file: path.basename(file),
    list,
    imported: result.imported,
    updated: result.updated,
    rejected: result.rejected,
    suppressed: result.suppressed,
  });
  return result;
}
