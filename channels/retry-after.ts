/**
 * The one Retry-After parser (webhooks, the SMS gateway, Mastodon, collectors):
 * delta-seconds or an HTTP date (RFC 9110 §10.2.3). A date already past means
 * now; a missing or unreadable header means `now + fallbackMs`.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date, fallbackMs = 60_000): Date {
  const v = value?.trim();
  if (v && /^\d+$/.test(v)) return new Date(now.getTime() + Number(v) * 1000);
  // An HTTP date has a month name; Date.parse alone would read "-5" as a year.
  const at = v && /[a-z]/i.test(v) ? Date.parse(v) : NaN;
  if (Number.isFinite(at)) return new Date(Math.max(at, now.getTime()));
  return new Date(now.getTime() + fallbackMs);
}
