import { readFile } from 'node:fs/promises';
import { DateTime } from 'luxon';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, type ChannelAdapter, type Delivery, type SendContext } from '../adapter.js';
import { silentLogger, testConfig } from '../../test/helpers/context.js';
import { startSmtpSink, type SmtpSink } from '../../test/helpers/smtp-sink.js';
import { createPressEmailAdapter, embargoLabel } from './email.js';

const at = (iso: string): SendContext => ({ log: silentLogger(), now: () => new Date(iso) });

function delivery(content: Record<string, unknown> = {}): Delivery {
  return {
    campaignId: 'press1',
    campaignTitle: 'Rural crime team',
    kind: 'press',
    channel: 'press',
    content: {
      headline: 'New rural crime team for Warwickshire',
      body: 'Dear {{name}},\n\nThe Commissioner today announced a **new team**.',
      embargo_until: '2026-12-01 00:01',
      embargo_until_iso: '2026-12-01T00:01:00.000Z',
      list: 'media',
      ...content,
    },
    recipient: { id: 'j-1', email: 'desk@paper.example', name: 'News Desk', area: '', topics: [] },
    key: 'press1:press:0:j-1',
  };
}

describe('press release emails', () => {
  let sink: SmtpSink;
  let adapter: ChannelAdapter;

  beforeAll(async () => {
    sink = await startSmtpSink();
    adapter = createPressEmailAdapter(testConfig({ env: { SMTP_URL: sink.url } }));
  });
  afterAll(async () => {
    await adapter.close();
    await sink.close();
  });
  afterEach(() => {
    sink.messages.length = 0;
  });

  it('marks the email EMBARGOED in subject and both parts before the embargo', async () => {
    await adapter.send(delivery(), at('2026-11-30T15:00:00Z'));
    const mail = (await sink.waitFor(1))[0]!.parsed!;
    expect(mail.subject).toBe('EMBARGOED UNTIL 00:01 GMT Tue 1 December 2026: New rural crime team for Warwickshire');
    // The embargo line, then the headline, then the body (issue 9: the headline was missing from the body).
    expect(mail.html).toMatch(/>EMBARGOED UNTIL 00:01 GMT Tue 1 December 2026<\/p>\s*<h1[^>]*>New rural crime team for Warwickshire<\/h1>\s*<p>Dear News Desk,<\/p>/);
    expect(mail.text!.startsWith('EMBARGOED UNTIL 00:01 GMT Tue 1 December 2026\n\nNew rural crime team for Warwickshire\n\nDear News Desk,')).toBe(true);
    expect(mail.text).toMatch(/\nENDS\n/);
    expect(mail.headerLines.some((h) => h.key === 'list-unsubscribe')).toBe(true);
  });

  it('honours the embargo to the second', async () => {
    await adapter.send(delivery(), at('2026-12-01T00:00:59.999Z'));
    await adapter.send(delivery(), at('2026-12-01T00:01:00.000Z'));
    const [before, after] = (await sink.waitFor(2)).map((m) => m.parsed!);
    expect(before!.subject).toMatch(/^EMBARGOED UNTIL /);
    expect(after!.subject).toBe('New rural crime team for Warwickshire');
    expect(after!.html).not.toContain('EMBARGOED');
    expect(after!.text).not.toContain('EMBARGOED');
    expect(after!.html).toContain('<strong>new team</strong>');
  });

  it('shows the embargo in London local time across BST, from the ISO instant or the local time alone', async () => {
    // 00:01 BST on 1 June is 23:01 UTC on 31 May.
    await adapter.send(delivery({ embargo_until: '2026-06-01 00:01', embargo_until_iso: '2026-05-31T23:01:00.000Z' }), at('2026-05-31T23:00:00Z'));
    await adapter.send(delivery({ embargo_until: '2026-06-01 00:01', embargo_until_iso: undefined }), at('2026-05-31T23:00:59Z'));
    await adapter.send(delivery({ embargo_until: '2026-06-01 00:01', embargo_until_iso: undefined }), at('2026-05-31T23:01:00Z'));
    const [a, b, c] = (await sink.waitFor(3)).map((m) => m.parsed!.subject);
    expect(a).toBe('EMBARGOED UNTIL 00:01 BST Mon 1 June 2026: New rural crime team for Warwickshire');
    expect(b).toBe(a);
    expect(c).toBe('New rural crime team for Warwickshire');
  });

  it('sends unmarked without an embargo and refuses a malformed one', async () => {
    await adapter.send(delivery({ embargo_until: undefined, embargo_until_iso: undefined }), at('2026-11-30T15:00:00Z'));
    expect((await sink.waitFor(1))[0]!.parsed!.subject).toBe('New rural crime team for Warwickshire');
    await expect(adapter.send(delivery({ embargo_until: 'tomorrow', embargo_until_iso: undefined }), at('2026-11-30T15:00:00Z'))).rejects.toBeInstanceOf(
      PermanentError,
    );
    await expect(adapter.send(delivery({ headline: '' }), at('2026-11-30T15:00:00Z'))).rejects.toBeInstanceOf(PermanentError);
  });
});

describe('press release emails, dry run', () => {
  it('writes the marked .eml to the outbox', async () => {
    const config = testConfig();
    const adapter = createPressEmailAdapter(config);
    const result = await adapter.send(delivery(), at('2026-11-30T15:00:00Z'));
    await adapter.close();
    expect(result.outboxFile).toBe(`${config.outboxDir}/press1-press-j-1.eml`);
    const mail = await simpleParser(await readFile(result.outboxFile!));
    expect(mail.subject).toBe('EMBARGOED UNTIL 00:01 GMT Tue 1 December 2026: New rural crime team for Warwickshire');
  });
});

describe('embargo label', () => {
  it('names the zone, and the seconds only when the embargo has them', () => {
    expect(embargoLabel(DateTime.fromISO('2026-12-01T00:01:00Z'), 'Europe/London')).toBe('00:01 GMT Tue 1 December 2026');
    expect(embargoLabel(DateTime.fromISO('2026-07-01T09:30:15+01:00'), 'Europe/London')).toBe('09:30:15 BST Wed 1 July 2026');
  });
});
