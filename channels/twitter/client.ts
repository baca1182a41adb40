import https from 'node:https';
import { ApiPartialResponseError, ApiRequestError, ApiResponseError, TwitterApi, type ITwitterApiClientPlugin, type TwitterApiReadWrite } from 'twitter-api-v2';
import { ChannelError, NeedsReauthError, PermanentError, RateLimitedError, TransientError } from '../adapter.js';

/**
 * Everything that needs twitter-api-v2. The X channel (./index.ts) and the X
 * collector (workers/collect/x.ts) import this module only when they first
 * talk to X (`lazyXClient` in ./index.ts), so a worker that never does, such as one serving
 * `campaigns,deliver-email`, does not carry the library (about 2 MB of heap
 * kept, about twice that at a worker's peak RSS).
 */

export interface XCredentials {
  appKey: string;
  appSecret: string;
  accessToken: string;
  accessSecret: string;
}

export interface XClient {
  client: TwitterApiReadWrite;
  mapError(err: unknown, now: Date): ChannelError;
  close(): void;
}

/** A client whose requests go through `plugin` (apiBasePlugin), with its own keep-alive agent; `ca` is an extra certificate authority to trust (tests). */
export function createXClient(credentials: XCredentials, plugin: ITwitterApiClientPlugin, ca?: string | Buffer): XClient {
  const httpAgent = new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
  const client = new TwitterApi(credentials, { httpAgent, plugins: [plugin] }).readWrite;
  return { client, mapError: mapXError, close: () => httpAgent.destroy() };
}

function apiDetail(err: ApiResponseError): string {
  const data: unknown = err.data;
  if (data && typeof data === 'object') {
    const d = data as { detail?: unknown; title?: unknown; errors?: Array<{ message?: unknown }> };
    if (typeof d.detail === 'string') return d.detail;
    const first = d.errors?.[0]?.message;
    if (typeof first === 'string') return first;
    if (typeof d.title === 'string') return d.title;
  }
  return err.message;
}

/** When a 429 ends: the 24-hour limit's reset if that is the one exhausted, else the 15-minute window's. */
function rateLimitReset(err: ApiResponseError, now: Date): Date {
  const num = (name: string): number | undefined => {
    const v = Number(err.headers?.[name]);
    return Number.isFinite(v) ? v : undefined;
  };
  const day = err.rateLimit?.day;
  const epoch =
    (day?.remaining === 0 ? day.reset : undefined) ??
    (num('x-user-limit-24hour-remaining') === 0 ? num('x-user-limit-24hour-reset') : undefined) ??
    err.rateLimit?.reset ??
    num('x-rate-limit-reset');
  return epoch && epoch > 0 ? new Date(epoch * 1000) : new Date(now.getTime() + 15 * 60_000);
}

/** Turns what twitter-api-v2 throws into the error class that decides retry / pause / fail. */
export function mapXError(err: unknown, now: Date): ChannelError {
  if (err instanceof ChannelError) return err;
  if (err instanceof ApiResponseError) {
    const detail = apiDetail(err);
    if (err.rateLimitError) return new RateLimitedError(`X rate limit: ${detail}`, rateLimitReset(err, now));
    if (err.code === 401 || err.isAuthError) return new NeedsReauthError(`X rejected the credentials (${err.code}: ${detail})`);
    if (err.code >= 500) return new TransientError(`X API error ${err.code}: ${detail}`);
    if (/duplicate content/i.test(detail)) return new PermanentError(`X refused a duplicate post: ${detail}`);
    return new PermanentError(`X API error ${err.code}: ${detail}`);
  }
  if (err instanceof ApiRequestError) {
    // twitter-api-v2 1.29 stores the cause as `_options.error` while its `requestError` getter reads another name.
    const stored = (err as unknown as { _options?: { error?: unknown } })._options?.error;
    const cause = (err.requestError as Error | undefined)?.message ?? (stored instanceof Error ? stored.message : err.message);
    return new TransientError(`cannot reach the X API: ${cause}`);
  }
  if (err instanceof ApiPartialResponseError) return new TransientError(`X API answer was cut short: ${err.message}`);
  const message = err instanceof Error ? err.message : String(err);
  return new TransientError(`X request failed: ${message}`);
}
