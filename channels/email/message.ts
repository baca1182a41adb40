import { createHash } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import type { Config } from '../../src/config.js';
import { emailMasthead, emailOrgFooter, textOrgFooter } from '../../src/branding.js';
import { signUnsubscribeToken } from '../../src/domain/unsubscribe-token.js';
import { PermanentError, type Recipient } from '../adapter.js';
import { escapeHtml, markdownToHtml, markdownToText, personaliseText, stripControl } from './markdown.js';

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
