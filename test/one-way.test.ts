import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { safeFileName } from '../channels/dry-run.js';
import { parseRetryAfter } from '../channels/retry-after.js';
import { escapeHtml } from '../src/html-escape.js';
import { ROOT } from './helpers/dist.js';

/** One way to do each thing (STYLE.md): one HTML escaper, one Retry-After parser, one filename sanitiser, one CSV formula neutraliser, one AudienceSelector. */

function sources(dir: string): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push({ file: rel, text: readFileSync(path.join(ROOT, rel), 'utf8') });
  }
  return out;
}
const tree = ['src', 'channels', 'workers'].flatMap(sources);
const definedIn = (re: RegExp): string[] => tree.filter((f) => re.test(f.text)).map((f) => f.file);

describe('one definition of each', () => {
  it('escapeHtml is defined once (src/html-escape.ts); other modules re-export it', () => {
    expect(definedIn(/function escapeHtml\b|const escapeHtml\s*=/)).toEqual(['src/html-escape.ts']);
  });

  it('Retry-After is parsed in one place; every reader of the header calls it', () => {
    expect(definedIn(/function \w*[rR]etryAfter\w*\s*\(/)).toEqual(['channels/retry-after.ts']);
    for (const f of tree.filter((t) => /['"]retry-after['"]/i.test(t.text))) expect(f.text, f.file).toMatch(/parseRetryAfter\(/);
  });

  it('file names are sanitised in one place (channels/dry-run.ts)', () => {
    expect(definedIn(/\[\^A-Za-z0-9[._-]*\]\+\/g, '_'\)/)).toEqual(['channels/dry-run.ts']);
  });

  it('spreadsheet cells are neutralised in one place (src/domain/csv.ts)', () => {
    expect(definedIn(/\[=\+\\-@\\t\\r\]/)).toEqual(['src/domain/csv.ts']);
  });

  it('AudienceSelector is declared once (channels/adapter.ts)', () => {
    expect(definedIn(/(interface|type) AudienceSelector\b/)).toEqual(['channels/adapter.ts']);
  });
});

describe('the shared helpers', () => {
  const now = new Date('2026-11-20T10:00:00Z');
  it('parseRetryAfter: seconds, an HTTP date, a past date, nonsense', () => {
    expect(parseRetryAfter('120', now).toISOString()).toBe('2026-11-20T10:02:00.000Z');
    expect(parseRetryAfter(' 0 ', now).toISOString()).toBe(now.toISOString());
    expect(parseRetryAfter('Fri, 20 Nov 2026 10:05:00 GMT', now).toISOString()).toBe('2026-11-20T10:05:00.000Z');
    expect(parseRetryAfter('Fri, 20 Nov 2026 09:00:00 GMT', now).toISOString()).toBe(now.toISOString());
    expect(parseRetryAfter('soon', now).toISOString()).toBe('2026-11-20T10:01:00.000Z');
    expect(parseRetryAfter(null, now, 300_000).toISOString()).toBe('2026-11-20T10:05:00.000Z');
    expect(parseRetryAfter('-5', now, 1000).toISOString()).toBe('2026-11-20T10:00:01.000Z');
  });

  it('safeFileName: no path separators, no dot-files, bounded length, never empty', () => {
    expect(safeFileName('../../etc/passwd')).toBe('__.._etc_passwd');
    expect(safeFileName('.hidden')).toBe('_hidden');
    expect(safeFileName('c1abc-email-0f3a')).toBe('c1abc-email-0f3a');
    expect(safeFileName('x'.repeat(500))).toHaveLength(120);
    expect(safeFileName('')).toBe('_');
    expect(safeFileName('名前')).toBe('_');
  });

  it('escapeHtml: the five characters that matter', () => {
    expect(escapeHtml(`<a href="x" title='y'>Tom & Jerry</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;');
  });
});
