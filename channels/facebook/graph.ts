import type { Config } from '../../src/config.js';
import { NeedsReauthError, PermanentError, RateLimitedError, TransientError, type ChannelError } from '../adapter.js';

/**
 * The Facebook Graph API with plain fetch: `{FACEBOOK_GRAPH_URL}/{version}/…`
 * with the Page access token as a Bearer header (never in the URL, so it is
 * never logged). Shared by the Page channel and the Facebook collector.
 *
 * Graph errors arrive as `{"error": {"message", "type", "code",
 * "error_subcode", "fbtrace_id"}}`, usually with HTTP 400; the code decides:
 *  - 190 (token expired or invalid), 102 (session), 10 and 200–299 (permission missing) → reconnect account
 *  - 4, 17, 32, 613 (application, user, page, custom rate limits), 80001 (page BUC) → pause until the estimated reset
 *  - 1, 2 (unknown / temporary service error) and HTTP 5xx → retry
 *  - 506 (duplicate post), 368 (blocked as abusive) and everything else → permanent
 */

const TIMEOUT_MS = 30_000;
/** How long to wait when a rate limit comes without Meta's estimate. */
const DEFAULT_RATE_LIMIT_WAIT_MS = 15 * 60_000;

export const RATE_LIMIT_CODES: ReadonlySet<number> = new Set([4, 17, 32, 613, 80001]);
const REAUTH_CODES: ReadonlySet<number> = new Set([102, 190, 10]);
const TRANSIENT_CODES: ReadonlySet<number> = new Set([1, 2]);

export interface GraphErrorBody {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  fbtrace_id?: string;
}

/** Thrown by graphRequest: the ChannelError the code maps to, with the Graph error kept for callers that look closer. */
export interface GraphFailure {
  error: ChannelError;
  graph?: GraphErrorBody;
  status: number;
}

function graphErrorOf(body: unknown): GraphErrorBody | undefined {
  const e = (body as { error?: unknown } | null)?.error;
  return e && typeof e === 'object' ? (e as GraphErrorBody) : undefined;
}

/**
 * Minutes until access returns, from `X-Business-Use-Case-Usage`
 * (`{"<id>": [{"estimated_time_to_regain_access": N, …}]}`): the largest.
 */
function regainMinutes(header: string | null): number | undefined {
  if (!header) return undefined;
  try {
    const usage = JSON.parse(header) as Record<string, Array<{ estimated_time_to_regain_access?: unknown }>>;
    const minutes = Object.values(usage)
      .flat()
      .map((u) => Number(u?.estimated_time_to_regain_access))
      .filter((n) => Number.isFinite(n) && n >= 0);
    return minutes.length > 0 ? Math.max(...minutes) : undefined;
  } catch {
    return undefined;
  }
}

/** The error class a Graph API answer maps to. */
export function mapGraphError(status: number, body: unknown, headers: Headers, now: Date): ChannelError {
  const g = graphErrorOf(body);
  const code = typeof g?.code === 'number' ? g.code : undefined;
  const detail = `${g?.message ?? `HTTP ${status}`}${code !== undefined ? ` (code ${code}${g?.error_subcode ? `, subcode ${g.error_subcode}` : ''})` : ''}`;
  if (code !== undefined && RATE_LIMIT_CODES.has(code)) {
    const minutes = regainMinutes(headers.get('x-business-use-case-usage'));
    const waitMs = minutes !== undefined ? minutes * 60_000 : DEFAULT_RATE_LIMIT_WAIT_MS;
    return new RateLimitedError(`Facebook rate limit: ${detail}`, new Date(now.getTime() + waitMs));
  }
  if (status === 401 || (code !== undefined && (REAUTH_CODES.has(code) || (code >= 200 && code <= 299)))) {
    return new NeedsReauthError(`Facebook refused the Page token: ${detail}`);
  }
  if (status >= 500 || (code !== undefined && TRANSIENT_CODES.has(code))) return new TransientError(`Facebook error: ${detail}`);
  if (code === 506) return new PermanentError(`Facebook refused a duplicate post: ${detail}`);
  if (code === 368) return new PermanentError(`Facebook blocked the post: ${detail}`);
  return new PermanentError(`Facebook refused the request: ${detail}`);
}

export class GraphRequestError extends Error {
  constructor(readonly failure: GraphFailure) {
    super(failure.error.message);
    this.name = 'GraphRequestError';
  }
}

export interface GraphClient {
  readonly pageId: string;
  /** GET with query parameters; resolves to the JSON answer. */
  get(path: string, params?: Record<string, string>, now?: Date): Promise<unknown>;
  /** POST a form (URL-encoded) or multipart body. */
  post(path: string, body: URLSearchParams | FormData, now?: Date): Promise<unknown>;
}

/**
 * A client for the configured Page, or undefined without FACEBOOK_PAGE_ID and
 * FACEBOOK_PAGE_TOKEN. `fetchImpl`: the collectors pass theirs.
 */
export function graphClient(config: Config, fetchImpl: typeof fetch = fetch): GraphClient | undefined {
  const { graphUrl, apiVersion, pageId, pageToken } = config.facebook;
  if (!pageId || !pageToken) return undefined;
  const base = `${graphUrl}/${apiVersion}`;

  async function call(method: string, path: string, init: { query?: Record<string, string>; body?: BodyInit }, now: Date): Promise<unknown> {
    const qs = init.query && Object.keys(init.query).length > 0 ? `?${new URLSearchParams(init.query).toString()}` : '';
    let res: Response;
    try {
      res = await fetchImpl(`${base}${path}${qs}`, {
        method,
        headers: { authorization: `Bearer ${pageToken}`, accept: 'application/json', 'user-agent': 'Crier' },
        body: init.body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      throw new GraphRequestError({ error: new TransientError(`cannot reach Facebook at ${graphUrl}: ${cause}`), status: 0 });
    }
    const text = await res.text().catch(() => '');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = undefined;
    }
    if (!res.ok || graphErrorOf(body)) {
      throw new GraphRequestError({ error: mapGraphError(res.status, body, res.headers, now), graph: graphErrorOf(body), status: res.status });
    }
    if (body === undefined) throw new GraphRequestError({ error: new TransientError(`Facebook answered ${res.status} with a body that is not JSON`), status: res.status });
    return body;
  }

  return {
    pageId,
    get: (path, params = {}, now = new Date()) => call('GET', path, { query: params }, now),
    post: (path, body, now = new Date()) => call('POST', path, { body }, now),
  };
}

/** Unwraps a GraphRequestError to the ChannelError the adapter throws. */
export function channelErrorOf(err: unknown): unknown {
  return err instanceof GraphRequestError ? err.failure.error : err;
}
