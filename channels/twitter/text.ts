import twitterText from 'twitter-text';

/**
 * Counting text the way X counts it, with X's own library (twitter-text v3,
 * its default configuration): NFC-normalised; every URL weighs 23 whatever
 * its length, bare domains included ("notes.md", "app.rugby" are links to X);
 * code points in 0-4351, 8192-8205, 8208-8223 and 8242-8247 weigh 1, anything
 * else (CJK, most symbols) 2; an emoji sequence weighs 2. Limit: 280.
 * test/corpus/x-weighted-length.json pins the counts Crier relies on.
 */

export const X_MAX_WEIGHTED_LENGTH = 280;
export const X_URL_LENGTH = 23;

export interface UrlSpan {
  start: number;
  end: number;
  url: string;
}

/** URLs as X finds them (with or without a scheme), in order; offsets are UTF-16 indices into `text`. */
export function findUrls(text: string): UrlSpan[] {
  return twitterText.extractUrlsWithIndices(text).map(({ url, indices: [start, end] }) => ({ start, end, url }));
}

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** The length X gives this text: must be ≤ 280 for one post. */
export function weightedLength(text: string): number {
  return twitterText.parseTweet(text).weightedLength;
}

const SENTENCE_END = /[.!?…。！？]["'’”)\]]*$/u;

interface Word {
  text: string;
  /** A thread part may end after this word without cutting a sentence. */
  sentenceEnd: boolean;
}

function words(text: string): Word[] {
  return (text.match(/\S+\s*/gu) ?? []).map((w) => ({
    text: w,
    sentenceEnd: SENTENCE_END.test(w.trimEnd()) || /\n/.test(w),
  }));
}

/** Cuts a word longer than a whole part (rare: a very long CJK run) by graphemes. */
function hardSplit(word: string, budget: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const { segment } of segmenter.segment(word)) {
    if (current && weightedLength(current + segment) > budget) {
      out.push(current);
      current = '';
    }
    current += segment;
  }
  if (current) out.push(current);
  return out;
}

function pack(text: string, budget: number): string[] {
  const parts: string[] = [];
  let current: Word[] = [];
  const joined = (ws: Word[]): string => ws.map((w) => w.text).join('').trim();
  const queue = words(text);
  while (queue.length > 0) {
    const word = queue.shift()!;
    if (weightedLength(joined([...current, word])) <= budget) {
      current.push(word);
      continue;
    }
    if (current.length === 0) {
      const pieces = hardSplit(word.text.trim(), budget);
      parts.push(...pieces.slice(0, -1));
      queue.unshift({ text: `${pieces.at(-1)!}${/\s+$/u.exec(word.text)?.[0] ?? ''}`, sentenceEnd: word.sentenceEnd });
      continue;
    }
    // Prefer ending the part at a sentence end, if that still fills at least half of it.
    let cut = current.length;
    for (let i = current.length - 1; i > 0; i--) {
      if (current[i - 1]!.sentenceEnd && weightedLength(joined(current.slice(0, i))) >= budget / 2) {
        cut = i;
        break;
      }
    }
    if (!current.at(-1)!.sentenceEnd && cut !== current.length) {
      queue.unshift(...current.slice(cut), word);
      current = current.slice(0, cut);
    } else {
      queue.unshift(word);
    }
    parts.push(joined(current));
    current = [];
  }
  if (current.length > 0) parts.push(joined(current));
  return parts.filter((p) => p.length > 0);
}

/**
 * Splits text into thread parts of at most 280 each, counting the " 1/3"
 * numbering suffix. Breaks at sentence ends where it can, else between words.
 * Text that already fits comes back as one unnumbered part.
 */
export function splitThread(text: string, max = X_MAX_WEIGHTED_LENGTH): string[] {
  const clean = text.trim();
  if (weightedLength(clean) <= max) return [clean];
  for (let digits = 1; digits <= 3; digits++) {
    const widest = 10 ** digits - 1;
    const parts = pack(clean, max - weightedLength(` ${widest}/${widest}`));
    if (String(parts.length).length <= digits) {
      return parts.map((p, i) => `${p} ${i + 1}/${parts.length}`);
    }
  }
  throw new Error('text is too long even for a thread of 999 posts');
}
