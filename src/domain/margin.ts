import type { ObservationStore, ObservationKey, RecordOutcome } from './observations.js';

/**
 * Margin of error of a consultation or survey at 95% confidence, with the
 * finite population correction, for the worst case p = 0.5 (the usual
 * textbook figure):
 *
 *   MOE = z · √(p(1−p)/n) · √((N−n)/(N−1)),  z = 1.959964
 *
 * n = 400 of N = 550,000 → 4.90%. A sample whose MOE is above 5 points is
 * flagged as too small for ±5%, with the respondents it would need:
 *   n₀ = z²p(1−p)/e²,  n = n₀ / (1 + (n₀−1)/N).
 */
export const Z95 = 1.959963984540054;
export const TARGET_MARGIN = 5;

export interface MarginOfError {
  respondents: number;
  population: number;
  /** Percentage points, e.g. 4.9. */
  percent: number;
  /** True when the margin is wider than ±5 points. */
  tooSmall: boolean;
  /** Respondents needed for ±5 points from this population. */
  neededFor5: number;
}

export function marginOfError(respondents: number, population: number): MarginOfError {
  if (!(respondents > 0) || !(population > 0) || !Number.isFinite(respondents) || !Number.isFinite(population)) {
    throw new RangeError('respondents and population must be positive numbers');
  }
  if (respondents > population) throw new RangeError(`respondents (${respondents}) cannot exceed the population (${population})`);
  const p = 0.5;
  const fpc = population > 1 ? Math.sqrt((population - respondents) / (population - 1)) : 0;
  const percent = 100 * Z95 * Math.sqrt((p * (1 - p)) / respondents) * fpc;
  const e = TARGET_MARGIN / 100;
  const n0 = (Z95 * Z95 * p * (1 - p)) / (e * e);
  const neededFor5 = Math.ceil(n0 / (1 + (n0 - 1) / population));
  return { respondents, population, percent, tooSmall: percent > TARGET_MARGIN, neededFor5 };
}

/** "±4.9%", and the flag when the sample is too small. */
export function describeMargin(m: MarginOfError): string {
  const text = `±${m.percent.toFixed(1)}% at 95% confidence (${m.respondents.toLocaleString('en-GB')} of ${m.population.toLocaleString('en-GB')})`;
  return m.tooSmall ? `${text}: too small for ±5%, needs at least ${m.neededFor5.toLocaleString('en-GB')} respondents` : text;
}

/**
 * After respondents or population of a consultation changed: when both are
 * known for the same subject, dimensions and period, (re)records
 * consultation.margin_of_error (source `derived`, with n, N and the flag in
 * its meta). Returns the margin, or undefined when one of the two is missing
 * or they do not make a sample (more respondents than people).
 */
export async function deriveMargin(store: ObservationStore, key: Omit<ObservationKey, 'measure'>, now: Date): Promise<{ margin: MarginOfError; outcome: RecordOutcome } | undefined> {
  const [n, N] = await Promise.all([store.get({ ...key, measure: 'consultation.respondents' }), store.get({ ...key, measure: 'consultation.population' })]);
  if (!n || !N || !(n.value > 0) || !(N.value >= n.value)) return undefined;
  const margin = marginOfError(n.value, N.value);
  const outcome = await store.record({
    ...key,
    measure: 'consultation.margin_of_error',
    value: Math.round(margin.percent * 100) / 100,
    source: 'derived',
    collectedAt: now,
    meta: {
      method: '95% confidence, p = 0.5, finite population correction',
      respondents: String(n.value),
      population: String(N.value),
      too_small_for_5pct: margin.tooSmall ? 'yes' : 'no',
      needed_for_5pct: String(margin.neededFor5),
    },
  });
  return { margin, outcome };
}
