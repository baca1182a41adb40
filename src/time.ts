import { DateTime } from 'luxon';
import { UserError, type Where } from './errors.js';

/**
 * Local wall-clock times ("2026-12-01 09:00") in a zone → UTC instants.
 * A time that the clocks skip (spring forward) or pass twice (fall back) is
 * refused with both valid readings spelled out, never silently shifted.
 */
const LOCAL = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\s*(Z|[+-]\d{2}:?\d{2}))?$/;

function fmt(dt: DateTime): string {
  return `${dt.toFormat('yyyy-MM-dd HH:mm')} ${dt.setLocale('en-GB').offsetNameShort ?? dt.toFormat('ZZ')} (${dt.toUTC().toFormat('HH:mm')} UTC)`;
}

export function parseLocalTime(value: unknown, zone: string, where: Where): Date {
  const text = value instanceof Date ? value.toISOString().slice(0, 16).replace('T', ' ') : String(value ?? '').trim();
  const m = LOCAL.exec(text);
  if (!m) throw new UserError(`"${text}" is not a time; write it as "YYYY-MM-DD HH:mm" or "YYYY-MM-DD HH:mm:ss" (local time, ${zone})`, 'CRIER_ERR_INPUT', where);
  const [, y, mo, d, h, mi, sec, offset] = m;
  const wall = { year: Number(y), month: Number(mo), day: Number(d), hour: Number(h), minute: Number(mi), second: Number(sec ?? 0) };
  if (offset) {
    const off = offset === 'Z' ? 'UTC' : `UTC${offset.length === 5 ? `${offset.slice(0, 3)}:${offset.slice(3)}` : offset}`;
    const dt = DateTime.fromObject(wall, { zone: off });
    if (!dt.isValid) throw new UserError(`"${text}" is not a valid date and time`, 'CRIER_ERR_INPUT', where);
    return dt.toJSDate();
  }
  const asUtc = DateTime.fromObject(wall, { zone: 'UTC' });
  if (!asUtc.isValid || asUtc.hour !== wall.hour || asUtc.day !== wall.day || wall.second > 59) {
    throw new UserError(`"${text}" is not a valid date and time`, 'CRIER_ERR_INPUT', where);
  }
  // Every UTC offset the zone uses around that day; keep those whose instant reads back as the same wall time.
  const offsets = new Set<number>();
  for (const hours of [-36, -12, 0, 12, 36]) offsets.add(asUtc.plus({ hours }).setZone(zone).offset);
  const readings: DateTime[] = [];
  for (const o of offsets) {
    const instant = asUtc.minus({ minutes: o }).setZone(zone);
    if (instant.toFormat('yyyy-MM-dd HH:mm:ss') === asUtc.toFormat('yyyy-MM-dd HH:mm:ss')) readings.push(instant);
  }
  readings.sort((a, b) => a.toMillis() - b.toMillis());
  if (readings.length === 1) return readings[0]!.toJSDate();
  if (readings.length === 0) {
    // The clocks jump over it: offer the same wall time read with the offset before and after the jump.
    const [before, after] = [...offsets].sort((a, b) => a - b);
    const early = asUtc.minus({ minutes: after ?? 0 }).setZone(zone);
    const late = asUtc.minus({ minutes: before ?? 0 }).setZone(zone);
    throw new UserError(
      `${text} does not exist in ${zone}: the clocks go forward that day. Use ${fmt(early)} or ${fmt(late)}`,
      'CRIER_ERR_INPUT',
      where,
    );
  }
  const [first, second] = readings as [DateTime, DateTime];
  throw new UserError(
    `${text} happens twice in ${zone}: the clocks go back that day. Say which: "${text} ${first.toFormat('ZZ')}" is ${fmt(first)}, "${text} ${second.toFormat('ZZ')}" is ${fmt(second)}`,
    'CRIER_ERR_INPUT',
    where,
  );
}

export function formatLocal(date: Date, zone: string): string {
  const dt = DateTime.fromJSDate(date, { zone });
  return dt.toFormat(dt.second ? 'yyyy-MM-dd HH:mm:ss' : 'yyyy-MM-dd HH:mm');
}

export function isValidZone(zone: string): boolean {
  return DateTime.local().setZone(zone).isValid;
}
