import { createReadStream } from 'node:fs';
import iconv from 'iconv-lite';
import { UserError } from '../errors.js';

/**
 * A streaming CSV reader for files people export from spreadsheets: RFC 4180
 * quoting (commas, doubled quotes and line breaks inside quotes), CRLF or LF,
 * a UTF-8 BOM, and Windows-1252 for lines that are not valid UTF-8. The file
 * is never held whole: one pass checks the bytes and the structure, a second
 * parses, so a file that cannot be read as a whole is refused before anything
 * is written.
 */

export interface CsvRecord {
  /** Physical line (1-based) where the record starts. */
  line: number;
  fields: string[];
  /** The record's text as it appeared in the file, for reject reports. */
  raw: string;
}

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
    if (this.raw.length + this.field.length > MAX_RECORD_CHARS) this.tooLong();
    return out;
  }

  private tooLong(): never {
    throw new UserError(`a record is longer than ${MAX_RECORD_CHARS} characters (is a quote never closed?)`, 'CRIER_ERR_INPUT', {
      file: this.file,
      line: this.recordLine,
    });
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
    // Text arrives a line at a time, so a whole over-long record can end inside one push.
    if (this.raw.length > MAX_RECORD_CHARS) this.tooLong();
    this.endField();
    const rec: CsvRecord = { line: this.recordLine, fields: this.fields, raw: this.raw };
    this.fields = [];
    this.raw = '';
    this.started = false;
    return rec;
  }
}

const CHUNK = 64 * 1024;
/** A physical line longer than this many bytes holds a record over MAX_RECORD_CHARS (UTF-8 is at most 4 bytes a character). */
const MAX_LINE_BYTES = 4 * MAX_RECORD_CHARS;

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

/** Lines named in the warning about text that is not UTF-8. */
const NOT_UTF8_SHOWN = 10;

const hasHighByte = (buf: Buffer): boolean => buf.some((b) => b >= 0x80);

/**
 * Bytes → text, a physical line at a time where it matters: text is read as
 * UTF-8, and only a line that is not valid UTF-8 is read as Windows-1252 (what
 * Excel writes for "CSV" on a UK Windows machine). Re-reading the whole file
 * as Windows-1252 for one stray byte would turn every "é" elsewhere into "Ã©".
 * Line breaks are plain ASCII in both, so a line can be cut out of the bytes
 * before it is decoded.
 */
class LineDecoder {
  /** The first physical lines (1-based, counted by LF) that were not UTF-8 and were read as Windows-1252. */
  readonly notUtf8: number[] = [];
  /** How many lines were not UTF-8 (the list above stops at NOT_UTF8_SHOWN, so memory stays flat). */
  notUtf8Count = 0;
  /** Some line held non-ASCII text that was valid UTF-8. */
  sawUtf8 = false;
  private line = 1;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private first = true;
  private readonly fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(private readonly file: string) {}

  push(buf: Buffer): string {
    const lastLf = buf.lastIndexOf(LF);
    if (lastLf === -1) {
      this.pending.push(buf);
      this.pendingBytes += buf.length;
      if (this.pendingBytes > MAX_LINE_BYTES) {
        throw new UserError(`line ${this.line} is longer than ${MAX_LINE_BYTES} bytes (is a quote never closed?)`, 'CRIER_ERR_INPUT', { file: this.file, line: this.line });
      }
      return '';
    }
    const block = this.pending.length ? Buffer.concat([...this.pending, buf.subarray(0, lastLf + 1)]) : buf.subarray(0, lastLf + 1);
    const rest = buf.subarray(lastLf + 1);
    this.pending = rest.length ? [rest] : [];
    this.pendingBytes = rest.length;
    return this.decode(block);
  }

  end(): string {
    const block = Buffer.concat(this.pending);
    this.pending = [];
    return block.length ? this.decode(block) : '';
  }

  /** Whole lines (the last may lack its LF at the end of the file). */
  private decode(block: Buffer): string {
    let text: string;
    try {
      text = this.fatal.decode(block);
      if (!this.sawUtf8 && hasHighByte(block)) this.sawUtf8 = true;
      this.line += countByte(block, LF);
    } catch {
      const parts: string[] = [];
      let start = 0;
      while (start < block.length) {
        const lf = block.indexOf(LF, start);
        const end = lf === -1 ? block.length : lf + 1;
        const line = block.subarray(start, end);
        try {
          parts.push(this.fatal.decode(line));
          if (hasHighByte(line)) this.sawUtf8 = true;
        } catch {
          if (this.notUtf8Count++ < NOT_UTF8_SHOWN) this.notUtf8.push(this.line);
          parts.push(iconv.decode(line, 'windows-1252'));
        }
        if (lf !== -1) this.line++;
        start = end;
      }
      text = parts.join('');
    }
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }
}

function countByte(buf: Buffer, byte: number): number {
  let n = 0;
  for (let k = buf.indexOf(byte); k !== -1; k = buf.indexOf(byte, k + 1)) n++;
  return n;
}

/** What the first pass learned: how the text was decoded, for a warning the user sees. */
export interface CsvScan {
  /** The first (up to 10) physical lines that were not valid UTF-8 and were read as Windows-1252 instead. */
  notUtf8Lines: number[];
  /** How many lines were not valid UTF-8 in all. */
  notUtf8Count: number;
  /** The rest of the non-ASCII text was valid UTF-8 (a mixed file, not a Windows-1252 one). */
  mixed: boolean;
}

/** One line saying how a file that was not all UTF-8 was read, or undefined when it was. */
export function describeEncoding(scan: CsvScan): string | undefined {
  const n = scan.notUtf8Count;
  if (n === 0) return undefined;
  if (!scan.mixed) return 'the file is not UTF-8: read it as Windows-1252 (save it as "CSV UTF-8" to be sure of accents and symbols)';
  const shown = scan.notUtf8Lines.join(', ');
  const lines = n === 1 ? `line ${shown} is` : `lines ${shown}${n > scan.notUtf8Lines.length ? ` and ${n - scan.notUtf8Lines.length} more` : ''} are`;
  return `${lines} not valid UTF-8: read ${n === 1 ? 'that line' : 'those lines'} as Windows-1252 and the rest of the file as UTF-8 (check the names on ${n === 1 ? 'it' : 'them'})`;
}

async function* decodedText(file: string, onBytes?: (buf: Buffer, offset: number) => void): AsyncGenerator<string, LineDecoder> {
  const decoder = new LineDecoder(file);
  const stream = createReadStream(file, { highWaterMark: CHUNK });
  let offset = 0;
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      onBytes?.(buf, offset);
      offset += buf.length;
      const text = decoder.push(buf);
      if (text) yield text;
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw openError(file, err);
  } finally {
    stream.destroy();
  }
  if (offset === 0) throw new UserError('the file is empty (a header row is required)', 'CRIER_ERR_INPUT', { file, line: 1 });
  const last = decoder.end();
  if (last) yield last;
  return decoder;
}

/** Counts line breaks (LF, CR LF or a lone CR) across chunks; `count` returns the breaks so far. */
class LineCounter {
  private breaks = 0;
  private lastWasCr = false;
  count(buf: Buffer): number {
    // LFs, plus CRs not followed by an LF (a CR ending the previous chunk is settled by this one's first byte).
    if (this.lastWasCr && buf.length > 0 && buf[0] !== 0x0a) this.breaks++;
    for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) this.breaks++;
    for (let i = buf.indexOf(0x0d); i !== -1; i = buf.indexOf(0x0d, i + 1)) if (i + 1 < buf.length && buf[i + 1] !== 0x0a) this.breaks++;
    if (buf.length > 0) this.lastWasCr = buf[buf.length - 1] === 0x0d;
    return this.breaks + (this.lastWasCr ? 1 : 0);
  }
}

/**
 * First pass: refuses binary files and checks the whole file's structure (every
 * quote closed, no record over the size limit) without keeping it, so an
 * import that would fail at line 1,202 fails before it writes anything.
 */
export async function scanCsv(file: string): Promise<CsvScan> {
  const parser = new CsvParser(file);
  const lines = new LineCounter();
  const texts = decodedText(file, (buf, offset) => {
    if (offset === 0) sniffMagic(buf, file);
    const nul = buf.indexOf(0);
    if (nul === -1) return void lines.count(buf);
    // A NUL in a text file: name its line, so a stray byte in one row can be found and removed.
    const line = lines.count(buf.subarray(0, nul)) + 1;
    throw new UserError(`not a CSV file: it holds binary data (a NUL byte at offset ${offset + nul})`, 'CRIER_ERR_INPUT', { file, line });
  });
  for (;;) {
    const next = await texts.next();
    if (next.done) {
      parser.end();
      return { notUtf8Lines: next.value.notUtf8, notUtf8Count: next.value.notUtf8Count, mixed: next.value.sawUtf8 };
    }
    parser.push(next.value);
  }
}

/** Streams the file's records (header included) in order; runs `scanCsv` first unless given its result. */
export async function* readCsvRecords(file: string, scan?: CsvScan): AsyncGenerator<CsvRecord> {
  if (!scan) await scanCsv(file);
  const parser = new CsvParser(file);
  for await (const text of decodedText(file)) yield* parser.push(text);
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
