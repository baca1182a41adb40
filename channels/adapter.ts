import type { Logger } from 'pino';

/**
 * The channel adapter interface: as small as a nodemailer transport.
 * An adapter turns one delivery (a campaign's channel content, optionally for
 * one recipient) into one message on its network.
 *
 * Errors decide what the deliver worker does:
 *  - TransientError     → retry with exponential backoff
 *  - RateLimitedError   → pause this channel's queue until `resetAt`; not a failure
 *  - PermanentError     → fail now, record the reason, no retry
 *  - NeedsReauthError   → fail now and surface "reconnect account"
 * Any other thrown error is treated as transient.
 */

/** A subscriber the message is addressed to (email-like channels). */
export interface Recipient {
  id: string;
  email: string;
  name: string;
  area: string;
  topics: string[];
  /** Mobile number in E.164, when the subscriber gave one (SMS). */
  phone?: string;
}

/** The channel's part of the campaign file, validated by the adapter's schema. */
export type ChannelContent = Record<string, unknown>;

export interface Delivery {
  campaignId: string;
  campaignTitle: string;
  kind: string;
  channel: string;
  content: ChannelContent;
  /** Present for audience channels (email, community, press). */
  recipient?: Recipient;
  /** Stable per delivery: adapters pass it on as an idempotency key where the network supports one. */
  key: string;
}

export interface SendContext {
  log: Logger;
  /** The clock: tests inject one. */
  now(): Date;
  /**
   * Durable notes for this delivery, kept across retries, restarts and worker
   * processes. A send of several steps (an X thread) records its progress here,
   * so whichever worker retries it resumes instead of repeating a step.
   */
  progress?: DeliveryProgress;
}

/** One string per delivery, stored by the worker (Redis). */
export interface DeliveryProgress {
  get(): Promise<string | undefined>;
  set(value: string): Promise<void>;
  clear(): Promise<void>;
}

export interface SendResult {
  /** The network's id for what was sent (message-id, post id), kept for collectors. */
  id?: string;
  /** Where a dry run wrote its output. */
  outboxFile?: string;
}

export interface ChannelAdapter {
  readonly name: string;
  /** True when the adapter has no credentials and writes to the outbox instead. */
  readonly dryRun: boolean;
  send(delivery: Delivery, ctx: SendContext): Promise<SendResult>;
  /** Checks credentials/connection; throws a ChannelError when unusable. */
  verify(): Promise<void>;
  close(): Promise<void>;
}

export type ChannelErrorKind = 'transient' | 'rate_limited' | 'permanent' | 'needs_reauth';

export abstract class ChannelError extends Error {
  abstract readonly kind: ChannelErrorKind;
}

export class TransientError extends ChannelError {
  readonly kind = 'transient' as const;
  override name = 'TransientError';
}

export class PermanentError extends ChannelError {
  readonly kind = 'permanent' as const;
  override name = 'PermanentError';
}

export class NeedsReauthError extends ChannelError {
  readonly kind = 'needs_reauth' as const;
  override name = 'NeedsReauthError';
  constructor(message: string) {
    super(`reconnect account: ${message}`);
  }
}

export class RateLimitedError extends ChannelError {
  readonly kind = 'rate_limited' as const;
  override name = 'RateLimitedError';
  constructor(
    message: string,
    readonly resetAt: Date,
  ) {
    super(message);
  }
}

/** Which subscribers an audience channel sends to (one delivery per subscriber). */
export interface AudienceSelector {
  list?: string;
  areas?: string[];
  topics?: string[];
  /** Only subscribers who gave a mobile number (SMS). */
  withPhone?: boolean;
}
