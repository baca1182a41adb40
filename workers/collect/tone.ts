import { createRequire } from 'node:module';
import type winkNLP from 'wink-nlp';
import type model from 'wink-eng-lite-web-model';

/**
 * The tone of a news headline, by a documented, repeatable method:
 * winkNLP's sentiment (`its.sentiment`, −1…+1) with its English lite web
 * model — a word list with negation handling, no network, no training. It
 * reads the words, not the story: "crime" and "arrest" count as negative even
 * in a headline that is good news for the force (see the README for the
 * agreement with hand-labelled headlines).
 *
 *   score = 0 (no sentiment-bearing words)  → no_signal
 *   score ≥ +0.1                            → positive
 *   score ≤ −0.1                            → negative
 *   otherwise                               → neutral
 */

export const TONES = ['positive', 'neutral', 'negative', 'no_signal'] as const;
export type Tone = (typeof TONES)[number];

const require = createRequire(import.meta.url);
const version = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;

export const TONE_METHOD = 'winkNLP sentiment of the headline; >= 0.1 positive, <= -0.1 negative, 0 no signal, else neutral';
export const TONE_MODEL = `wink-nlp@${version('wink-nlp')} wink-eng-lite-web-model@${version('wink-eng-lite-web-model')}`;
const THRESHOLD = 0.1;

// The model is loaded on first use: every CLI command imports the collectors, few score headlines.
let loaded: ReturnType<typeof winkNLP> | undefined;
function nlp(): ReturnType<typeof winkNLP> {
  loaded ??= (require('wink-nlp') as typeof winkNLP)(require('wink-eng-lite-web-model') as typeof model);
  return loaded;
}

/**
 * `names` (the configured terms: "Police and Crime Commissioner") are taken
 * out before scoring, so the organisation's own name is not read as negative.
 */
export function toneOf(text: string, names: readonly string[] = []): { tone: Tone; score: number } {
  let t = text;
  for (const n of names) t = t.replace(termPattern(n, 'giu'), ' ');
  const engine = nlp();
  const score = Number(engine.readDoc(t).out(engine.its.sentiment));
  if (!Number.isFinite(score) || score === 0) return { tone: 'no_signal', score: 0 };
  if (score >= THRESHOLD) return { tone: 'positive', score };
  if (score <= -THRESHOLD) return { tone: 'negative', score };
  return { tone: 'neutral', score };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A term as a whole word or phrase, any case, any run of spaces between its words. */
export function termPattern(term: string, flags = 'iu'): RegExp {
  const words = term.trim().split(/\s+/).map(escape).join('\\s+');
  return new RegExp(`(?<![\\p{L}\\p{N}])${words}(?![\\p{L}\\p{N}])`, flags);
}
