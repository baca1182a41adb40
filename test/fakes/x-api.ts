import { createHmac, timingSafeEqual } from 'node:crypto';
import https from 'node:https';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { selfSignedCert } from './tls.js';

/**
 * A local stand-in for the X API v2, over HTTPS with a self-signed
 * certificate, speaking the real wire format: POST /2/tweets → 201
 * {data:{id,text}}, problem+json errors {title,detail,type,status},
 * x-rate-limit-* headers, duplicate text → 403, the v2 chunked media upload
 * (initialize / append / finalize), POST /2/media/metadata for alt text and
 * GET /2/users/:id/tweets (links shortened to t.co as X does).
 * With `credentials` it checks the OAuth 1.0a HMAC-SHA1 signature like X does.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is JSON, else the raw text (multipart uploads). */
  body: unknown;
}

export interface FakeTweet {
  id: string;
  text: string;
  inReplyTo?: string;
  mediaIds: string[];
  /** public_metrics (GET /2/tweets); zeros when unset. */
  metrics?: Partial<Record<'retweet_count' | 'reply_count' | 'like_count' | 'quote_count' | 'impression_count' | 'bookmark_count', number>>;
  /** non_public_metrics, answered only for the author's own posts. */
  nonPublic?: { impression_count: number; url_link_clicks: number; user_profile_clicks: number };
  /** Deleted: GET /2/tweets reports it in errors[]. */
  deleted?: boolean;
}

export interface FakeMedia {
  id: string;
  mediaType: string;
  totalBytes: number;
  appendedBytes: number;
  alt?: string;
}

export interface FailOptions {
  /** Only requests to this path (e.g. "/2/tweets") take the failure. */
  path?: string;
  /** For 429: x-rate-limit-reset = now + this. */
  resetInSeconds?: number;
  detail?: string;
  /** Let this many matching requests through first. */
  skip?: number;
  /** Close the connection without answering: a network failure. */
  drop?: boolean;
  /** Perform the request (e.g. create the tweet) and then drop the answer: the ambiguous failure. */
  afterEffect?: boolean;
  /** Answer with this status and a body that is not JSON. */
  garbage?: boolean;
  /** Perform the request and never answer (the client is left waiting, as when its process dies). */
  hang?: boolean;
}

export type XCredentials = NonNullable<FakeXApiOptions['credentials']>;

/** The environment that points Crier's X channel at a fake (or any) API base with these credentials. */
export function twitterEnv(apiBase: string, c: XCredentials): Record<string, string> {
  return {
    TWITTER_API_BASE: apiBase,
    TWITTER_APP_KEY: c.appKey,
    TWITTER_APP_SECRET: c.appSecret,
    TWITTER_ACCESS_TOKEN: c.accessToken,
    TWITTER_ACCESS_SECRET: c.accessSecret,
  };
}

export interface FakeXApiOptions {
  credentials?: { appKey: string; appSecret: string; accessToken: string; accessSecret: string };
  /** public_metrics.followers_count of /2/users/me. */
  followers?: number;
}

export interface FakeXApi {
  /** https://127.0.0.1:<port>: what TWITTER_API_BASE points at. */
  url: string;
  /** The certificate to trust (pass as `ca`, or its file as NODE_EXTRA_CA_CERTS). */
  ca: string;
  certFile: string;
  requests: RecordedRequest[];
  tweets: FakeTweet[];
  media: Map<string, FakeMedia>;
  failNext(status: number, opts?: FailOptions): void;
  close(): Promise<void>;
}

interface QueuedFailure extends FailOptions {
  status: number;
}

const DUPLICATE = 'You are not allowed to create a Tweet with duplicate content.';
const TITLES: Record<number, string> = {
  400: 'Invalid Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found Error',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

function problem(status: number, detail: string, headers: Record<string, string> = {}): Reply {
  return { status, body: { title: TITLES[status] ?? 'Error', detail, type: 'about:blank', status }, headers };
}

function percentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function parseOAuthHeader(header: string | undefined): Map<string, string> | undefined {
  if (!header?.startsWith('OAuth ')) return undefined;
  const fields = new Map<string, string>();
  for (const m of header.slice(6).matchAll(/([a-z_]+)="([^"]*)"/g)) fields.set(m[1]!, decodeURIComponent(m[2]!));
  return fields;
}

function signatureValid(method: string, url: URL, fields: Map<string, string>, creds: NonNullable<FakeXApiOptions['credentials']>): boolean {
  if (fields.get('oauth_consumer_key') !== creds.appKey || fields.get('oauth_token') !== creds.accessToken) return false;
  const params: Array<[string, string]> = [...fields].filter(([k]) => k !== 'oauth_signature');
  for (const [k, v] of url.searchParams) params.push([k, v]);
  const encoded = params.map(([k, v]) => [percentEncode(k), percentEncode(v)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const paramString = encoded.map(([k, v]) => `${k}=${v}`).join('&');
  const base = `${method.toUpperCase()}&${percentEncode(`${url.origin}${url.pathname}`)}&${percentEncode(paramString)}`;
  const expected = createHmac('sha1', `${percentEncode(creds.appSecret)}&${percentEncode(creds.accessSecret)}`).update(base).digest();
  const given = Buffer.from(fields.get('oauth_signature') ?? '', 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startFakeXApi(opts: FakeXApiOptions = {}): Promise<FakeXApi> {
  const tls = selfSignedCert();
  const requests: RecordedRequest[] = [];
  const tweets: FakeTweet[] = [];
  const media = new Map<string, FakeMedia>();
  const failures: QueuedFailure[] = [];
  let nextId = 1_860_000_000_000_000_000n;
  const newId = (): string => String(nextId++);

  function send(res: ServerResponse, reply: Reply): void {
    const reset = String(Math.floor(Date.now() / 1000) + 900);
    const { status, body } = reply;
    res.writeHead(status, {
      'x-rate-limit-limit': '100',
      'x-rate-limit-remaining': '99',
      'x-rate-limit-reset': reset,
      ...(body === undefined ? {} : { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json; charset=utf-8' }),
      ...reply.headers,
    });
    res.end(body === undefined ? '' : JSON.stringify(body));
  }

  function route(method: string, url: URL, body: unknown): Reply {
    const json = (body ?? {}) as Record<string, unknown>;
    if (method === 'GET' && url.pathname === '/2/users/me') {
      const user: Record<string, unknown> = { id: '1600000000000000001', name: 'Crier Test', username: 'crier_test' };
      if ((url.searchParams.get('user.fields') ?? '').split(',').includes('public_metrics')) {
        user.public_metrics = { followers_count: opts.followers ?? 0, following_count: 12, tweet_count: tweets.length, listed_count: 3, like_count: 0, media_count: 0 };
      }
      return { status: 200, body: { data: user } };
    }
    if (method === 'GET' && url.pathname === '/2/tweets') {
      const ids = (url.searchParams.get('ids') ?? '').split(',').filter(Boolean);
      if (ids.length === 0 || ids.length > 100) return problem(400, `The \`ids\` query parameter value [${ids.length}] is not between 1 and 100`);
      const fields = (url.searchParams.get('tweet.fields') ?? '').split(',');
      const data: Array<Record<string, unknown>> = [];
      const errors: Array<Record<string, unknown>> = [];
      for (const id of ids) {
        const t = tweets.find((x) => x.id === id);
        if (!t || t.deleted) {
          errors.push({ value: id, detail: `Could not find tweet with ids: [${id}].`, title: 'Not Found Error', resource_type: 'tweet', parameter: 'ids', resource_id: id, type: 'https://api.twitter.com/2/problems/resource-not-found' });
          continue;
        }
        const item: Record<string, unknown> = { id: t.id, text: t.text, edit_history_tweet_ids: [t.id] };
        if (fields.includes('public_metrics')) {
          item.public_metrics = { retweet_count: 0, reply_count: 0, like_count: 0, quote_count: 0, bookmark_count: 0, impression_count: 0, ...t.metrics };
        }
        if (fields.includes('non_public_metrics')) item.non_public_metrics = t.nonPublic ?? { impression_count: 0, url_link_clicks: 0, user_profile_clicks: 0 };
        if (fields.includes('created_at')) item.created_at = new Date().toISOString();
        data.push(item);
      }
      return { status: 200, body: { ...(data.length ? { data } : {}), ...(errors.length ? { errors } : {}) } };
    }
    const timeline = /^\/2\/users\/\d+\/tweets$/.exec(url.pathname);
    if (method === 'GET' && timeline) {
      const max = Number(url.searchParams.get('max_results') ?? 10);
      // X's bounds for this endpoint.
      if (!Number.isInteger(max) || max < 5 || max > 100) return problem(400, `The \`max_results\` query parameter value [${url.searchParams.get('max_results')}] is not between 5 and 100`);
      // Like X, links come back shortened to t.co.
      const data = tweets
        .slice(-max)
        .reverse()
        .map((t) => ({ id: t.id, text: t.text.replace(/https?:\/\/\S+/g, () => `https://t.co/${newId().slice(-10)}`), edit_history_tweet_ids: [t.id] }));
      const meta = data.length > 0 ? { result_count: data.length, newest_id: data[0]!.id, oldest_id: data.at(-1)!.id } : { result_count: 0 };
      return { status: 200, body: data.length > 0 ? { data, meta } : { meta } };
    }
    if (method === 'POST' && url.pathname === '/2/tweets') {
      const text = typeof json.text === 'string' ? json.text : '';
      if (!text && !json.media) return problem(400, 'One or more parameters to your request was invalid.');
      if (tweets.some((t) => t.text === text)) return problem(403, DUPLICATE);
      const reply = json.reply as { in_reply_to_tweet_id?: string } | undefined;
      const mediaIds = ((json.media as { media_ids?: string[] } | undefined)?.media_ids ?? []).map(String);
      const tweet: FakeTweet = { id: newId(), text, inReplyTo: reply?.in_reply_to_tweet_id, mediaIds };
      tweets.push(tweet);
      return { status: 201, body: { data: { id: tweet.id, text, edit_history_tweet_ids: [tweet.id] } } };
    }
    if (method === 'POST' && url.pathname === '/2/media/upload/initialize') {
      const id = newId();
      media.set(id, { id, mediaType: String(json.media_type), totalBytes: Number(json.total_bytes), appendedBytes: 0 });
      return { status: 200, body: { data: { id, media_key: `3_${id}`, expires_after_secs: 86400 } } };
    }
    const chunk = /^\/2\/media\/upload\/(\d+)\/(append|finalize)$/.exec(url.pathname);
    if (method === 'POST' && chunk) {
      const item = media.get(chunk[1]!);
      if (!item) return problem(400, 'Invalid media id');
      if (chunk[2] === 'append') {
        item.appendedBytes += typeof body === 'string' ? Buffer.byteLength(body) : 0;
        return { status: 204 };
      }
      return { status: 200, body: { data: { id: item.id, media_key: `3_${item.id}`, size: item.totalBytes, expires_after_secs: 86400 } } };
    }
    if (method === 'POST' && url.pathname === '/2/media/metadata') {
      const item = media.get(String(json.id));
      const alt = (json.metadata as { alt_text?: { text?: string } } | undefined)?.alt_text?.text;
      if (!item || !alt) return problem(400, 'One or more parameters to your request was invalid.');
      item.alt = alt;
      return { status: 200, body: { data: { id: item.id, associated_metadata: { alt_text: { text: alt } } } } };
    }
    return problem(404, `no route for ${method} ${url.pathname}`);
  }

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const method = req.method ?? 'GET';
      let body: unknown = raw;
      if ((req.headers['content-type'] ?? '').includes('json') && raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          return send(res, problem(400, 'Request body is not valid JSON'));
        }
      }
      const url = new URL(req.url ?? '/', `https://${req.headers.host ?? '127.0.0.1'}`);
      requests.push({ method, path: url.pathname, headers: req.headers, body });

      const failureAt = failures.findIndex((f) => {
        if (f.path && f.path !== url.pathname) return false;
        if (!f.skip) return true;
        f.skip -= 1;
        return false;
      });
      if (failureAt >= 0) {
        const failure = failures.splice(failureAt, 1)[0]!;
        if (failure.afterEffect || failure.hang) route(method, url, body);
        if (failure.hang) return;
        if (failure.drop || failure.afterEffect) return void req.socket.destroy();
        if (failure.garbage) {
          res.writeHead(failure.status, { 'content-type': 'application/json' });
          return void res.end('<html><body>upstream error</body></html>');
        }
        const headers: Record<string, string> = {};
        if (failure.status === 429) {
          headers['x-rate-limit-remaining'] = '0';
          headers['x-rate-limit-reset'] = String(Math.floor(Date.now() / 1000) + (failure.resetInSeconds ?? 900));
        }
        const detail = failure.detail ?? (failure.status === 403 ? DUPLICATE : failure.status === 401 ? 'Unauthorized' : (TITLES[failure.status] ?? 'Error'));
        return send(res, problem(failure.status, detail, headers));
      }

      const fields = parseOAuthHeader(req.headers.authorization);
      if (!fields || (opts.credentials && !signatureValid(method, url, fields, opts.credentials))) {
        return send(res, problem(401, 'Unauthorized'));
      }
      send(res, route(method, url, body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}`,
    ca: tls.cert,
    certFile: tls.certFile,
    requests,
    tweets,
    media,
    failNext(status, failOpts = {}) {
      failures.push({ status, ...failOpts });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
