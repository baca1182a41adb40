import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { formatLocal, isValidZone, parseLocalTime } from '../src/time.js';

/** Local wall-clock time → instant, with both DST cases refused and explained. */

const where = { file: 'c.yaml', line: 3, field: 'send_at' };
const iso = (text: string, zone = 'Europe/London') => parseLocalTime(text, zone, where).toISOString();

function refusal(text: string, zone = 'Europe/London'): UserError {
  try {
    parseLocalTime(text, zone, where);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(1);
    expect((err as UserError).where).toEqual(where);
    return err as UserError;
  }
  throw new Error(`expected "${text}" in ${zone} to be refused`);
}

describe('parseLocalTime', () => {
  it('reads GMT and BST wall times in Europe/London', () => {
    expect(iso('2026-12-01 09:00')).toBe('2026-12-01T09:00:00.000Z');
    expect(iso('2027-07-01 09:00')).toBe('2027-07-01T08:00:00.000Z');
    expect(iso('2027-07-01T09:00:30')).toBe('2027-07-01T08:00:30.000Z');
  });

  it('reads other zones', () => {
    expect(iso('2027-07-01 09:00', 'America/New_York')).toBe('2027-07-01T13:00:00.000Z');
    expect(iso('2027-01-15 09:00', 'Australia/Sydney')).toBe('2027-01-14T22:00:00.000Z');
  });

  it('the edges of the DST days are fine', () => {
    expect(iso('2027-03-28 00:59:59')).toBe('2027-03-28T00:59:59.000Z');
    expect(iso('2027-03-28 02:00')).toBe('2027-03-28T01:00:00.000Z');
    expect(iso('2026-10-25 00:59:59')).toBe('2026-10-24T23:59:59.000Z');
    expect(iso('2026-10-25 02:00')).toBe('2026-10-25T02:00:00.000Z');
  });

  it('refuses a time the clocks skip (2027-03-28 01:30 London) naming 00:30 GMT and 02:30 BST', () => {
    const err = refusal('2027-03-28 01:30');
    expect(err.message).toContain('c.yaml:3');
    expect(err.message).toContain('field "send_at"');
    expect(err.message).toContain('does not exist');
    expect(err.message).toContain('2027-03-28 00:30 GMT');
    expect(err.message).toContain('2027-03-28 02:30 BST');
  });

  it('refuses a time the clocks pass twice (2026-10-25 01:30 London) naming +01:00 and +00:00', () => {
    const err = refusal('2026-10-25 01:30');
    expect(err.message).toContain('happens twice');
    expect(err.message).toContain('2026-10-25 01:30 +01:00');
    expect(err.message).toContain('2026-10-25 01:30 +00:00');
    expect(err.message).toContain('BST');
    expect(err.message).toContain('GMT');
  });

  it('an explicit offset resolves the ambiguity (both spellings)', () => {
    expect(iso('2026-10-25 01:30 +01:00')).toBe('2026-10-25T00:30:00.000Z');
    expect(iso('2026-10-25 01:30 +00:00')).toBe('2026-10-25T01:30:00.000Z');
    expect(iso('2026-10-25 01:30 +0000')).toBe('2026-10-25T01:30:00.000Z');
    expect(iso('2026-10-25 01:30Z')).toBe('2026-10-25T01:30:00.000Z');
  });

  it('handles DST in other zones (New York, Sydney)', () => {
    const gap = refusal('2027-03-14 02:30', 'America/New_York');
    expect(gap.message).toContain('2027-03-14 01:30');
    expect(gap.message).toContain('2027-03-14 03:30');
    const overlap = refusal('2026-11-01 01:30', 'America/New_York');
    expect(overlap.message).toContain('-04:00');
    expect(overlap.message).toContain('-05:00');
    expect(refusal('2027-10-03 02:30', 'Australia/Sydney').message).toContain('does not exist');
    expect(refusal('2027-04-04 02:30', 'Australia/Sydney').message).toContain('happens twice');
  });

  it('refuses things that are not times', () => {
    for (const bad of ['tomorrow', '2027-02-30 10:00', '2027-01-01 24:00', '2027-06-01 10:00:60', '2027-13-01 10:00', '01/12/2026 09:00', '']) {
      expect(refusal(bad).message).toMatch(/not a (valid date and )?time/);
    }
  });
});

describe('helpers', () => {
  it('formatLocal shows the wall time in the zone', () => {
    expect(formatLocal(new Date('2027-07-01T08:00:00Z'), 'Europe/London')).toBe('2027-07-01 09:00');
    expect(formatLocal(new Date('2026-10-25T01:30:00Z'), 'Europe/London')).toBe('2026-10-25 01:30');
  });

  it('isValidZone', () => {
    expect(isValidZone('Europe/London')).toBe(true);
    expect(isValidZone('America/New_York')).toBe(true);
    expect(isValidZone('Europe/Atlantis')).toBe(false);
  });
});
