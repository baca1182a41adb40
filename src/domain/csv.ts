import { createReadStream } from 'node:fs';
import iconv from 'iconv-lite';
import { UserError } from '../errors.js';

/**
 * A streaming CSV reader for files people export from spreadsheets: RFC 4180
 * quoting (commas, doubled quotes and line breaks inside quotes), CRLF or LF,
 * a UTF-8 BOM, and Windows-1252 when the bytes are not valid UTF-8. The file
 * is never held whole: one pass checks the bytes, a second parses.
 */

export interface CsvRecord {
  /** Physical line (1-based) where the record starts. */
  line: number;
  fields: string[];
  /** The record's text as it appeared in the file, for reject reports. */
  raw: string;
}

export type CsvEncoding = 'utf-8' | 'windows-1252';

/** A record longer than this is almost surely an unterminated quote eating the file. */
const MAX_RECORD_CHARS = 1_000_000;

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

/** Incremental RFC 4180 parser: push decoded text, take finished records. */
export class CsvParser {
  private fields: string[] = [];
  private field = '';
  private raw = '';
  private inQuotes = false;
  /** The current field began with a quote (so a quote inside it ends the quoting). */
  private quoted = false;
  private afterCR = false;
  private line = 1;
  private recordLine = 1;
  private started = false;
  /** A quote ended a chunk inside quotes: doubled or closing, the next chunk decides. */
  private pendingQuote = false;

  constructor(private readonly file: string) {}

  push(text: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    let recStart = 0;
    let i = 0;
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (this.afterCR) {
        this.afterCR = false;
        if (c === LF) {
          // the LF of a CRLF that ended the previous record
          i++;
          recStart = i;
          continue;
        }
      }
      if (!this.started) {
        this.started = true;
        this.recordLine = this.line;
      }
      if (this.inQuotes) {
        const q = text.indexOf('"', i);
        const end = q === -1 ? n : q;
        const part = text.slice(i, end);
        this.countLines(part);
        this.field += part;
        if (q === -1) {
          i = n;
          break;
        }
        if (q + 1 < n) {
          if (text.charCodeAt(q + 1) === QUOTE) {
            this.field += '"';
            i = q + 2;
          } else {
            this.inQuotes = false;
            i = q + 1;
          }
        } else {
          this.inQuotes = false;
          this.pendingQuote = true;
          i = q + 1;
        }
        continue;
      }
      if (this.pendingQuote) {
        this.pendingQuote = false;
        if (c === QUOTE) {
          this.field += '"';
          this.inQuotes = true;
          i++;
          continue;
        }
      }
      if (c === COMMA) {
        this.endField();
        i++;
      } else if (c === LF || c === CR) {
        this.raw += text.slice(recStart, i);
        out.push(this.endRecord());
        this.line++;
        if (c === CR) this.afterCR = true;
        i++;
        recStart = i;
      } else if (c === QUOTE && this.field === '' && !this.quoted) {
        this.inQuotes = true;
        this.quoted = true;
        i++;
      } else {
        // unquoted text; a quote not opening the field is kept as written
        let j = i + 1;
        while (j < n) {
          const d = text.charCodeAt(j);
          if (d === COMMA || d === LF || d === CR) break;
          j++;
        }
        this.field += text.slice(i, j);
        i = j;
      }
    }
    if (recStart < n) this.raw += text.slice(recStart);
    if (this.raw.length + this.field.length > MAX_RECORD_CHARS) {
      throw new UserError(
        `a record is longer than ${MAX_RECORD_CHARS} characters (is a quote never closed?)`,
        'CRIER_ERR_INPUT',
        { file: this.file, line: this.recordLine },
      );
    }
    return out;
  }

  /** Flushes the last record when the file does not end with a line break. */
  end(): CsvRecord[] {
    this.pendingQuote = false;
    if (this.inQuotes) {
      throw new UserError('a quoted field is never closed', 'CRIER_ERR_INPUT', {
        file: this.file,
        line: this.recordLine,
      });
    }
    if (!this.started) return [];
    return [this.endRecord()];
  }

  private countLines(part: string): void {
    let k = part.indexOf('\n');
    while (k !== -1) {
      this.line++;
      k = part.indexOf('\n', k + 1);
    }
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.quoted = false;
  }

  private endRecord(): CsvRecord {
    this.endField();
    const rec: CsvRecord = { line: this.recordLine, fields: this.fields, raw: this.raw };
    this.fields = [];
    this.raw = '';
    this.started = false;
    return rec;
  }
}

const CHUNK = 64 * 1024;

function notCsv(file: string, why: string): UserError {
  return new UserError(`not a CSV file: ${why}`, 'CRIER_ERR_INPUT', { file });
}

function openError(file: string, err: unknown): UserError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const why =
    code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(err);
  return new UserError(`cannot read file: ${why}`, 'CRIER_ERR_INPUT', { file });
}

/** Recognises common non-CSV files by their first bytes, for a message that says what to do. */
function sniffMagic(head: Buffer, file: string): void {
  const starts = (sig: number[]): boolean => sig.every((b, k) => head[k] === b);
  if (starts([0x50, 0x4b, 0x03, 0x04]))
    throw notCsv(file, 'it is a zip archive (an .xlsx workbook?); save it as "CSV UTF-8" and try again');
  if (starts([0x89, 0x50, 0x4e, 0x47])) throw notCsv(file, 'it is a PNG image');
  if (starts([0x25, 0x50, 0x44, 0x46])) throw notCsv(file, 'it is a PDF document');
  if (starts([0xd0, 0xcf, 0x11, 0xe0]))
    throw notCsv(file, 'it is an old Excel (.xls) workbook; save it as "CSV UTF-8" and try again');
  if (starts([0xff, 0xfe]) || starts([0xfe, 0xff]))
    throw notCsv(file, 'it is UTF-16 text; save it as "CSV UTF-8" and try again');
}

/**
 * First pass over the bytes: rejects binary files and decides the encoding.
 * Streaming keeps memory flat; the second pass re-reads from disk.
 */
export async function detectEncoding(file: string): Promise<CsvEncoding> {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let valid = true;
  let offset = 0;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
      const buf = chunk as Buffer;
      if (offset === 0) sniffMagic(buf, file);
      const nul = buf.indexOf(0);
      if (nul !== -1) throw notCsv(file, `it holds binary data (a NUL byte at offset ${offset + nul})`);
      if (valid) {
        try {
          utf8.decode(buf, { stream: true });
        } catch {
          valid = false;
        }
      }
      offset += buf.length;
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw openError(file, err);
  }
  if (offset === 0) throw new UserError('the file is empty (a header row is required)', 'CRIER_ERR_INPUT', { file, line: 1 });
  if (valid) {
    try {
      utf8.decode();
    } catch {
      valid = false;
    }
  }
  return valid ? 'utf-8' : 'windows-1252';
}

/** Streams the file's records (header included) in order. */
export async function* readCsvRecords(file: string, encoding?: CsvEncoding): AsyncGenerator<CsvRecord> {
  const enc = encoding ?? (await detectEncoding(file));
  const parser = new CsvParser(file);
  // TextDecoder drops a UTF-8 BOM and joins characters split across chunks.
  const utf8 = new TextDecoder('utf-8');
  const decode = (buf: Buffer): string =>
    enc === 'utf-8' ? utf8.decode(buf, { stream: true }) : iconv.decode(buf, 'windows-1252');
  const stream = createReadStream(file, { highWaterMark: CHUNK });
  try {
    for await (const chunk of stream) {
      yield* parser.push(decode(chunk as Buffer));
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw openError(file, err);
  } finally {
    stream.destroy();
  }
  if (enc === 'utf-8') yield* parser.push(utf8.decode());
  yield* parser.end();
}

/** Quotes a value for CSV output when it needs it. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) || /^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(values: string[]): string {
  return values.map(csvField).join(',');
}

/**
 * Spreadsheets run a cell that starts with = + - @ (or a tab or CR before one)
 * as a formula: `=HYPERLINK("https://evil.example","Click")` in a subscriber's
 * name becomes a live link in the team's export. Every CSV Crier writes for
 * people to open (subscribers export, rejects files, metrics export) passes
 * its cells through here: such a cell gets a leading apostrophe, the OWASP
 * advice, so the spreadsheet shows it as text. `subscribers import` takes the
 * apostrophe off again (`unneutraliseCell`), so an export re-imports unchanged.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEUTRALISED = /^'[=+\-@\t\r]/;

export function neutraliseCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/** The inverse, for cells read back: only an apostrophe that neutralised a formula start is removed. */
export function unneutraliseCell(value: string): string {
  return NEUTRALISED.test(value) ? value.slice(1) : value;
}

/** A CSV line safe to open in a spreadsheet: every cell neutralised, then quoted as needed. */
export function safeCsvLine(values: string[]): string {
  return csvLine(values.map(neutraliseCell));
}
