import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCampaign } from '../../src/domain/campaign-file.js';
import { UserError } from '../../src/errors.js';
import { testConfig } from '../../test/helpers/context.js';
import { findUrls, splitThread, weightedLength } from './text.js';

/** Crier's count is X's count (twitter-text): a corpus of texts with the length X gives them. */

interface Case {
  text: string;
  x: number;
  why: string;
}
const corpus = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'corpus', 'x-weighted-length.json'), 'utf8')) as Case[];

describe('X weighted length on the corpus', () => {
  for (const c of corpus) {
    it(`${JSON.stringify(c.text.length > 30 ? `${c.text.slice(0, 30)}…` : c.text)} weighs ${c.x} (${c.why})`, () => {
      expect(weightedLength(c.text)).toBe(c.x);
    });
  }

  it('finds bare domains as links, with UTF-16 offsets into the text', () => {
    const text = '😀 notes.md, app.rugby and https://example.org/x.';
    expect(findUrls(text).map((s) => [s.url, text.slice(s.start, s.end)])).toEqual([
      ['notes.md', 'notes.md'],
      ['app.rugby', 'app.rugby'],
      ['https://example.org/x', 'https://example.org/x'],
    ]);
  });

  it('a post Crier used to score 280 is 309 on X, and is refused at create', () => {
    const text = `See notes.md and app.rugby ${'a'.repeat(280 - 'See notes.md and app.rugby '.length - 15)}`;
    expect(weightedLength(text)).toBe(280 - 15 + 29);
    const padded = `${text}${'b'.repeat(15)}`;
    expect(weightedLength(padded)).toBe(309);
    const yaml = `title: T\nkind: social\nsend_at: 2099-07-01 09:00\nchannels:\n  twitter: { text: "${padded}" }\n`;
    let err: unknown;
    try {
      parseCampaign(yaml, '/c.yaml', testConfig(), { now: new Date('2026-06-01T12:00:00Z') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('309 characters, X allows 280');
  });

  it('a thread of bare-domain text splits into parts X accepts', () => {
    const text = Array.from({ length: 40 }, (_, i) => `Item ${i} is at notes${i}.md and app${i}.rugby.`).join(' ');
    const parts = splitThread(text);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(weightedLength(p)).toBeLessThanOrEqual(280);
  });
});
