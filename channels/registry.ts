import type { z } from 'zod';
import type { Config } from '../src/config.js';
import type { AudienceSelector, ChannelAdapter } from './adapter.js';
import { contentSchema as communitySchema, createCommunityAdapter, DEFAULT_LIST as COMMUNITY_LIST } from './community/index.js';
import { contentSchema as emailSchema, createEmailAdapter } from './email/index.js';
import { contentSchema as facebookSchema, createFacebookAdapter } from './facebook/index.js';
import { facebookImageMaxBytes, mastodonImageMaxBytes, xImageMaxBytes } from './images.js';
import { contentSchema as mastodonSchema, createMastodonAdapter } from './mastodon/index.js';
import { createPressEmailAdapter, DEFAULT_MEDIA_LIST, pressEmailContentSchema } from './press/email.js';
import { contentSchema as smsSchema, createSmsAdapter, smsEstimate } from './sms/index.js';
import type { ImageType } from './twitter/content.js';
import { contentSchema as twitterSchema, createTwitterAdapter } from './twitter/index.js';
import { contentSchema as webhookSchema, createWebhookAdapter, sealContent as sealWebhookContent } from './webhook/index.js';

/**
 * Every channel Crier knows: how to validate its part of a campaign file,
 * whether it sends per subscriber (audience) and how to make its adapter.
 */
export interface ChannelDefinition {
  name: string;
  contentSchema: z.ZodType;
  /** Fields holding local times ("YYYY-MM-DD HH:mm"): stored as `<field>_iso` instants too. */
  localTimes?: string[];
  /** Largest image the network takes, by type: images are checked against it when the campaign is created. */
  imageMaxBytes?(type: ImageType): number;
  /** At create time, seals content fields that are credentials before the campaign is stored. */
  seal?(content: Record<string, unknown>, secret: string): void;
  /** Audience channels get one delivery per subscriber the selector picks. */
  audience?(content: Record<string, unknown>): AudienceSelector;
  /** A line for `campaign preview` about the whole send (SMS: segments and cost), given the audience size. */
  summary?(content: Record<string, unknown>, recipients: number, config: Config): string;
  create(config: Config): ChannelAdapter;
}

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);

const definitions: ChannelDefinition[] = [
  {
    name: 'email',
    contentSchema: emailSchema,
    audience: (c) => ({ list: String(c.list) }),
    create: createEmailAdapter,
  },
  {
    name: 'community',
    contentSchema: communitySchema,
    audience: (c) => ({ list: typeof c.list === 'string' ? c.list : COMMUNITY_LIST, areas: strings(c.areas), topics: strings(c.topics) }),
    create: createCommunityAdapter,
  },
  {
    name: 'press',
    contentSchema: pressEmailContentSchema,
    localTimes: ['embargo_until'],
    audience: (c) => ({ list: typeof c.list === 'string' ? c.list : DEFAULT_MEDIA_LIST }),
    create: createPressEmailAdapter,
  },
  { name: 'twitter', contentSchema: twitterSchema, imageMaxBytes: xImageMaxBytes, create: (config) => createTwitterAdapter(config) },
  { name: 'mastodon', contentSchema: mastodonSchema, imageMaxBytes: mastodonImageMaxBytes, create: (config) => createMastodonAdapter(config) },
  { name: 'webhook', contentSchema: webhookSchema, seal: sealWebhookContent, create: createWebhookAdapter },
  { name: 'facebook', contentSchema: facebookSchema, imageMaxBytes: facebookImageMaxBytes, create: (config) => createFacebookAdapter(config) },
  {
    name: 'sms',
    contentSchema: smsSchema,
    audience: (c) => ({ list: String(c.list), areas: strings(c.areas), topics: strings(c.topics), withPhone: true }),
    summary: (c, recipients, config) => smsEstimate(String(c.text ?? ''), recipients, config.sms.cost_per_segment),
    create: createSmsAdapter,
  },
];

const byName = new Map(definitions.map((d) => [d.name, d]));

export function channelDefinition(name: string): ChannelDefinition | undefined {
  return byName.get(name);
}

export function channelNames(): string[] {
  return [...byName.keys()];
}
