import { createHash, randomBytes } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import type { Config } from '../../src/config.js';
import { emailMasthead, emailOrgFooter, textOrgFooter } from '../../src/branding.js';
import { signUnsubscribeToken } from '../../src/domain/unsubscribe-token.js';
import { PermanentError, type Recipient } from '../adapter.js';
import { displayName, escapeHtml, markdownToHtml, markdownToText, personaliseText, stripControl } from './markdown.js';

/**
 * One recipient's message, ready for nodemailer: both parts, the signed
 * unsubscribe link and the list headers. Shared by email, community and press.
 */

export interface EmailInput {
  /** Subject template; `{{name}}` is replaced with the recipient's name. */
  subject: string;
  /** Markdown body template; `{{name}}` as above. */
  markdown: string;
  /** The audience list the recipient is on (List-Id, footer). */
  list: string;
  campaignId: string;
  /** Stable per delivery: the Message-ID is derived from it so a retry sends the same id. */
  key: string;
  recipient: Recipient;
  now: Date;
  /** What the message is, under the organisation's name in the masthead ("Press release"). */
  label?: string;
  /** A headline above the body (plain text, escaped here), with an optional line above it ("EMBARGOED UNTIL …"). */
  heading?: { title: string; kicker?: string };
}

function headingHtml(h: EmailInput['heading']): string {
  if (!h) return '';
  const kicker = h.kicker ? `<p style="margin:0 0 8px 0;font-size:14px;font-weight:bold;letter-spacing:.04em;color:#b00020;">${escapeHtml(h.kicker)}</p>\n` : '';
  return `${kicker}<h1 style="margin:0 0 16px 0;font-size:26px;line-height:1.25;color:#111111;">${escapeHtml(h.title)}</h1>\n`;
}

function headingText(h: EmailInput['heading']): string {
  if (!h) return '';
  return `${h.kicker ? `${h.kicker}\n\n` : ''}${h.title}\n\n`;
}

const EMAIL_RE = /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+$/;

/** The recipient's one-click link: it unsubscribes from `list`, the list the message came from. */
export function unsubscribeUrl(config: Config, subscriberId: string, list?: string): string {
  return `${config.publicUrl}/u/${signUnsubscribeToken(config.secret, subscriberId, list)}`;
}

function fromDomain(from: string): string {
  const m = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  return m?.[1] ?? 'crier.invalid';
}

export function messageIdFor(key: string, recipientId: string, from: string): string {
  const digest = createHash('sha256').update(`${key}\n${recipientId}`).digest('hex').slice(0, 40);
  return `<${digest}.crier@${fromDomain(from)}>`;
}

export function listIdFor(config: Config, list: string): string {
  const slug = list.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'list';
  let host = 'localhost';
  try {
    host = new URL(config.publicUrl).hostname || host;
  } catch {
    // publicUrl is validated by config; keep the fallback for hand-built configs.
  }
  // An unquoted ASCII phrase: a quote or non-ASCII would make nodemailer encode the whole value, id included.
  const label = stripControl(list)
    .replace(/[^A-Za-z0-9 !#$%&'*+/=?^_`{|}~-]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return label ? `${label} <${slug}.${host}>` : `<${slug}.${host}>`;
}

function wrapHtml(subject: string, content: string, list: string, unsubscribe: string, brand: { masthead: string; footer: string }): string {
  const url = escapeHtml(unsubscribe);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(subject)}</title><style>td>p:first-child,td>h1:first-child,td>h2:first-child{margin-top:0}</style></head>
<body style="margin:0;padding:0;background:#f4f4f4;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f4f4;"><tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="max-width:600px;width:100%;background:#ffffff;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#222222;">
${brand.masthead}<tr><td style="padding:24px;">
${content}
</td></tr>
<tr><td style="padding:16px 24px;border-top:1px solid #dddddd;font-size:12px;line-height:1.4;color:#666666;">
${brand.footer}You are receiving this because you subscribed to the ${escapeHtml(list)} list.
<a href="${url}" style="color:#666666;">Unsubscribe</a> with one click.
</td></tr>
</table>
</td></tr></table>
</body></html>
`;
}

export function composeEmail(config: Config, input: EmailInput): SendMailOptions {
  const { recipient } = input;
  const address = stripControl(recipient.email);
  if (!EMAIL_RE.test(address)) throw new PermanentError(`not a valid email address: ${JSON.stringify(address)}`);
  const from = stripControl(config.mailFrom);
  const subject = personaliseText(input.subject, recipient.name);
  if (!subject) throw new PermanentError('the subject is empty');
  const unsubscribe = unsubscribeUrl(config, recipient.id, input.list);
  // The organisation's masthead and footer (src/branding.ts): a resident sees who writes.
  const brand = { masthead: emailMasthead(config.org, config.publicUrl, input.label), footer: emailOrgFooter(config.org) };
  const html = wrapHtml(subject, headingHtml(input.heading) + markdownToHtml(input.markdown, recipient.name), input.list, unsubscribe, brand);
  const text = `${headingText(input.heading)}${markdownToText(input.markdown, recipient.name)}\n\n--\n${textOrgFooter(config.org)}You are receiving this because you subscribed to the ${stripControl(input.list)} list.\nUnsubscribe: ${unsubscribe}\n`;
  return {
    from,
    // An address object, not a string: nodemailer quotes/encodes the name, so it cannot add recipients.
    to: { name: stripControl(recipient.name), address },
    subject,
    text,
    html,
    date: input.now,
    messageId: messageIdFor(input.key, recipient.id, from),
    headers: {
      'List-Unsubscribe': `<${unsubscribe}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      'List-Id': listIdFor(config, input.list),
      'X-Crier-Campaign': stripControl(input.campaignId),
    },
    // Content never names files or URLs to attach; refuse them outright.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/**
 * The same message as composeEmail, as the exact bytes to send: the parts that
 * do not depend on the recipient (Markdown rendered, masthead, footer, fixed
 * headers) are built once per campaign content and cached; each recipient then
 * costs a few string substitutions, a quoted-printable pass and one Buffer,
 * handed to the SMTP connection in one write instead of nodemailer's
 * per-header stream. The decoded message (headers, both parts) is the one
 * composeEmail describes (channels/email/raw-email.test.ts parses both and
 * compares them). Addresses outside printable ASCII (internationalised
 * domains) go through composeEmail and nodemailer.
 */
export function composeRawEmail(config: Config, input: EmailInput): SendMailOptions {
  const { recipient } = input;
  const address = stripControl(recipient.email);
  if (!EMAIL_RE.test(address)) throw new PermanentError(`not a valid email address: ${JSON.stringify(address)}`);
  if (!ASCII_ADDRESS.test(address)) return composeEmail(config, input);
  const subject = personaliseText(input.subject, recipient.name);
  if (!subject) throw new PermanentError('the subject is empty');
  const t = templateFor(config, input);
  const name = displayName(recipient.name);
  const unsubscribe = unsubscribeUrl(config, recipient.id, input.list);
  const htmlName = escapeHtml(name);
  const htmlUrl = escapeHtml(unsubscribe);
  const html = t.html.replace(SLOT_RE, (_, which: string) => (which === 'N' ? htmlName : htmlUrl));
  const text = t.text.replace(SLOT_RE, (_, which: string) => (which === 'N' ? name : unsubscribe));
  const messageId = messageIdFor(input.key, recipient.id, t.fromRaw);
  const toName = stripControl(recipient.name);
  const head =
    t.fixedHeaders +
    headerLine('To', toName ? `${encodeAddressName(toName)} <${address}>` : address) +
    (t.subjectHeader ?? headerLine('Subject', subject)) +
    `Message-ID: ${messageId}\r\n` +
    `Date: ${input.now.toUTCString().replace(/GMT/, '+0000')}\r\n` +
    headerLine('List-Unsubscribe', `<${unsubscribe}>`);
  const raw = rawMessage(
    `${head}MIME-Version: 1.0\r\n\r\n--${t.boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`,
    text,
    `\r\n--${t.boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`,
    html,
    `\r\n--${t.boundary}--\r\n`,
  );
  return { envelope: { from: t.envelopeFrom, to: [address] }, raw, messageId };
}

/** A UTF-8 copy of the part being encoded, reused from message to message (one worker thread). */
let scratch = Buffer.allocUnsafe(64 * 1024);
const HEX = Buffer.from('0123456789ABCDEF', 'latin1');

/**
 * The message's bytes in one Buffer: the ASCII pieces (headers, boundaries) as they are, and the two
 * parts quoted-printable (RFC 2045 §6.7): CRLF kept as a line end, '=', controls and 8-bit bytes as =XX,
 * a space or tab before a line end as =20/=09, and a soft break ("=" CRLF) before a line would pass 76.
 * Written byte by byte into one allocation: nodemailer's encoder built each part a character at a time
 * in strings, ~60 KB of garbage per message, over a third of what a send allocates.
 */
export function rawMessage(head: string, text: string, middle: string, html: string, tail: string): Buffer {
  const textBytes = Buffer.byteLength(text, 'utf8');
  const htmlBytes = Buffer.byteLength(html, 'utf8');
  // At most 3 bytes out per byte in, plus a 3-byte soft break per 25 encoded bytes (75 columns).
  const bound = (n: number) => n * 3 + Math.ceil(n / 25) * 3;
  const out = Buffer.allocUnsafe(head.length + middle.length + tail.length + bound(textBytes) + bound(htmlBytes));
  let o = out.write(head, 0, 'latin1');
  o = encodeQuotedPrintable(text, textBytes, out, o);
  o += out.write(middle, o, 'latin1');
  o = encodeQuotedPrintable(html, htmlBytes, out, o);
  o += out.write(tail, o, 'latin1');
  return out.subarray(0, o);
}

function encodeQuotedPrintable(part: string, bytes: number, out: Buffer, at: number): number {
  if (scratch.length < bytes) scratch = Buffer.allocUnsafe(bytes * 2);
  const src = scratch;
  const n = src.write(part, 0, 'utf8');
  let o = at;
  let column = 0;
  for (let i = 0; i < n; i++) {
    const b = src[i]!;
    if (b === 13 && src[i + 1] === 10 && i + 1 < n) {
      out[o++] = 13;
      out[o++] = 10;
      i++;
      column = 0;
      continue;
    }
    const lineEnds = i + 1 === n || (src[i + 1] === 13 && src[i + 2] === 10 && i + 2 < n);
    const literal = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !lineEnds);
    const width = literal ? 1 : 3;
    if (column + width > 75) {
      out[o++] = 61;
      out[o++] = 13;
      out[o++] = 10;
      column = 0;
    }
    if (literal) {
      out[o++] = b;
    } else {
      out[o++] = 61;
      out[o++] = HEX[b >> 4]!;
      out[o++] = HEX[b & 15]!;
    }
    column += width;
  }
  return o;
}

/** Addresses the raw path writes as they are: printable ASCII (an IDN domain needs nodemailer's punycode). */
const ASCII_ADDRESS = /^[\x21-\x7e]+$/;
// Letters and digits only (Markdown and HTML escaping leave them alone), unguessable, so content cannot collide.
const SLOT = `CRIERSLOT${randomBytes(8).toString('hex').toUpperCase()}`;
const SLOT_RE = new RegExp(`${SLOT}([NU])`, 'g');

interface EmailTemplate {
  /** From, Subject (when it does not name the recipient), List-*, X-Crier-Campaign and the multipart Content-Type. */
  fixedHeaders: string;
  subjectHeader?: string;
  fromRaw: string;
  envelopeFrom: string;
  boundary: string;
  /** Both parts with CRLF line ends and slots for the name (N) and the unsubscribe URL (U). */
  html: string;
  text: string;
}

const templates = new Map<string, EmailTemplate>();
const MAX_TEMPLATES = 64;

function templateFor(config: Config, input: EmailInput): EmailTemplate {
  const cacheKey = [config.mailFrom, config.publicUrl, input.campaignId, input.list, input.label ?? '', input.heading?.kicker ?? '', input.heading?.title ?? '', input.subject, input.markdown].join('\u0000');
  const hit = templates.get(cacheKey);
  if (hit) return hit;
  // Built by composeEmail itself with slots for the recipient's parts, so both paths share every rule.
  const slotted = composeEmail(config, { ...input, recipient: { id: '', email: 'slot@crier.invalid', name: `${SLOT}N`, area: '', topics: [] }, key: '' });
  const crlf = (s: string) => s.replace(/\r\n|\r|\n/g, '\r\n');
  const html = crlf(String(slotted.html)).replaceAll(escapeHtml(unsubscribeUrl(config, '', input.list)), `${SLOT}U`);
  const text = crlf(String(slotted.text)).replaceAll(unsubscribeUrl(config, '', input.list), `${SLOT}U`);
  const fromRaw = stripControl(config.mailFrom);
  const [from] = addressparser(fromRaw, { flatten: true });
  const envelopeFrom = from?.address ?? fromRaw;
  const boundary = `--_crier_${randomBytes(12).toString('hex')}`;
  const personalSubject = input.subject.replace(/\{\{\s*name\s*\}\}/g, '') !== input.subject;
  const t: EmailTemplate = {
    fixedHeaders:
      `Content-Type: multipart/alternative;\r\n boundary="${boundary}"\r\n` +
      headerLine('From', from?.name ? `${encodeAddressName(from.name)} <${envelopeFrom}>` : envelopeFrom) +
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n' +
      headerLine('List-Id', listIdFor(config, input.list)) +
      headerLine('X-Crier-Campaign', stripControl(input.campaignId)),
    ...(personalSubject ? {} : { subjectHeader: headerLine('Subject', personaliseText(input.subject, undefined)) }),
    fromRaw,
    envelopeFrom,
    boundary,
    html,
    text,
  };
  if (templates.size >= MAX_TEMPLATES) templates.delete(templates.keys().next().value ?? '');
  templates.set(cacheKey, t);
  return t;
}

/** One header, encoded as nodemailer encodes it (RFC 2047 words only where needed) and folded at 76. */
function headerLine(key: string, value: string): string {
  const encoded = mimeFuncs.isPlainText(value) ? value : mimeFuncs.encodeWords(value, 'Q', 52);
  return `${mimeFuncs.foldLines(`${key}: ${encoded}`, 76)}\r\n`;
}

/** An address's display name as nodemailer writes it: bare words, a quoted string, or an encoded word. */
function encodeAddressName(name: string): string {
  if (/^[\w ]*$/.test(name)) return name;
  if (/^[\x20-\x7e]*$/.test(name)) return `"${name.replace(/([\\"])/g, '\\$1')}"`;
  return mimeFuncs.encodeWord(name, 'Q', 52);
}
