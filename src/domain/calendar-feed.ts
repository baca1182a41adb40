import { randomBytes } from 'node:crypto';
import ical from 'ical-generator';
import type { Redis } from 'ioredis';
import type { Campaign } from './campaigns.js';

/**
 * The team's calendar feed: scheduled and sent campaigns as iCalendar, at a
 * URL whose secret part is the only key (Outlook cannot sign in). Times are
 * UTC instants (`DTSTART:…Z`), so every client shows them in its own zone
 * without needing VTIMEZONE data. Rotating the secret breaks the old URL.
 */

const key = (prefix: string) => `${prefix}:calendar:secret`;

/** The feed's secret, made on first use; `rotate` replaces it (the old URL stops working). */
export async function calendarSecret(redis: Redis, prefix: string, rotate = false): Promise<string> {
  const fresh = randomBytes(24).toString('base64url');
  if (rotate) {
    await redis.set(key(prefix), fresh);
    return fresh;
  }
  await redis.set(key(prefix), fresh, 'NX');
  return (await redis.get(key(prefix))) ?? fresh;
}

export async function currentCalendarSecret(redis: Redis, prefix: string): Promise<string | null> {
  return redis.get(key(prefix));
}

export function calendarUrl(publicUrl: string, secret: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/calendar/${secret}.ics`;
}

/** Campaigns the team would want in a calendar: not cancelled, not drafts. */
const SHOWN = new Set(['awaiting_approval', 'scheduled', 'held', 'sending', 'sent', 'partially_failed', 'failed']);

export function renderCalendar(campaigns: Campaign[], opts: { name: string; publicUrl: string; host: string }): string {
  const cal = ical({ name: opts.name, prodId: { company: 'crier', product: 'crier', language: 'EN' } });
  for (const c of campaigns) {
    if (!SHOWN.has(c.status)) continue;
    cal.createEvent({
      id: `${c.id}@${opts.host}`,
      start: c.sendAt,
      end: new Date(c.sendAt.getTime() + 30 * 60_000),
      stamp: c.createdAt,
      summary: `${c.title} (${c.kind})`,
      description: `Status: ${c.status.replace(/_/g, ' ')}. Channels: ${Object.keys(c.channels).join(', ')}. Author: ${c.author}.`,
      url: `${opts.publicUrl.replace(/\/+$/, '')}/dashboard/campaigns/${c.id}`,
      sequence: c.version,
    });
  }
  // RFC 5545 ends every content line, the last included, with CRLF; ical-generator leaves the last bare.
  const text = cal.toString();
  return text.endsWith('\r\n') ? text : `${text}\r\n`;
}
