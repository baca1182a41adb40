import { DateTime } from 'luxon';
import { z } from 'zod';
import type { Config } from '../../src/config.js';
import { PermanentError, type ChannelAdapter } from '../adapter.js';
import { createEmailSender, parseContent, requireBody, requireRecipient } from '../email/index.js';
import { composeRawEmail } from '../email/message.js';
import { notesSchema, releaseTail } from './release.js';

/**
 * Press releases by email to the media list. Before the embargo instant the
 * subject and both body parts say "EMBARGOED UNTIL <local time>"; from the
 * embargo instant on, the release goes out unmarked. (Publishing to the public
 * feeds is channels/press/feed*.ts.)
 */

// Not strict: the press channel's content also carries what the feeds/pages need.
export const pressEmailContentSchema = z
  .object({
    headline: z.string().min(1),
    body: z.string().optional(),
    body_file: z.string().optional(),
    /** Local time "YYYY-MM-DD HH:mm" in config.timezone, as written in the campaign file. */
    embargo_until: z.string().optional(),
    /** The same instant as ISO, added when the campaign is created. */
    embargo_until_iso: z.string().optional(),
    list: z.string().min(1).optional(),
    /** Notes to editors, after "ENDS": one Markdown text or a list of notes. */
    notes: notesSchema,
  })
  .refine((c) => c.body !== undefined || c.body_file !== undefined, { message: 'give body or body_file', path: ['body'] });

export type PressEmailContent = z.infer<typeof pressEmailContentSchema>;

export const DEFAULT_MEDIA_LIST = 'media';

/** The embargo as an instant, or undefined when there is none. */
export function embargoInstant(content: Pick<PressEmailContent, 'embargo_until' | 'embargo_until_iso'>, zone: string): DateTime | undefined {
  if (content.embargo_until_iso) {
    const at = DateTime.fromISO(content.embargo_until_iso, { setZone: true });
    if (!at.isValid) throw new PermanentError(`press content: field "embargo_until_iso": not an ISO time: ${content.embargo_until_iso}`);
    return at;
  }
  if (content.embargo_until) {
    const text = content.embargo_until.trim().replace('T', ' ');
    const at = DateTime.fromFormat(text, 'yyyy-MM-dd HH:mm', { zone });
    if (!at.isValid) throw new PermanentError(`press content: field "embargo_until": expected "YYYY-MM-DD HH:mm", got ${content.embargo_until}`);
    return at;
  }
  return undefined;
}

/** "00:01 GMT Tue 1 December 2026" (seconds only when set), in the team's zone. */
export function embargoLabel(at: DateTime, zone: string): string {
  const local = at.setZone(zone).setLocale('en-GB');
  return local.toFormat(`${local.second ? 'HH:mm:ss' : 'HH:mm'} ZZZZ ccc d LLLL yyyy`);
}

export interface EmbargoMarking {
  subject: string;
  markdown: string;
  embargoed: boolean;
  /** "EMBARGOED UNTIL …", or undefined once the embargo has passed. */
  line?: string;
}

export function markEmbargo(headline: string, body: string, embargo: DateTime | undefined, now: Date, zone: string): EmbargoMarking {
  if (!embargo || now.getTime() >= embargo.toMillis()) return { subject: headline, markdown: body, embargoed: false };
  const line = `EMBARGOED UNTIL ${embargoLabel(embargo, zone)}`;
  return { subject: `${line}: ${headline}`, markdown: `**${line}**\n\n${body}`, embargoed: true, line };
}

export function createPressEmailAdapter(config: Config): ChannelAdapter {
  const name = 'press';
  const sender = createEmailSender(config, name);
  return {
    name,
    dryRun: sender.dryRun,
    async send(delivery, ctx) {
      const content = parseContent(pressEmailContentSchema, delivery);
      const recipient = requireRecipient(delivery);
      const now = ctx.now();
      const body = requireBody(content.body, name);
      const marked = markEmbargo(content.headline, body, embargoInstant(content, config.timezone), now, config.timezone);
      // The headline leads the body (under the embargo line, if any); the release ends as a newsroom expects.
      const mail = composeRawEmail(config, {
        subject: marked.subject,
        heading: { title: content.headline, kicker: marked.line ?? `FOR IMMEDIATE RELEASE: ${DateTime.fromJSDate(now, { zone: config.timezone }).setLocale('en-GB').toFormat('ccc d LLLL yyyy')}` },
        markdown: `${body}${releaseTail(content.notes, config.org)}`,
        label: 'Press release',
        list: content.list ?? DEFAULT_MEDIA_LIST,
        campaignId: delivery.campaignId,
        key: delivery.key,
        recipient,
        now,
      });
      const result = await sender.deliver(mail, delivery, recipient);
      ctx.log.debug({ recipientId: recipient.id, messageId: result.id, embargoed: marked.embargoed }, 'press release emailed');
      return result;
    },
    verify: () => sender.verify(),
    pausesOnLoginFailure: !sender.dryRun,
    close: () => sender.close(),
  };
}
