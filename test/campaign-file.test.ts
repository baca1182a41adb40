import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCampaign, readCampaignFile } from '../src/domain/campaign-file.js';
import { UserError } from '../src/errors.js';
import { testConfig } from './helpers/context.js';

/** Campaign file validation: every refusal is a UserError naming the file, the line and the field. */

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'campaigns');
const config = testConfig();
// Before both DST days used below, so they are in the future.
const now = new Date('2026-06-01T12:00:00Z');
const FILE = '/campaigns/test.yaml';

const social = (sendAt: string, extra = '') => `title: Surgery reminder\nkind: social\nsend_at: ${sendAt}\n${extra}channels:\n  mastodon: { text: "Surgery on Thursday" }\n`;

function refusal(yaml: string, at = now): UserError {
  try {
    parseCampaign(yaml, FILE, config, { now: at });
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const u = err as UserError;
    expect(u.exitCode).toBe(1);
    expect(u.where.file).toBe(FILE);
    expect(u.message.startsWith(`${FILE}:${u.where.line}`)).toBe(true);
    return u;
  }
  throw new Error('expected the campaign file to be refused');
}

describe('a valid campaign file', () => {
  it('parses a social campaign in London time', () => {
    const d = parseCampaign(social('2027-07-01 09:00'), FILE, config, { now });
    expect(d).toMatchObject({ title: 'Surgery reminder', kind: 'social', timezone: 'Europe/London', essential: false });
    expect(d.sendAt.toISOString()).toBe('2027-07-01T08:00:00.000Z');
    expect(d.channels.mastodon).toMatchObject({ text: 'Surgery on Thursday' });
  });

  it('inlines body_file relative to the campaign file (read once, at create)', () => {
    const d = readCampaignFile(path.join(fixtures, 'newsletter.yaml'), config, { now });
    expect(d.channels.email).toMatchObject({ list: 'newsletter', body: readFileSync(path.join(fixtures, 'bodies', 'december.md'), 'utf8') });
    expect(d.channels.email).not.toHaveProperty('body_file');
  });

  it('respects a timezone: field', () => {
    const d = readCampaignFile(path.join(fixtures, 'new-york.yaml'), config, { now });
    expect(d.timezone).toBe('America/New_York');
    expect(d.sendAt.toISOString()).toBe('2027-07-01T13:00:00.000Z');
  });

  it('an explicit offset resolves the clocks-go-back overlap', () => {
    expect(parseCampaign(social('2026-10-25 01:30 +01:00'), FILE, config, { now }).sendAt.toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(parseCampaign(social('2026-10-25 01:30 +00:00'), FILE, config, { now }).sendAt.toISOString()).toBe('2026-10-25T01:30:00.000Z');
  });
});

describe('refusals', () => {
  it('unknown channel: names it, the known ones, and its line', () => {
    const err = refusal('title: T\nkind: social\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon: { text: hi }\n  fax: { text: hi }\n');
    expect(err.where).toMatchObject({ line: 6, field: 'channels.fax' });
    expect(err.message).toContain('unknown channel "fax"');
    expect(err.message).toContain('twitter');
  });

  it('unknown kind', () => {
    const err = refusal('title: T\nkind: leaflet\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon: { text: hi }\n');
    expect(err.where).toMatchObject({ line: 2, field: 'kind' });
    expect(err.message).toContain('newsletter, community, social, press');
  });

  it('missing title, send_at, channels', () => {
    const noTitle = refusal('kind: social\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon: { text: hi }\n');
    expect(noTitle.where.field).toBe('title');
    const noSendAt = refusal('title: T\nkind: social\nchannels:\n  mastodon: { text: hi }\n');
    expect(noSendAt.where.field).toBe('send_at');
    expect(noSendAt.message).toContain('send_at is required');
    const noChannels = refusal('title: T\nkind: social\nsend_at: 2027-07-01 09:00\n');
    expect(noChannels.where.field).toBe('channels');
    const emptyChannels = refusal('title: T\nkind: social\nsend_at: 2027-07-01 09:00\nchannels: {}\n');
    expect(emptyChannels.where).toMatchObject({ field: 'channels', line: 4 });
  });

  it('unknown field at the top and inside a channel: names the field and its line', () => {
    const top = refusal('title: T\nkind: social\ncolour: red\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon: { text: hi }\n');
    expect(top.message).toContain('unknown field colour');
    expect(top.where).toMatchObject({ field: 'colour', line: 3 });
    const inner = refusal('title: T\nkind: social\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon:\n    text: hi\n    colour: red\n');
    expect(inner.message).toContain('unknown field colour');
    expect(inner.where).toMatchObject({ field: 'channels.mastodon.colour', line: 7 });
  });

  it('send_at in the past', () => {
    const err = refusal(social('2026-05-01 09:00'));
    expect(err.where).toMatchObject({ field: 'send_at', line: 3 });
    expect(err.message).toContain('in the past');
  });

  it('a time the clocks skip: 2027-03-28 01:30 London names send_at and 00:30 GMT / 02:30 BST', () => {
    const err = refusal(social('2027-03-28 01:30'));
    expect(err.where).toMatchObject({ field: 'send_at', line: 3 });
    expect(err.message).toContain('field "send_at"');
    expect(err.message).toContain('00:30 GMT');
    expect(err.message).toContain('02:30 BST');
  });

  it('an ambiguous time: 2026-10-25 01:30 London names both +01:00 and +00:00 readings', () => {
    const err = refusal(social('2026-10-25 01:30'));
    expect(err.where).toMatchObject({ field: 'send_at', line: 3 });
    expect(err.message).toContain('"2026-10-25 01:30 +01:00"');
    expect(err.message).toContain('"2026-10-25 01:30 +00:00"');
  });

  it('DST in the campaign timezone, not the config one', () => {
    const err = refusal(social('2027-03-14 02:30', 'timezone: America/New_York\n'));
    expect(err.message).toContain('America/New_York');
    // The same wall time is fine in London (no change that day).
    expect(() => parseCampaign(social('2027-03-14 02:30'), FILE, config, { now })).not.toThrow();
  });

  it('an unknown timezone: field', () => {
    const err = refusal(social('2027-07-01 09:00', 'timezone: Mars/Olympus\n'));
    expect(err.where).toMatchObject({ field: 'timezone', line: 4 });
  });

  it('a send_at that is not a time', () => {
    const err = refusal(social('next thursday'));
    expect(err.where).toMatchObject({ field: 'send_at', line: 3 });
  });

  it('a missing body_file names the path and the field', () => {
    const file = path.join(fixtures, 'missing-body.yaml');
    let err: unknown;
    try {
      readCampaignFile(file, config, { now });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const u = err as UserError;
    expect(u.where).toMatchObject({ file, field: 'channels.email.body_file', line: 8 });
    expect(u.message).toContain(path.join(fixtures, 'bodies', 'no-such-file.md'));
  });

  it('a campaign file that does not exist', () => {
    expect(() => readCampaignFile(path.join(fixtures, 'nope.yaml'), config, { now })).toThrow(/cannot read the campaign file/);
  });

  it('X text too long: says how long it is and the limit', () => {
    const text = 'a'.repeat(300);
    const err = refusal(`title: T\nkind: social\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon: { text: hi }\n  twitter:\n    text: "${text}"\n`);
    expect(err.where).toMatchObject({ field: 'channels.twitter.text', line: 7 });
    expect(err.message).toContain('300 characters');
    expect(err.message).toContain('280');
  });

  it('invalid YAML gives the line', () => {
    const err = refusal('title: T\nkind: social\nsend_at: 2027-07-01 09:00\nchannels:\n  mastodon: { text: hi\n');
    expect(err.message).toContain('not valid YAML');
    expect(err.where.line).toBeGreaterThanOrEqual(5);
  });

  it('a channel missing a required field (email subject)', () => {
    const err = refusal('title: T\nkind: newsletter\nsend_at: 2027-07-01 09:00\nchannels:\n  email:\n    list: newsletter\n    body: hi\n');
    expect(err.where.field).toBe('channels.email.subject');
    expect(err.where.line).toBe(5);
  });
});

describe('a file with several mistakes', () => {
  it('reports every one at once, each with its line and field', () => {
    const yaml = 'title: x\nkind: social\nsend_at: 2020-01-01 10:00\nchannels:\n  email: { lst: a }\n  fax: {}\n  mastodon: { text: "ok" }\n';
    const u = refusal(yaml);
    expect(u.where).toMatchObject({ line: 3, field: 'send_at' });
    const lines = u.message.split('\n');
    expect(lines).toEqual([
      `${FILE}:3, field "send_at": 2020-01-01 10:00 is in the past`,
      `${FILE}:5, field "channels.email.list": required (string)`,
      `${FILE}:5, field "channels.email.subject": required (string)`,
      `${FILE}:5, field "channels.email.lst": unknown field lst`,
      expect.stringMatching(new RegExp(`^${FILE}:6, field "channels.fax": unknown channel "fax"`)),
    ]);
    expect(u.more).toHaveLength(4);
  });
});
