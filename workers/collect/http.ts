import { parseRetryAfter } from '../../channels/retry-after.js';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type CollectContext, type CollectorError } from './types.js';

/**
 * One JSON call to an analytics API, with its answer sorted into the error
 * classes the collect worker acts on. Every collector that speaks plain HTTP
 * (Mastodon, Plausible, Matomo …) goes through here.
 */

const TIMEOUT_MS = 30_000;

export interface JsonRequest {
  /** Names the service in messages: "Plausible", "Matomo". */
  service: string;
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | URLSearchParams;
  /** Turns a non-2xx answer into an error; the default reads Retry-After for 429 and the body text for the message. */
  mapError?: (res: Response, now: Date) => Promise<CollectorError>;
}

async function snippet(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') return body.error;
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: the raw text
  }
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || res.statusText;
}

/** 401/403 → credentials; 429 → wait for Retry-After; 5xx/408 → try again later; other 4xx → the request itself is wrong. */
export async function defaultHttpError(service: string, res: Response, now: Date): Promise<CollectorError> {
  const detail = await snippet(res);
  if (res.status === 401 || res.status === 403) return new NeedsReauthError(`${service} refused the credentials (${res.status}: ${detail})`);
  if (res.status === 429) return new RateLimitedError(`${service} rate limit (429: ${detail})`, parseRetryAfter(res.headers.get('retry-after'), now));
  if (res.status >= 500 || res.status === 408) return new TransientError(`${service} answered ${res.status}: ${detail}`);
  return new PermanentError(`${service} refused the request (${res.status}: ${detail})`);
}

export async function requestJson(ctx: Pick<CollectContext, 'fetch' | 'now'>, req: JsonRequest): Promise<unknown> {
  let res: Response;
  try {
    res = await ctx.fetch(req.url, {
      method: req.method ?? 'GET',
      headers: { accept: 'application/json', 'user-agent': 'Crier', ...req.headers },
      body: req.body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
    throw new TransientError(`cannot reach ${req.service} at ${new URL(req.url).origin}: ${cause}`);
  }
  if (!res.ok) throw await (req.mapError ? req.mapError(res, ctx.now()) : defaultHttpError(req.service, res, ctx.now()));
  const text = await res.text().catch(() => '');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new TransientError(`${req.service} answered ${res.status} with a body that is not JSON: ${text.slice(0, 80).replace(/\s+/g, ' ')}`);
  }
}

/** A number field of an API answer, or a TransientError naming what was missing (the answer is not what the API documents). */
export function num(service: string, value: unknown, what: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new TransientError(`${service} answer has no number for ${what}`);
  return n;
}
