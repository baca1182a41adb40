import { z } from 'zod';
import type { Config } from '../../src/config.js';
import { PermanentError, type ChannelAdapter, type Delivery, type SendContext, type SendResult } from '../adapter.js';
import { postToGateway } from '../community/index.js';
import { safeFileName, writeOutboxJson } from '../dry-run.js';
import { parseContent, requireRecipient } from '../email/index.js';
import { createNotifySender } from './notify.js';
import { describeLength, smsLength } from './segments.js';

/**
 * SMS: one text to each member of a list (optionally by area and topic) who
 * gave a mobile number. Sent through GOV.UK Notify when NOTIFY_API_KEY and
 * NOTIFY_SMS_TEMPLATE_ID are set (the template's content is `((body))`), else
 * through the HTTP gateway (`community.gateway_url`, the same JSON POST as
 * community alerts, with `to` the number), else a dry run writing
 * `<outbox>/<campaignId>-sms-<subscriber>.json`.
 *
 * Each recipient goes through the deliver worker's exactly-once machinery,
 * as an email does: marked sent only after Notify accepted the text, skipped
 * if already marked.
 */

/** Notify's limit on a text message's content. */
export const SMS_MAX_CHARACTERS = 918;

export const contentSchema = z
  .object({
    list: z.string({ error: 'list is required: the subscriber list to text' }).min(1),
    areas: z.array(z.string().min(1)).optional(),
    topics: z.array(z.string().min(1)).optional(),
    text: z
      .string({ error: 'text is required' })
      .refine((t) => t.trim().length > 0, { message: 'text is empty' })
      .refine((t) => [...t.trim()].length <= SMS_MAX_CHARACTERS, { message: `GOV.UK Notify sends at most ${SMS_MAX_CHARACTERS} characters in a text` }),
  })
  .strict();

export type SmsContent = z.infer<typeof contentSchema>;

/** What is sent: the text as written, without surrounding blank space. */
export function smsBody(content: Pick<SmsContent, 'text'>): string {
  return content.text.trim();
}

/**
 * For `campaign preview`: "2 segments (GSM-7, 190 characters) × 340 recipients
 * with a mobile number = 680 segments (≈ £15.44 at £0.0227 a segment)".
 */
export function smsEstimate(text: string, recipients: number, costPerSegment?: number): string {
  const len = smsLength(text.trim());
  const total = len.segments * recipients;
  const who = `${recipients.toLocaleString('en-GB')} recipient${recipients === 1 ? '' : 's'} with a mobile number`;
  const cost = costPerSegment !== undefined ? ` (≈ £${(total * costPerSegment).toFixed(2)} at £${costPerSegment} a segment)` : '';
  return `${describeLength(len)} × ${who} = ${total.toLocaleString('en-GB')} segment${total === 1 ? '' : 's'}${cost}`;
}

function requirePhone(delivery: Delivery): { id: string; phone: string; area: string; topics: string[] } {
  const r = requireRecipient(delivery);
  if (!r.phone) throw new PermanentError(`subscriber ${r.id} has no mobile number`);
  return { id: r.id, phone: r.phone, area: r.area, topics: r.topics };
}

export function createSmsAdapter(config: Config): ChannelAdapter {
  const { apiKey, smsTemplateId, baseUrl } = config.notify;
  const notify = apiKey && smsTemplateId ? createNotifySender(baseUrl, apiKey, smsTemplateId, config.timezone) : undefined;
  const gatewayUrl = notify ? undefined : config.community.gateway_url;

  return {
    name: 'sms',
    dryRun: !notify && !gatewayUrl,
    async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
      const content = parseContent(contentSchema, delivery);
      const to = requirePhone(delivery);
      const body = smsBody(content);
      const now = ctx.now();
      if (notify) {
        const sent = await notify.send(to.phone, body, delivery.key, now);
        ctx.log.debug({ recipientId: to.id, notificationId: sent.id }, 'text accepted by GOV.UK Notify');
        return { id: sent.id };
      }
      if (gatewayUrl) {
        await postToGateway(gatewayUrl, { to: to.phone, subscriber_id: to.id, area: to.area, topics: to.topics, text: body }, delivery.key, now);
        return {};
      }
      const len = smsLength(body);
      const file = writeOutboxJson(config.outboxDir, `${safeFileName(delivery.campaignId)}-sms-${safeFileName(to.id)}`, {
        channel: 'sms',
        campaignId: delivery.campaignId,
        title: delivery.campaignTitle,
        key: delivery.key,
        at: now.toISOString(),
        to: to.phone,
        text: body,
        encoding: len.encoding,
        segments: len.segments,
      });
      return { outboxFile: file };
    },
    async verify() {
      await notify?.verify();
    },
    // Notify's client keeps no connection of ours; fetch (gateway) shares undici's pool.
    async close() {},
  };
}
