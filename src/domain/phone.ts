import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

/**
 * Subscribers' mobile numbers, for SMS. libphonenumber-js (Google's
 * libphonenumber rules, full metadata so the number's type is known) parses
 * what people type — "07911 123456", "+44 7911 123456", "+44 (0)7911 123456",
 * "0044 7911-123-456" —
 * into E.164 ("+447911123456"). Only numbers that can receive a text are
 * kept: landlines, freephone, personal (070) and pager numbers are refused,
 * as is anything that is not a valid number in its country's plan.
 */

/** Whether libphonenumber knows the country (for `sms.default_country`). */
export function knownCountry(country: string): boolean {
  return isSupportedCountry(country);
}

export type PhoneResult = { phone: string } | { problem: string };

const TEXTABLE = new Set(['MOBILE', 'FIXED_LINE_OR_MOBILE']);

const TYPE_NAMES: Record<string, string> = {
  FIXED_LINE: 'a landline',
  TOLL_FREE: 'a freephone number',
  PREMIUM_RATE: 'a premium-rate number',
  SHARED_COST: 'a shared-cost number',
  VOIP: 'an internet (VoIP) number',
  PERSONAL_NUMBER: 'a personal (070) number',
  PAGER: 'a pager number',
  UAN: 'a non-geographic number',
  VOICEMAIL: 'a voicemail number',
};

/** A mobile number in E.164, or why the text is not one. `country` applies to numbers written without a country code. */
export function normalisePhone(text: string, country: string): PhoneResult {
  const raw = text.trim();
  if (!/\d/.test(raw)) return { problem: `bad phone number "${raw.slice(0, 40)}" (no digits)` };
  if (/[^\d\s+().\-/]/.test(raw)) return { problem: `bad phone number "${raw.slice(0, 40)}" (only digits, spaces, +, -, ( ) allowed)` };
  // "+44 (0)7911 123456": the bracketed trunk 0 is dialled only from inside the country.
  const parsed = parsePhoneNumberFromString(raw.replace(/^(\+|00)\s*(\d{1,3})\s*\(0\)/, '+$2 '), country as CountryCode);
  if (!parsed || !parsed.isValid()) return { problem: `bad phone number "${raw}" (not a valid number${parsed?.country ? ` in ${parsed.country}` : ''})` };
  const type = parsed.getType();
  if (!type || !TEXTABLE.has(type)) return { problem: `phone number "${raw}" is ${TYPE_NAMES[type ?? ''] ?? 'not a mobile number'}: texts need a mobile` };
  return { phone: parsed.number };
}
