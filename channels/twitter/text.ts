/**
 * Counting text the way X counts it (twitter-text v3 configuration):
 * the text is NFC-normalised; every URL weighs 23 whatever its length; code
 * points in 0-4351, 8192-8205, 8208-8223 and 8242-8247 weigh 1; anything else
 * (CJK, most symbols) weighs 2; an emoji weighs 2 however many code points it
 * is built from (ZWJ families, flags, skin tones, keycaps). Limit: 280.
 *
 * URL detection follows twitter-text's rules in simplified form: `http(s)://`
 * URLs, and bare domains ending in a common generic TLD or a two-letter
 * country code. Like twitter-text, a bare one-label country-code domain
 * without a path ("notes.md") is not a URL, but "police.gov.uk" and
 * "bit.ly/x" are. Unusual new gTLDs without a scheme are counted as text
 * (which over-counts, never under-counts the common case).
 */

export const X_MAX_WEIGHTED_LENGTH = 280;
export const X_URL_LENGTH = 23;

const WEIGHT_ONE_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0, 4351],
  [8192, 8205],
  [8208, 8223],
  [8242, 8247],
];

const GENERIC_TLDS =
  'com|org|net|gov|edu|mil|int|info|biz|name|pro|app|dev|io|ai|co|me|tv|news|online|site|blog|social|police|xyz|club|shop|store|tech|live|media|page|link|world|global|london|wales|scot';

const WITH_SCHEME = /https?:\/\/[^\s<>"]+/giu;
// Lookbehind mirrors twitter-text's "valid preceding chars": not part of a word, email, cashtag or hashtag.
const WITHOUT_SCHEME = new RegExp(
  `(?<![\\p{L}\\p{N}@＠$#＃_./-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\\.)+(?:${GENERIC_TLDS}|[a-z]{2}))(?![\\p{L}\\p{N}_-])((?::\\d{1,5})?(?:/[^\\s<>"]*)?)`,
  'giu',
);
const GENERIC_TLD_RE = new RegExp(`\\.(?:${GENERIC_TLDS})$`, 'i');

export interface UrlSpan {
  start: number;
  end: number;
  url: string;
}

/** Drops sentence punctuation after a URL, keeping a ")" that closes a "(" inside it. */
function trimUrlEnd(url: string): string {
  let out = url;
  for (;;) {
    const last = out.at(-1);
    if (last === undefined) return out;
    if (/[.,;:!?'"»’”\]}]/u.test(last)) {
      out = out.slice(0, -1);
      continue;
    }
    if (last === ')' && (out.match(/\(/g)?.length ?? 0) < (out.match(/\)/g)?.length ?? 0)) {
      out = out.slice(0, -1);
      continue;
    }
    return out;
  }
}

/** URLs in the (already normalised) text, in order, not overlapping. */
export function findUrls(text: string): UrlSpan[] {
  const spans: UrlSpan[] = [];
  for (const m of text.matchAll(WITH_SCHEME)) {
    const url = trimUrlEnd(m[0]);
    const before = m.index > 0 ? text[m.index - 1]! : '';
    if (url.length > 'https://'.length && !/[\p{L}\p{N}@$#]/u.test(before)) {
      spans.push({ start: m.index, end: m.index + url.length, url });
    }
  }
  const inside = (i: number): boolean => spans.some((s) => i >= s.start && i < s.end);
  for (const m of text.matchAll(WITHOUT_SCHEME)) {
    if (inside(m.index)) continue;
    const domain = m[1]!;
    const rest = m[2] ?? '';
    const oneLabelCountryCode = !rest && domain.split('.').length === 2 && !GENERIC_TLD_RE.test(domain);
    if (oneLabelCountryCode) continue;
    const url = trimUrlEnd(domain + rest);
    spans.push({ start: m.index, end: m.index + url.length, url });
  }
  return spans.sort((a, b) => a.start - b.start);
}

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
const EMOJI_PART = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;

function codePointWeight(cp: number): number {
  return WEIGHT_ONE_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi) ? 1 : 2;
}

function weighPlain(text: string): number {
  let total = 0;
  for (const { segment } of segmenter.segment(text)) {
    const codePoints = [...segment];
    const single = codePoints.length === 1 ? codePointWeight(segment.codePointAt(0)!) : 0;
    // A lone "©" or "#" stays a weight-1 character; as an emoji sequence it is one emoji.
    if (EMOJI_PART.test(segment) && single !== 1) {
      total += 2;
      continue;
    }
    for (const ch of codePoints) total += codePointWeight(ch.codePointAt(0)!);
  }
  return total;
}

/** The length X gives this text: must be ≤ 280 for one post. */
export function weightedLength(text: string): number {
  const normalised = text.normalize('NFC');
  let total = 0;
  let pos = 0;
  for (const span of findUrls(normalised)) {
    total += weighPlain(normalised.slice(pos, span.start)) + X_URL_LENGTH;
    pos = span.end;
  }
  return total + weighPlain(normalised.slice(pos));
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
