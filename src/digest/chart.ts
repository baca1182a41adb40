import { Resvg } from '@resvg/resvg-js';

/**
 * The 8-week trend picture: a small SVG with no text at all (resvg drops text
 * set in WOFF fonts, and every number is in the HTML anyway) rendered to PNG,
 * since Gmail drops inline SVG. Drawn at twice the size it is shown, for
 * sharp phones. Gaps (no data) break the line; the latest point is marked; a
 * target, when set, is a dashed line.
 */

export const CHART_WIDTH = 120;
export const CHART_HEIGHT = 32;
const SCALE = 2;

export interface ChartOptions {
  target?: number;
  /** Colour of the line and the latest point. */
  colour?: string;
}

export function trendSvg(values: ReadonlyArray<number | undefined>, opts: ChartOptions = {}): string {
  const w = CHART_WIDTH * SCALE;
  const h = CHART_HEIGHT * SCALE;
  const pad = 6;
  const known = values.filter((v): v is number => v !== undefined);
  const all = opts.target !== undefined ? [...known, opts.target] : known;
  let min = Math.min(...all);
  let max = Math.max(...all);
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const x = (i: number) => pad + (i * (w - 2 * pad)) / Math.max(1, values.length - 1);
  const y = (v: number) => h - pad - ((v - min) * (h - 2 * pad)) / (max - min);
  const colour = opts.colour ?? '#1d70b8';
  const parts: string[] = [`<rect width="${w}" height="${h}" fill="#ffffff"/>`, `<line x1="${pad}" y1="${h - 1}" x2="${w - pad}" y2="${h - 1}" stroke="#dddddd" stroke-width="2"/>`];
  if (opts.target !== undefined) {
    parts.push(`<line x1="${pad}" y1="${y(opts.target).toFixed(1)}" x2="${w - pad}" y2="${y(opts.target).toFixed(1)}" stroke="#8a8a8a" stroke-width="2" stroke-dasharray="6 5"/>`);
  }
  // One polyline per run of consecutive known points.
  let run: string[] = [];
  const flush = () => {
    if (run.length > 1) parts.push(`<polyline points="${run.join(' ')}" fill="none" stroke="${colour}" stroke-width="4" stroke-linejoin="round" stroke-linecap="round"/>`);
    run = [];
  };
  values.forEach((v, i) => {
    if (v === undefined) return flush();
    run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    if (run.length === 1) parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${colour}"/>`);
  });
  flush();
  const lastIndex = values.length - 1;
  const last = values[lastIndex];
  if (last !== undefined) parts.push(`<circle cx="${x(lastIndex).toFixed(1)}" cy="${y(last).toFixed(1)}" r="6" fill="${colour}"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${parts.join('')}</svg>`;
}

/** The trend as PNG bytes, or undefined when there is no data to draw. */
export function trendPng(values: ReadonlyArray<number | undefined>, opts: ChartOptions = {}): Buffer | undefined {
  if (!values.some((v) => v !== undefined)) return undefined;
  return new Resvg(trendSvg(values, opts), { font: { loadSystemFonts: false } }).render().asPng();
}
