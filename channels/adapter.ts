import type { Logger } from 'pino';

/**
 * The channel adapter interface: as small as a nodemailer transport.
 * An adapter turns one delivery (a campaign's channel content, optionally for
 * one recipient) into one message on its network.
 *
 * Errors decide what the deliver worker does:
 *  - TransientError     → retry this delivery with exponential backoff (its own tries)
 *  - RateLimitedError   → pause this channel's queue until `resetAt`; not a failure
 *  - PermanentError     → fail now, record the reason, no retry
 *  - NeedsReauthError   → fail now and surface "reconnect account"
 *  - LoginFailedError   → pause the channel (not a failure): its deliveries wait until a login works
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
  /** Image bytes stored with the campaign, by sha256 (see channels/images.ts). */
  media?: ReadonlyMap<string, Buffer>;
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
  /**
   * True when a refused login (LoginFailedError) pauses the channel rather than failing its
   * deliveries (SMTP): the worker then verifies it at start and, while paused, every minute.
   */
  readonly pausesOnLoginFailure?: boolean;
  close(): Promise<void>;
}

export type ChannelErrorKind = 'transient' | 'rate_limited' | 'permanent' | 'needs_reauth' | 'login_failed';

export abstract class ChannelError extends Error {
  abstract readonly kind: ChannelErrorKind;
}

export class TransientError extends ChannelError {
  readonly kind = 'transient' as const;
  override name = 'TransientError';
  /**
   * True when the network itself could not be reached (connection refused, timed out): the next
   * message would fail the same way, so the worker stops the batch there instead of spending
   * every recipient's tries on one outage.
   */
  readonly unreachable: boolean;
  constructor(message: string, opts: { unreachable?: boolean } = {}) {
    super(message);
    this.unreachable = opts.unreachable ?? false;
  }
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

/** The server refused our login (SMTP 535): every delivery would fail the same way until someone fixes it. */
export class LoginFailedError extends ChannelError {
  readonly kind = 'login_failed' as const;
  override name = 'LoginFailedError';
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
