import { getNextMillis } from 'bullmq';

/**
 * Cron patterns read exactly as BullMQ's job schedulers read them (cron-parser
 * through BullMQ's own getNextMillis), so what Crier says the next run is and
 * when the job scheduler fires are the same computation.
 */

const FIELDS = ['minute', 'hour', 'day of month', 'month', 'day of week'];

/** Why the pattern cannot be used, or '' when it is fine. */
export function checkCron(pattern: string, zone: string): string {
  const parts = pattern.trim().split(/\s+/);
  if (parts.length !== 5) {
    return `"${pattern}" has ${parts.length} field${parts.length === 1 ? '' : 's'}; write 5: ${FIELDS.join(', ')} (e.g. "0 9 * * 1" is Mondays 09:00)`;
  }
  // cron's own rule: with both day fields restricted, a day matching EITHER runs. "1-7 * 2" is days 1–7 and every Tuesday.
  const [, , dom, , dow] = parts as [string, string, string, string, string];
  if (dom !== '*' && dom !== '?' && dow !== '*' && dow !== '?') {
    return `"${pattern}" restricts both the day of month and the day of week, which cron reads as EITHER (e.g. days 1–7 and every Tuesday); for "the first Tuesday" write the weekday with #: "0 9 * * 2#1"`;
  }
  try {
    if (nextOccurrence(pattern, zone, new Date()) === undefined) return `"${pattern}" never runs`;
  } catch (err) {
    return `"${pattern}" is not a cron pattern (${err instanceof Error ? err.message : String(err)}); write 5 fields: ${FIELDS.join(', ')}`;
  }
  return '';
}

/** The first occurrence strictly after `after`, in `zone`'s wall-clock time. */
export function nextOccurrence(pattern: string, zone: string, after: Date): Date | undefined {
  const ms = getNextMillis(after.getTime(), { pattern, tz: zone });
  return ms === undefined ? undefined : new Date(ms);
}
