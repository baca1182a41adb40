/**
 * How many segments (Notify says "fragments") a text message takes, which is
 * what networks and GOV.UK Notify charge for. A message written entirely in
 * the GSM 03.38 alphabet travels as GSM-7: 160 characters in one segment, 153
 * per segment when split (the rest carries the join header); characters from
 * the GSM extension table (€ [ ] { } ^ ~ | \) take two. One character outside
 * it (an emoji, a curly quote, ŵ) sends the whole message as UCS-2: 70 UTF-16
 * units in one segment, 67 per segment when split. A two-unit character never
 * straddles two segments.
 */

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENSION = '\f^{}\\[~]|€';

const basic = new Set([...GSM_BASIC]);
const extension = new Set([...GSM_EXTENSION]);

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SmsLength {
  encoding: SmsEncoding;
  /** Characters as the encoding counts them (GSM-7 septets, UCS-2 16-bit units). */
  units: number;
  segments: number;
  /** Characters outside GSM-7 that forced UCS-2 (first few, for the hint). */
  nonGsm: string[];
}

/** Packs units into segments without splitting a character. */
function pack(sizes: number[], single: number, multi: number): number {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  if (total <= single) return 1;
  let segments = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > multi) {
      segments += 1;
      used = 0;
    }
    used += size;
  }
  return segments;
}

export function smsLength(text: string): SmsLength {
  const chars = [...text];
  const nonGsm = [...new Set(chars.filter((c) => !basic.has(c) && !extension.has(c)))];
  if (nonGsm.length === 0) {
    const sizes = chars.map((c) => (extension.has(c) ? 2 : 1));
    return { encoding: 'GSM-7', units: sizes.reduce((a, b) => a + b, 0), segments: pack(sizes, 160, 153), nonGsm };
  }
  const sizes = chars.map((c) => c.length);
  return { encoding: 'UCS-2', units: sizes.reduce((a, b) => a + b, 0), segments: pack(sizes, 70, 67), nonGsm: nonGsm.slice(0, 5) };
}

/** e.g. "2 segments (GSM-7, 190 characters)" or "1 segment (UCS-2 because of "’", 42 characters)". */
export function describeLength(len: SmsLength): string {
  const why = len.encoding === 'UCS-2' ? ` because of ${len.nonGsm.map((c) => JSON.stringify(c)).join(' ')}` : '';
  return `${len.segments} segment${len.segments === 1 ? '' : 's'} (${len.encoding}${why}, ${len.units} characters)`;
}
