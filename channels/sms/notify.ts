import { DateTime } from 'luxon';
import type { NotifyClient } from 'notifications-node-client';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type ChannelError } from '../adapter.js';
import { parseRetryAfter } from '../retry-after.js';

/**
 * GOV.UK Notify through its own client (notifications-node-client, which
 * signs a short-lived JWT with the API key for every request). The message
 * goes through an SMS template whose whole content is `((body))`.
 *
 * Notify answers errors as `{"errors": [{"error", "message"}], "status_code"}`:
 *  - 400 ValidationError / BadRequestError → permanent for that recipient
 *    (not a mobile, team-only key, missing personalisation)
 *  - 403 AuthError → reconnect account (key revoked or wrong)
 *  - 429 RateLimitError → pause a minute; TooManyRequestsError (the daily
 *    limit) → pause until midnight
 *  - 5xx and no answer → retry
 */

const TIMEOUT_MS = 30_000;

export interface NotifySms {
  /** Notify's notification id. */
  id?: string;
}

interface NotifyFailure {
  status?: number;
  errors: Array<{ error?: string; message?: string }>;
  retryAfter?: string;
  message: string;
}

function failureOf(err: unknown): NotifyFailure {
  const e = err as { response?: { status?: unknown; data?: unknown; headers?: Record<string, unknown> }; message?: unknown; code?: unknown } | null;
  const data = e?.response?.data as { errors?: unknown } | undefined;
  const errors = Array.isArray(data?.errors) ? (data.errors as NotifyFailure['errors']) : [];
  const retryAfter = e?.response?.headers?.['retry-after'];
  return {
    status: typeof e?.response?.status === 'number' ? e.response.status : undefined,
    errors,
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/** The error class a failed Notify request maps to. */
export function mapNotifyError(err: unknown, now: Date, zone = 'Europe/London'): ChannelError {
  const f = failureOf(err);
  const detail = f.errors.map((e) => `${e.error ?? 'Error'}: ${e.message ?? ''}`).join('; ') || f.message;
  if (f.status === undefined) return new TransientError(`cannot reach GOV.UK Notify: ${f.message}`);
  if (f.status === 429) {
    const daily = f.errors.some((e) => e.error === 'TooManyRequestsError');
    // Without a usable Retry-After: the daily limit resets at midnight, the per-minute one within a minute.
    const fallbackMs = daily ? DateTime.fromJSDate(now, { zone }).plus({ days: 1 }).startOf('day').toMillis() - now.getTime() : 60_000;
    const resetAt = parseRetryAfter(f.retryAfter, now, fallbackMs);
    return new RateLimitedError(`GOV.UK Notify ${daily ? 'daily limit' : 'rate limit'}: ${detail}`, resetAt);
  }
  if (f.status === 401 || f.status === 403) return new NeedsReauthError(`GOV.UK Notify refused the API key (${f.status}: ${detail})`);
  if (f.status >= 500 || f.status === 408) return new TransientError(`GOV.UK Notify error ${f.status}: ${detail}`);
  return new PermanentError(`GOV.UK Notify refused the text (${f.status}: ${detail})`);
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransientError(`GOV.UK Notify did not answer ${what} within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface NotifySender {
  send(phone: string, body: string, reference: string, now: Date): Promise<NotifySms>;
  /** Checks the key and that the template exists and carries ((body)). */
  verify(): Promise<void>;
}

export function createNotifySender(baseUrl: string, apiKey: string, templateId: string, zone: string): NotifySender {
  // Loaded on first use: the client brings axios and jsonwebtoken, which every other command can do without.
  let loading: Promise<NotifyClient> | undefined;
  const notify = (): Promise<NotifyClient> => (loading ??= import('notifications-node-client').then((m) => new m.NotifyClient(baseUrl, apiKey)));
  return {
    async send(phone, body, reference, now) {
      try {
        const client = await notify();
        const res = await withTimeout(client.sendSms(templateId, phone, { personalisation: { body }, reference }), 'a text');
        // Accepted (2xx) is sent, id or not: retrying would text the person twice.
        const id = (res.data as { id?: unknown } | undefined)?.id;
        return { id: typeof id === 'string' ? id : undefined };
      } catch (err) {
        if (err instanceof TransientError) throw err;
        throw mapNotifyError(err, now, zone);
      }
    },
    async verify() {
      let template: { type?: unknown; body?: unknown };
      try {
        const client = await notify();
        template = (await withTimeout(client.getTemplateById(templateId), 'the template check')).data as { type?: unknown; body?: unknown };
      } catch (err) {
        if (err instanceof TransientError) throw err;
        throw mapNotifyError(err, new Date(), zone);
      }
      if (template.type !== 'sms') throw new PermanentError(`NOTIFY_SMS_TEMPLATE_ID ${templateId} is a ${String(template.type)} template, not a text message template`);
      if (typeof template.body !== 'string' || !template.body.includes('((body))')) {
        throw new PermanentError(`the Notify template ${templateId} must contain the placeholder ((body)) (Crier puts the whole message there)`);
      }
    },
  };
}
