import type { Recipient } from '../../channels/adapter.js';
import { composeEmail } from '../../channels/email/message.js';
import { MASTODON_MAX_CHARACTERS, mastodonLength } from '../../channels/mastodon/index.js';
import { embargoInstant, markEmbargo } from '../../channels/press/email.js';
import { channelDefinition } from '../../channels/registry.js';
import { splitThread, weightedLength, X_MAX_WEIGHTED_LENGTH } from '../../channels/twitter/text.js';
import type { Config } from '../config.js';

/**
 * What each channel of a campaign would send, rendered in memory for the
 * composer and the API (the CLI's `campaign preview` writes the adapters'
 * dry-run files instead). Uses the channels' own code: the email builder, the
 * press embargo marking and X's weighted length.
 */

export const SAMPLE_RECIPIENT: Recipient = { id: 'preview', email: 'sample.subscriber@example.org', name: 'Sample Subscriber', area: '', topics: [] };

export interface PostPart {
  text: string;
  /** X's weighted length (links 23, CJK and emoji 2) or plain characters elsewhere. */
  length: number;
}

export interface ChannelPreview {
  channel: string;
  /** Email-like channels: subject and the HTML part. */
  subject?: string;
  html?: string;
  text?: string;
  /** Posts (X, Mastodon): the text as it would go out, split into a thread if asked. */
  parts?: PostPart[];
  /** The post's length against its limit. */
  length?: number;
  limit?: number;
  /** What the channel's schema says is wrong (the campaign would be refused). */
  problems: string[];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function problemsOf(channel: string, content: Record<string, unknown>): string[] {
  const def = channelDefinition(channel);
  if (!def) return [`unknown channel "${channel}"`];
  const r = def.contentSchema.safeParse(content);
  if (r.success) return [];
  // An empty required field says so plainly (zod's wording is for developers).
  const message = (i: (typeof r.error.issues)[number]) => (i.code === 'too_small' && i.minimum === 1 ? 'required' : i.code === 'invalid_type' && i.input === undefined ? 'required' : i.message);
  return r.error.issues.map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${message(i)}` : message(i)));
}

function emailPreview(config: Config, channel: string, subject: string, markdown: string, list: string, now: Date): Pick<ChannelPreview, 'subject' | 'html' | 'text'> {
  if (!subject.trim() && !markdown.trim()) return {};
  const mail = composeEmail(config, {
    subject: subject.trim() || '(no subject)',
    markdown,
    list: list || channel,
    campaignId: 'preview',
    key: `preview:${channel}`,
    recipient: SAMPLE_RECIPIENT,
    now,
  });
  return { subject: String(mail.subject ?? ''), html: String(mail.html ?? ''), text: String(mail.text ?? '') };
}

export function previewChannel(config: Config, channel: string, content: Record<string, unknown>, now: Date): ChannelPreview {
  const problems = problemsOf(channel, content);
  switch (channel) {
    case 'email':
      return { channel, problems, ...emailPreview(config, channel, str(content.subject), str(content.body), str(content.list), now) };
    case 'community':
      return { channel, problems, ...emailPreview(config, channel, str(content.subject), str(content.body), str(content.list) || 'community', now) };
    case 'press': {
      let embargo;
      try {
        embargo = embargoInstant({ embargo_until: str(content.embargo_until) || undefined, embargo_until_iso: str(content.embargo_until_iso) || undefined }, config.timezone);
      } catch {
        embargo = undefined;
      }
      const marked = markEmbargo(str(content.headline), str(content.body), embargo, now, config.timezone);
      return { channel, problems, ...emailPreview(config, channel, marked.subject, marked.markdown, str(content.list) || 'media', now) };
    }
    case 'twitter': {
      const text = str(content.text);
      const length = weightedLength(text);
      const parts = content.thread === true && text.trim() ? splitThread(text) : [text.trim()];
      return { channel, problems, length, limit: X_MAX_WEIGHTED_LENGTH, parts: parts.map((p) => ({ text: p, length: weightedLength(p) })) };
    }
    case 'mastodon': {
      const text = str(content.text);
      const length = mastodonLength(text, str(content.spoiler_text));
      return { channel, problems, length, limit: MASTODON_MAX_CHARACTERS, parts: [{ text, length }] };
    }
    default:
      return { channel, problems, text: JSON.stringify(content, null, 2) };
  }
}

export function previewCampaign(config: Config, channels: Record<string, Record<string, unknown>>, now: Date): ChannelPreview[] {
  return Object.entries(channels).map(([channel, content]) => previewChannel(config, channel, content, now));
}
