import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../../src/config.js';
import { deriveKey, seal, unseal } from '../../src/keys.js';
import { urlOrigin } from '../../src/redact.js';
import {
  NeedsReauthError,
  PermanentError,
  RateLimitedError,
  TransientError,
  type ChannelAdapter,
  type Delivery,
  type SendContext,
  type SendResult,
} from '../adapter.js';
import { writeOutboxJson } from '../dry-run.js';
import { parseRetryAfter } from '../retry-after.js';

/**
 * Webhook channel: POSTs a signed JSON body so a team can push a campaign into
 * anything else (Teams, Slack, their CMS). The signing scheme is in README.md
 * beside this file; receivers use verifyWebhookSignature.
 */

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL');

export const contentSchema = z
  .object({
    /** Defaults to config.webhook.url. Stored sealed (url_sealed) with its origin (url_origin) for display. */
    url: httpUrl.optional(),
    url_sealed: z.string().optional(),
    url_origin: z.string().optional(),
    text: z.string().optional(),
    payload: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type WebhookContent = z.infer<typeof contentSchema>;

export interface WebhookBody {
  campaign: { id: string; title: string; kind: string };
  channel: string;
  text: string;
  payload: Record<string, unknown>;
  sent_at: string;
}

/** Used when a 429 carries no usable Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 60_000;
const SNIPPET_LENGTH = 200;

/**
 * At create time: a campaign's own webhook url is kept sealed in Redis (it is
 * a credential), with its origin beside it for display.
 */
export function sealContent(content: Record<string, unknown>, secret: string): void {
  if (typeof content.url !== 'string' || !secret) return;
  content.url_origin = urlOrigin(content.url);
  content.url_sealed = seal(secret, content.url);
  delete content.url;
}

/** The signing key when webhook.secret is not set: hex of HKDF(secret, 'webhook'); give it to receivers. */
export function webhookKey(secret: string): string {
  return deriveKey(secret, 'webhook').toString('hex');
}

export function signWebhook(secret: string, timestamp: string | number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * For receivers: true when `signature` (the X-Crier-Signature header) signs
 * `<timestamp>.<body>` with `secret` and the timestamp (X-Crier-Timestamp, unix
 * seconds) is within `toleranceSec` of `now` — which stops replays of old bodies.
 * `body` must be the raw request body, byte for byte, not a re-serialised object.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
  signature: string,
  toleranceSec = 300,
  now: Date = new Date(),
): boolean {
  const ts = typeof timestamp === 'number' ? timestamp : /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
  if (!Number.isFinite(ts)) return false;
  if (Math.abs(now.getTime() / 1000 - ts) > toleranceSec) return false;
  const expected = Buffer.from(signWebhook(secret, ts, Buffer.isBuffer(body) ? body.toString('utf8') : body));
  const given = Buffer.from(signature.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export { parseRetryAfter };

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  return code ? `${err.message} (${code})` : err.message;
}

async function snippet(res: Response): Promise<string> {
  try {
    const text = (await res.text()).replace(/\s+/g, ' ').trim();
    return text.length > SNIPPET_LENGTH ? `${text.slice(0, SNIPPET_LENGTH)}…` : text;
  } catch {
    return '';
  }
}

function parseContent(delivery: Delivery): WebhookContent {
  const parsed = contentSchema.safeParse(delivery.content);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.') || '(content)';
    throw new PermanentError(`webhook content: field "${field}": ${issue.message}`);
  }
  return parsed.data;
}

export function createWebhookAdapter(config: Config): ChannelAdapter {
  // A configured webhook.secret wins; otherwise the 'webhook' key derived from the secret (never the secret itself).
  const secret = config.webhook.secret ?? (config.secret ? webhookKey(config.secret) : '');
  const timeoutMs = config.webhook.timeout_ms;

  function unsealUrl(content: WebhookContent): string | undefined {
    if (content.url_sealed === undefined) return undefined;
    const url = config.secret ? unseal(config.secret, content.url_sealed) : null;
    if (!url) throw new PermanentError(`webhook ${content.url_origin ?? ''}: the campaign's url cannot be unsealed with this secret (was CRIER_SECRET changed since the campaign was created?)`);
    return url;
  }

  function buildRequest(delivery: Delivery, content: WebhookContent, now: Date) {
    const body: WebhookBody = {
      campaign: { id: delivery.campaignId, title: delivery.campaignTitle, kind: delivery.kind },
      channel: delivery.channel,
      text: content.text ?? delivery.campaignTitle,
      payload: content.payload ?? {},
      sent_at: now.toISOString(),
    };
    const raw = JSON.stringify(body);
    const timestamp = String(Math.floor(now.getTime() / 1000));
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': 'Crier-Webhook/1',
      'X-Crier-Timestamp': timestamp,
      'X-Crier-Signature': signWebhook(secret, timestamp, raw),
      'Idempotency-Key': delivery.key,
    };
    return { body, raw, headers };
  }

  async function post(url: string, raw: string, headers: Record<string, string>, ctx: SendContext): Promise<void> {
    // Errors and logs name the receiver by origin only: the rest of the URL may be its secret.
    const where = urlOrigin(url);
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body: raw,
        // A redirected POST turns into a GET in fetch; better to say so than to lose the body.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
        throw new TransientError(`webhook ${where} did not answer within ${timeoutMs} ms`);
      }
      throw new TransientError(`webhook ${where} unreachable: ${describeNetworkError(err)}`);
    }
    const status = res.status;
    if (status >= 200 && status < 300) {
      await res.body?.cancel().catch(() => undefined);
      return;
    }
    const text = await snippet(res).catch(() => '');
    const tail = text ? `: ${text}` : '';
    if (status === 429) {
      const resetAt = parseRetryAfter(res.headers.get('retry-after'), ctx.now(), DEFAULT_RETRY_AFTER_MS);
      throw new RateLimitedError(`webhook ${where} rate limited (429) until ${resetAt.toISOString()}`, resetAt);
    }
    if (status >= 500) throw new TransientError(`webhook ${where} answered ${status}${tail}`);
    if (status === 401 || status === 403) throw new NeedsReauthError(`webhook ${where} refused the request (${status})${tail}`);
    if (status >= 300 && status < 400) {
      throw new PermanentError(`webhook ${where} redirected (${status}) to ${res.headers.get('location') ?? '?'}; configure the final URL`);
    }
    throw new PermanentError(`webhook ${where} answered ${status}${tail}`);
  }

  return {
    name: 'webhook',
    // Deliveries whose content names a url are still posted; only url-less ones go to the outbox.
    dryRun: !config.webhook.url,

    async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
      const content = parseContent(delivery);
      const url = content.url ?? unsealUrl(content) ?? config.webhook.url;
      if (!secret) throw new PermanentError('webhook: no signing secret (set webhook.secret or CRIER_SECRET)');
      const { body, raw, headers } = buildRequest(delivery, content, ctx.now());
      if (!url) {
        const outboxFile = writeOutboxJson(config.outboxDir, `${delivery.campaignId}-webhook`, { url: null, headers, body });
        ctx.log.info({ outboxFile }, 'webhook dry run: no url configured');
        return { outboxFile };
      }
      await post(url, raw, headers, ctx);
      ctx.log.debug({ to: urlOrigin(url) }, 'webhook delivered');
      return {};
    },

    async verify(): Promise<void> {
      if (!secret) throw new PermanentError('webhook: no signing secret (set webhook.secret or CRIER_SECRET)');
    },

    async close(): Promise<void> {},
  };
}
