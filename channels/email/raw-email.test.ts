import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { describe, expect, it } from 'vitest';
import type { Recipient } from '../adapter.js';
import { testConfig } from '../../test/helpers/context.js';
import { composeEmail, composeRawEmail, rawMessage, type EmailInput } from './message.js';

/**
 * composeRawEmail (the send path: a cached template, the recipient's parts
 * substituted, one Buffer) must say exactly what composeEmail + nodemailer say:
 * every hostile name and subject below is parsed back from both and compared.
 */

const stream = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });

async function viaNodemailer(mail: SendMailOptions): Promise<ParsedMail> {
  const info = await stream.sendMail(mail);
  return simpleParser(info.message as Buffer);
}

function addresses(a: AddressObject | AddressObject[] | undefined): Array<{ name: string; address?: string }> {
  return [a ?? []].flat().flatMap((x) => x.value.map((v) => ({ name: v.name, address: v.address })));
}

function view(m: ParsedMail) {
  return {
    from: addresses(m.from),
    to: addresses(m.to),
    subject: m.subject,
    text: m.text,
    html: m.html,
    messageId: m.messageId,
    date: m.date?.toISOString(),
    // mailparser gathers List-Unsubscribe, List-Unsubscribe-Post and List-Id under 'list'; the raw lines, unfolded, too.
    list: m.headers.get('list'),
    listLines: m.headerLines
      .filter((h) => h.key.startsWith('list-'))
      .map((h) => `${h.key}:${h.line.slice(h.line.indexOf(':') + 1).replace(/\r?\n\s+/g, ' ')}`) // names are case-insensitive
      .sort(),
    campaign: m.headers.get('x-crier-campaign'),
  };
}

const names = [
  'Ada Lovelace',
  '',
  '   ',
  'Zoë Brontë-Ñúñez',
  'O\'Brien, "Bob" <bob@evil.example>',
  'Line\r\nBcc: victim@example.org',
  '<script>alert(1)</script> & co',
  '**bold** _under_ [link](http://x)',
  '😀 emoji name',
  'A'.repeat(300),
  'backslash \\ and "quote"',
  '=?UTF-8?Q?already_encoded?=',
];

const base: Omit<EmailInput, 'recipient' | 'key'> = {
  subject: 'Hello {{ name }}: roads in Rugby',
  markdown: '# News for {{name}}\n\nDear {{name}},\n\n- one\n- two — café\n\n[Read more](https://example.org/a?b=1&c=2) and a line that is long enough to be wrapped by quoted-printable encoding at seventy-six characters =',
  list: 'newsletter',
  campaignId: 'c-raw',
  now: new Date('2026-12-01T09:00:00Z'),
};

/** RFC 2045 §6.7 decoding: soft breaks removed, =XX to the byte. */
function decodeQuotedPrintable(encoded: string): string {
  const bytes: number[] = [];
  const body = encoded.replace(/=\r\n/g, '');
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '=') {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(body.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

describe('rawMessage quoted-printable', () => {
  it('decodes back to each part exactly, lines of at most 76, no trailing space, = and 8-bit encoded', () => {
    const parts = [
      '',
      'short',
      'x'.repeat(200),
      '='.repeat(100),
      'trailing space \r\nand tab\t\r\nend with space ',
      'café — 日本語 😀 '.repeat(20),
      'lone\nline feed and lone\rcarriage return\r\n\r\n\r\nblank lines',
      `${'a'.repeat(74)} ${'b'.repeat(80)}\r\n${'c'.repeat(75)}\r\n${'d'.repeat(76)}`,
      'é'.repeat(30) + 'x'.repeat(3),
      Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join(''),
    ];
    for (const part of parts) {
      const raw = rawMessage('H: 1\r\n\r\n', part, '\r\n--b\r\n', part.toUpperCase(), '\r\n--b--\r\n').toString('latin1');
      expect(raw.startsWith('H: 1\r\n\r\n') && raw.endsWith('\r\n--b--\r\n')).toBe(true);
      const [text, html, ...rest] = raw.slice('H: 1\r\n\r\n'.length, -'\r\n--b--\r\n'.length).split('\r\n--b\r\n');
      expect(rest).toEqual([]);
      expect(decodeQuotedPrintable(text!), JSON.stringify(part)).toBe(part);
      expect(decodeQuotedPrintable(html!)).toBe(part.toUpperCase());
      for (const line of raw.split('\r\n')) {
        expect(line.length, JSON.stringify(line)).toBeLessThanOrEqual(76);
        expect(line).not.toMatch(/[ \t]$/);
        expect(line).toMatch(/^[\x21-\x7e \t]*$/);
      }
    }
  });
});

describe('composeRawEmail', () => {
  it('decodes to what composeEmail and nodemailer send, for hostile names', async () => {
    const config = testConfig();
    for (const [i, name] of names.entries()) {
      const recipient: Recipient = { id: `r${i}`, email: `reader${i}@example.org`, name, area: '', topics: [] };
      const input: EmailInput = { ...base, recipient, key: `c-raw:email:r${i}` };
      const want = view(await viaNodemailer(composeEmail(config, input)));
      const raw = composeRawEmail(config, input);
      expect(Buffer.isBuffer(raw.raw)).toBe(true);
      const got = view(await simpleParser(raw.raw as Buffer));
      expect(got, `name ${JSON.stringify(name)}`).toEqual(want);
      expect(raw.envelope).toEqual({ from: want.from[0]?.address, to: [`reader${i}@example.org`] });
      const bytes = (raw.raw as Buffer).toString('latin1');
      expect(bytes.split('\r\n').every((line) => line.length <= 998 && !line.includes('\n') && !line.includes('\r'))).toBe(true);
      expect(/^[\x20-\x7e\r\n\t]*$/.test(bytes)).toBe(true);
      // No recipient-controlled text can start a header of its own.
      expect(bytes.split('\r\n\r\n')[0]).not.toMatch(/^Bcc:/im);
    }
  });

  it('keeps a subject without {{name}}, a non-ASCII subject, the press heading and label', async () => {
    const config = testConfig();
    const inputs: EmailInput[] = [
      { ...base, subject: 'Plain subject', recipient: { id: 'p1', email: 'p1@example.org', name: 'P One', area: '', topics: [] }, key: 'k1' },
      { ...base, subject: 'Brontë’s £5 “quote” — {{name}}', recipient: { id: 'p2', email: 'p2@example.org', name: 'Zoë', area: '', topics: [] }, key: 'k2' },
      {
        ...base,
        label: 'Press release',
        heading: { title: 'Police & <Crime> Plan', kicker: 'EMBARGOED UNTIL 00:01 GMT Tue 1 December 2026' },
        recipient: { id: 'p3', email: 'p3@example.org', name: 'Editor', area: '', topics: [] },
        key: 'k3',
      },
    ];
    for (const input of inputs) {
      expect(view(await simpleParser(composeRawEmail(config, input).raw as Buffer))).toEqual(view(await viaNodemailer(composeEmail(config, input))));
    }
  });

  it('encodes a From name with quotes or non-ASCII as nodemailer does', async () => {
    for (const mailFrom of ['"Bureau du Commissaire — Warwickshire" <press@example.org>', 'Office of the PCC, "Comms" <news@example.org>', 'plain@example.org']) {
      const config = { ...testConfig(), mailFrom };
      const input: EmailInput = { ...base, recipient: { id: 'f', email: 'f@example.org', name: 'F', area: '', topics: [] }, key: 'kf' };
      const raw = composeRawEmail(config, input);
      expect(view(await simpleParser(raw.raw as Buffer))).toEqual(view(await viaNodemailer(composeEmail(config, input))));
      expect(raw.envelope?.from).toBe(/<([^>]+)>/.exec(mailFrom)?.[1] ?? mailFrom);
    }
  });

  it('sends internationalised domains through nodemailer (punycode) and refuses bad addresses alike', async () => {
    const config = testConfig();
    const input: EmailInput = { ...base, recipient: { id: 'i', email: 'reader@jõgeva.ee', name: 'Reader', area: '', topics: [] }, key: 'ki' };
    const idn = composeRawEmail(config, input);
    expect(idn.raw).toBeUndefined();
    expect(idn).toEqual(composeEmail(config, input));
    expect((await stream.sendMail(idn)).envelope.to).toEqual(['reader@xn--jgeva-dua.ee']);
    expect(() => composeRawEmail(config, { ...base, recipient: { id: 'b', email: 'not an address', name: '', area: '', topics: [] }, key: 'kb' })).toThrow(/not a valid email address/);
    expect(() => composeRawEmail(config, { ...base, subject: '  ', recipient: { id: 'b', email: 'b@example.org', name: '', area: '', topics: [] }, key: 'kb' })).toThrow(/subject is empty/);
  });
});
