import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../../src/config.js';
import { PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery, type Recipient } from '../adapter.js';
import { createEmailSender, parseContent, requireBody, requireRecipient } from '../email/index.js';
import { personaliseText, stripControl } from '../email/markdown.js';
import { composeRawEmail } from '../email/message.js';
import { safeFileName } from '../dry-run.js';
import { parseRetryAfter } from '../retry-after.js';

/**
 * Community alerts: targeted by area and topic (the planner picks the
 * recipients), sent by email with "[Area · topic]" in front of the subject, and
 * optionally pushed to an SMS/webhook gateway (`community.gateway_url`).
 */

export const contentSchema = z
  .object({
    areas: z.array(z.string().min(1)).optional(),
    topics: z.array(z.string().min(1)).optional(),
    list: z.string().min(1).optional(),
    subject: z.string().min(1),
    body: z.string().optional(),
    body_file: z.string().optional(),
    /** Text for the SMS gateway; default: the prefixed subject. */
    sms: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => c.body !== undefined || c.body_file !== undefined, { message: 'give body or body_file', path: ['body'] });

export type CommunityContent = z.infer<typeof contentSchema>;

export const DEFAULT_LIST = 'community';
export const SMS_MAX = 160;
const GATEWAY_TIMEOUT_MS = 10_000;

const same = (a: string, b: string): boolean => a.trim().toLowerCase() === b.trim().toLowerCase();

/** The recipient's area (in the campaign's spelling) and the campaign topics the recipient follows. */
export function alertTags(content: Pick<CommunityContent, 'areas' | 'topics'>, recipient: Recipient): string[] {
  const tags: string[] = [];
  if (recipient.area.trim()) tags.push((content.areas ?? []).find((a) => same(a, recipient.area)) ?? recipient.area.trim());
  for (const topic of content.topics ?? []) {
    if (recipient.topics.some((t) => same(t, topic))) tags.push(topic);
  }
  return tags.map(stripControl).filter(Boolean);
}

export function prefixedSubject(subject: string, tags: string[]): string {
  return tags.length ? `[${tags.join(' · ')}] ${subject}` : subject;
}

export function smsText(text: string): string {
  const clean = stripControl(text).replace(/\s+/g, ' ');
  const chars = [...clean];
  return chars.length <= SMS_MAX ? clean : `${chars.slice(0, SMS_MAX - 1).join('')}…`;
}

export interface GatewayMessage {
  /** Community alerts: the subscriber's email (as before SMS existed); the `sms:` channel: the mobile number. */
  to: string;
  /** The subscriber's mobile number in E.164, when they gave one. */
  phone?: string;
  subscriber_id: string;
  area: string;
  topics: string[];
  text: string;
}


export async function postToGateway(url: string, message: GatewayMessage, key: string, now: Date): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      // The delivery key lets the gateway drop the repeat when the email half fails and the delivery is retried.
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(GATEWAY_TIMEOUT_MS),
    });
  } catch (err) {
    throw new TransientError(`SMS gateway unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const reply = (await res.text().catch(() => '')).slice(0, 300);
  if (res.ok) return;
  if (res.status === 429) throw new RateLimitedError(`SMS gateway rate limit: ${reply}`, parseRetryAfter(res.headers.get('retry-after'), now));
  if (res.status >= 500 || res.status === 408) throw new TransientError(`SMS gateway answered ${res.status}: ${reply}`);
  throw new PermanentError(`SMS gateway refused the message (${res.status}): ${reply}`);
}

export function createCommunityAdapter(config: Config): ChannelAdapter {
  const name = 'community';
  const sender = createEmailSender(config, name);
  const gatewayUrl = config.community.gateway_url;

  async function sendSms(delivery: Delivery, message: GatewayMessage, now: Date): Promise<string | undefined> {
    if (!gatewayUrl) return undefined;
    if (sender.dryRun) {
      await mkdir(config.outboxDir, { recursive: true });
      const file = path.join(config.outboxDir, `${safeFileName(delivery.campaignId)}-${name}-${safeFileName(message.subscriber_id)}.sms.json`);
      await writeFile(file, `${JSON.stringify({ url: gatewayUrl, ...message }, null, 2)}\n`);
      return file;
    }
    await postToGateway(gatewayUrl, message, delivery.key, now);
    return undefined;
  }

  return {
    name,
    dryRun: sender.dryRun,
    async send(delivery, ctx) {
      const content = parseContent(contentSchema, delivery);
      const recipient = requireRecipient(delivery);
      const now = ctx.now();
      const tags = alertTags(content, recipient);
      const subject = prefixedSubject(content.subject, tags);
      const mail = composeRawEmail(config, {
        subject,
        markdown: requireBody(content.body, name),
        list: content.list ?? DEFAULT_LIST,
        campaignId: delivery.campaignId,
        key: delivery.key,
        recipient,
        now,
        label: 'Community alert',
      });
      // The gateway goes first: it is idempotent by key, the email is not, so a retry repeats only the cheap half.
      const smsFile = await sendSms(
        delivery,
        {
          to: stripControl(recipient.email),
          ...(recipient.phone ? { phone: recipient.phone } : {}),
          subscriber_id: recipient.id,
          area: stripControl(recipient.area),
          topics: tags.slice(recipient.area.trim() ? 1 : 0),
          text: smsText(content.sms ? personaliseText(content.sms, recipient.name) : personaliseText(subject, recipient.name)),
        },
        now,
      );
      const result = await sender.deliver(mail, delivery, recipient);
      ctx.log.debug({ recipientId: recipient.id, messageId: result.id, smsFile }, 'community alert sent');
      return result;
    },
    verify: () => sender.verify(),
    pausesOnLoginFailure: !sender.dryRun,
    close: () => sender.close(),
  };
}
