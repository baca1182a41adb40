import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { findSubscriber, importSubscribers, type ImportResult } from '../src/domain/audience.js';
import { CsvParser, readCsvRecords, type CsvRecord } from '../src/domain/csv.js';
import { UserError } from '../src/errors.js';
import { silentLogger, testConfig } from './helpers/context.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string): string => path.join(here, 'fixtures', 'csv', name);

let handle: RedisHandle;
let rejectsDir: string;
const NOW = new Date('2026-11-20T10:00:00Z');

beforeAll(async () => {
  const config = testConfig();
  handle = await connectRedis(config, silentLogger());
  rejectsDir = path.join(config.dataDir, 'rejects');
});
afterAll(async () => {
  await handle.close();
});

async function load(name: string, list = 'newsletter'): Promise<ImportResult> {
  return importSubscribers(handle.redis, handle.prefix, fixture(name), list, { rejectsDir, now: () => NOW });
}

async function failure(p: Promise<unknown>): Promise<UserError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

function parseAll(text: string, chunk: number): CsvRecord[] {
  const p = new CsvParser('t.csv');
  const out: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += chunk) out.push(...p.push(text.slice(i, i + chunk)));
  out.push(...p.end());
  return out;
}

describe('CsvParser', () => {
  const text = 'a,b,c\r\n"x, y","say ""hi""","multi\r\nline"\r\nplain,"",last\n\nq"mid,"end"\n"tail",2,3';
  it('gives the same records whatever the chunk size (quotes and CRLF split across chunks)', () => {
    const whole = parseAll(text, text.length);
    expect(whole.map((r) => r.fields)).toEqual([
      ['a', 'b', 'c'],
      ['x, y', 'say "hi"', 'multi\r\nline'],
      ['plain', '', 'last'],
      [''],
      ['q"mid', 'end'],
      ['tail', '2', '3'],
    ]);
    expect(whole.map((r) => r.line)).toEqual([1, 2, 4, 5, 6, 7]);
    expect(whole[1]?.raw).toBe('"x, y","say ""hi""","multi\r\nline"');
    for (let size = 1; size <= 12; size++) expect(parseAll(text, size)).toEqual(whole);
  });

  it('reports a quote that is never closed with the line where the record starts', () => {
    const p = new CsvParser('open.csv');
    p.push('email\n"ada@example.org\nbob\n');
    expect(() => p.end()).toThrow(/open\.csv:2: a quoted field is never closed/);
  });
});

describe('readCsvRecords', () => {
  it('decodes Windows-1252 when the bytes are not UTF-8', async () => {
    const rows: string[][] = [];
    for await (const r of readCsvRecords(fixture('windows-1252.csv'))) rows.push(r.fields);
    expect(rows[1]).toEqual(['rene@example.org', 'René Café', 'Leamington', '£ savings']);
    expect(rows[2]?.[1]).toBe('Seán O’Brien');
  });

  it('keeps UTF-8 characters split across read chunks intact', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-csv-'));
    const file = path.join(dir, 'big.csv');
    // 70 KB of 2-byte characters: the 64 KB chunk boundary falls inside one of them.
    const name = 'é'.repeat(35_000);
    writeFileSync(file, `email,name\na@example.org,${name}\n`);
    const rows: string[][] = [];
    for await (const r of readCsvRecords(file)) rows.push(r.fields);
    expect(rows[1]?.[1]).toBe(name);
  });
});

describe('importSubscribers: CSV shapes', () => {
  it('imports a plain file', async () => {
    expect(await load('basic.csv')).toEqual({ imported: 2, updated: 0, rejected: 0, suppressed: 0 });
    const ada = await findSubscriber(handle.redis, handle.prefix, 'ada@example.org');
    expect(ada).toMatchObject({
      name: 'Ada Lovelace',
      area: 'Rugby',
      topics: ['burglary', 'road safety'],
      status: 'subscribed',
      consentSource: 'import:basic.csv',
      consentAt: NOW.toISOString(),
    });
  });

  it('copes with a UTF-8 BOM, CRLF and capitalised headers', async () => {
    expect(await load('bom-crlf.csv')).toMatchObject({ imported: 2, rejected: 0 });
    const s = await findSubscriber(handle.redis, handle.prefix, 'chloe@example.org');
    expect(s?.name).toBe('Chloé Dubois');
    expect((await findSubscriber(handle.redis, handle.prefix, 'dan@example.org'))?.topics).toEqual(['fraud', 'burglary']);
  });

  it('reads quoted commas, doubled quotes and line breaks; columns in any order, extra ignored', async () => {
    const r = await load('quoted.csv');
    expect(r).toMatchObject({ imported: 3, updated: 0, rejected: 1 });
    const jane = await findSubscriber(handle.redis, handle.prefix, 'jane@example.org');
    expect(jane).toMatchObject({ name: 'Smith, Jane', area: 'Rugby', topics: ['burglary', 'fraud'] });
    expect((await findSubscriber(handle.redis, handle.prefix, 'said@example.org'))?.name).toBe('Said "hi"');
    // line breaks inside a name would reach mail headers: collapsed to spaces
    expect((await findSubscriber(handle.redis, handle.prefix, 'multi@example.org'))?.name).toBe('Multi line name');
    // the bad row starts on physical line 8 (the multi-line record spans lines 4-7)
    const rejects = readFileSync(r.rejectsFile as string, 'utf8');
    expect(rejects).toBe('line,reason,raw\n8,bad email,"not-an-email,x@,,,"\n');
  });

  it('imports Windows-1252 text with é, £ and ’ right', async () => {
    expect(await load('windows-1252.csv')).toMatchObject({ imported: 2, rejected: 0 });
    expect(await findSubscriber(handle.redis, handle.prefix, 'rene@example.org')).toMatchObject({
      name: 'René Café',
      topics: ['£ savings'],
    });
    expect((await findSubscriber(handle.redis, handle.prefix, 'obrien@example.org'))?.name).toBe('Seán O’Brien');
  });

  it('rejects bad rows with line and reason, keeps the good ones, reports a duplicate address', async () => {
    const r = await load('bad-rows.csv', 'bad-rows');
    expect(r).toMatchObject({ imported: 2, updated: 0, rejected: 7, suppressed: 0 });
    expect(path.dirname(r.rejectsFile as string)).toBe(rejectsDir);
    expect(path.basename(r.rejectsFile as string)).toMatch(/^bad-rows-20261120T100000000Z\.rejects\.csv$/);
    const lines = readFileSync(r.rejectsFile as string, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('line,reason,raw');
    const reasons = lines.slice(1).map((l) => l.split(',').slice(0, 2).join(','));
    expect(reasons).toEqual([
      '3,bad email',
      '4,name longer than 200 characters (201)',
      '5,area longer than 100 characters (101)',
      '6,topics longer than 500 characters (509)',
      '7,"missing column ""area"""',
      '8,missing email',
      '9,duplicate address: already on line 2 of this file',
    ]);
    // the later duplicate (different case, padded) is reported, and the first row stands
    const good = await findSubscriber(handle.redis, handle.prefix, 'good@example.org');
    expect(good).toMatchObject({ name: 'Good', area: 'Rugby', topics: ['burglary'] });
    expect(await findSubscriber(handle.redis, handle.prefix, 'longname@example.org')).toBeNull();
  });

  it('re-importing the same file counts updates, not inserts, and keeps first consent', async () => {
    const later = new Date('2026-11-21T10:00:00Z');
    const r = await importSubscribers(handle.redis, handle.prefix, fixture('basic.csv'), 'other', {
      rejectsDir,
      now: () => later,
      source: 'form:website',
    });
    expect(r).toEqual({ imported: 0, updated: 2, rejected: 0, suppressed: 0 });
    const ada = await findSubscriber(handle.redis, handle.prefix, 'ada@example.org');
    expect(ada).toMatchObject({ consentSource: 'import:basic.csv', consentAt: NOW.toISOString(), updatedAt: later.toISOString() });
  });

  it('reports progress after each batch of a long file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-progress-'));
    const file = path.join(dir, 'long.csv');
    writeFileSync(file, `email,name,area,topics\n${Array.from({ length: 25 }, (_, i) => `p${i}@progress.example,P ${i},Rugby,\n`).join('')}`);
    const seen: Array<[number, number]> = [];
    const r = await importSubscribers(handle.redis, handle.prefix, file, 'progress', {
      rejectsDir,
      batchSize: 10,
      onProgress: (soFar, line) => seen.push([soFar.imported, line]),
    });
    expect(r.imported).toBe(25);
    expect(seen).toEqual([
      [10, 11],
      [20, 21],
    ]);
  });
});

describe('importSubscribers: files that cannot be imported (exit 1)', () => {
  const cases: Array<[string, RegExp]> = [
    ['image.png', /image\.png: not a CSV file: it is a PNG image/],
    ['workbook.xlsx', /workbook\.xlsx: not a CSV file: it is a zip archive \(an \.xlsx workbook\?\)/],
    ['binary-nul.csv', /binary-nul\.csv:1: not a CSV file: it holds binary data \(a NUL byte at offset 10\)/],
    ['no-header.txt', /no-header\.txt:1: not a CSV file with a header row/],
    ['empty.csv', /empty\.csv:1: the file is empty/],
    ['semicolons.csv', /semicolons\.csv:1: the header is separated by semicolons or tabs, not commas/],
    ['does-not-exist.csv', /does-not-exist\.csv: cannot read file: no such file/],
  ];
  for (const [name, message] of cases) {
    it(`${name}`, async () => {
      const err = await failure(load(name));
      expect(err.exitCode).toBe(1);
      expect(err.message).toMatch(message);
    });
  }

  it('a header without email names the file, line 1 and the field', async () => {
    const err = await failure(load('missing-email.csv'));
    expect(err.where).toMatchObject({ file: fixture('missing-email.csv'), line: 1, field: 'email' });
    expect(err.message).toMatch(/missing-email\.csv:1, field "email": the header has no "email" column/);
  });

  it('a header without area names that field', async () => {
    const err = await failure(load('missing-area.csv'));
    expect(err.where).toMatchObject({ line: 1, field: 'area' });
  });

  it('a bad list name is refused before reading', async () => {
    const err = await failure(load('basic.csv', 'no spaces please'));
    expect(err.where.field).toBe('list');
  });
});
