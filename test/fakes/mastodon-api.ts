import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for a Mastodon server, speaking the real REST API:
 * POST /api/v1/statuses (JSON or form body, Bearer token, Idempotency-Key:
 * a repeated key returns the status already made), POST /api/v2/media
 * (multipart with `description`), GET /api/v1/accounts/verify_credentials,
 * GET /api/v1/accounts/:id/statuses (the account's recent posts, newest first),
 * errors as {"error": "..."} and X-RateLimit-* headers (reset as ISO time).
 */

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON / form fields; for multipart, the text fields and a `file` summary. */
  body: Record<string, unknown>;
}

export interface FakeStatus {
  id: string;
  text: string;
  visibility: string;
  spoilerText: string;
  mediaIds: string[];
  idempotencyKey?: string;
  reblogs?: number;
  favourites?: number;
  replies?: number;
  /** Deleted: GET /api/v1/statuses/:id answers 404. */
  deleted?: boolean;
}

export interface FakeMediaAttachment {
  id: string;
  description: string;
  fileName: string;
  type: string;
  size: number;
}

export interface MastodonFailOptions {
  path?: string;
  /** For 429: X-RateLimit-Reset = now + this. */
  resetInSeconds?: number;
  /** The `error` text of the answer. */
  error?: string;
  /** Make the status, then close the connection without answering: the ambiguous failure. */
  afterEffect?: boolean;
  /** Close the connection without answering. */
  drop?: boolean;
  /** Answer with this status and a body that is not JSON. */
  garbage?: boolean;
  /** Make the status and never answer (the client is left waiting, as when its process dies). */
  hang?: boolean;
}

export interface FakeMastodonApi {
  url: string;
  token: string;
  requests: RecordedRequest[];
  statuses: FakeStatus[];
  media: Map<string, FakeMediaAttachment>;
  /** The account verify_credentials returns (set followers_count). */
  account: { followers_count: number };
  failNext(status: number, opts?: MastodonFailOptions): void;
  /** Mastodon keeps an Idempotency-Key for an hour: this makes the hour pass. */
  forgetIdempotencyKeys(): void;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const MAX_CHARS = 500;

export async function startFakeMastodonApi(opts: { token?: string } = {}): Promise<FakeMastodonApi> {
  const token = opts.token ?? 'mastodon-test-token';
  const requests: RecordedRequest[] = [];
  const statuses: FakeStatus[] = [];
  const media = new Map<string, FakeMediaAttachment>();
  const failures: Array<MastodonFailOptions & { status: number }> = [];
  let nextId = 113_000_000_000_000_000n;
  const newId = (): string => String(nextId++);
  let base = '';

  const account = { id: '109000000000000001', username: 'pcc', acct: 'pcc', display_name: 'Police and Crime Commissioner', followers_count: 1200 };

  function statusJson(s: FakeStatus): Record<string, unknown> {
    return {
      id: s.id,
      created_at: new Date().toISOString(),
      visibility: s.visibility,
      spoiler_text: s.spoilerText,
      sensitive: s.spoilerText !== '',
      content: `<p>${s.text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</p>`,
      uri: `${base}/users/pcc/statuses/${s.id}`,
      url: `${base}/@pcc/${s.id}`,
      account,
      media_attachments: s.mediaIds.map((id) => ({ id, type: 'image', description: media.get(id)?.description ?? null })),
      reblogs_count: s.reblogs ?? 0,
      favourites_count: s.favourites ?? 0,
      replies_count: s.replies ?? 0,
    };
  }

  function route(method: string, path: string, headers: IncomingHttpHeaders, body: Record<string, unknown>, query = new URLSearchParams()): Reply {
    if (method === 'GET' && path === '/api/v1/accounts/verify_credentials') return { status: 200, body: account };
    const one = /^\/api\/v1\/statuses\/(\d+)$/.exec(path);
    if (method === 'GET' && one) {
      const s = statuses.find((x) => x.id === one[1]);
      return s && !s.deleted ? { status: 200, body: statusJson(s) } : { status: 404, body: { error: 'Record not found' } };
    }
    if (method === 'GET' && path === `/api/v1/accounts/${account.id}/statuses`) {
      const limit = Math.min(40, Number(query.get('limit') ?? 20));
      return { status: 200, body: statuses.filter((s) => !s.deleted).slice(-limit).reverse().map(statusJson) };
    }
    if (method === 'POST' && path === '/api/v2/media') {
      const file = body.file as { name: string; type: string; size: number } | undefined;
      if (!file) return { status: 422, body: { error: 'Validation failed: File must be present' } };
      const item: FakeMediaAttachment = { id: newId(), description: String(body.description ?? ''), fileName: file.name, type: file.type, size: file.size };
      media.set(item.id, item);
      return { status: 200, body: { id: item.id, type: 'image', url: `${base}/media/${item.id}.png`, preview_url: null, description: item.description } };
    }
    if (method === 'POST' && path === '/api/v1/statuses') {
      const key = typeof headers['idempotency-key'] === 'string' ? headers['idempotency-key'] : undefined;
      const earlier = key ? statuses.find((s) => s.idempotencyKey === key) : undefined;
      if (earlier) return { status: 200, body: statusJson(earlier) };
      const text = String(body.status ?? '');
      const mediaIds = (Array.isArray(body.media_ids) ? body.media_ids : []).map(String);
      if (!text && mediaIds.length === 0) return { status: 422, body: { error: "Validation failed: Text can't be blank" } };
      if ([...text].length > MAX_CHARS) return { status: 422, body: { error: `Validation failed: Text character limit of ${MAX_CHARS} exceeded` } };
      if (mediaIds.some((id) => !media.has(id))) return { status: 422, body: { error: 'Validation failed: Media attachments are invalid' } };
      const status: FakeStatus = {
        id: newId(),
        text,
        visibility: String(body.visibility ?? 'public'),
        spoilerText: String(body.spoiler_text ?? ''),
        mediaIds,
        idempotencyKey: key,
      };
      statuses.push(status);
      return { status: 200, body: statusJson(status) };
    }
    return { status: 404, body: { error: 'Record not found' } };
  }

  async function readBody(headers: IncomingHttpHeaders, raw: Buffer): Promise<Record<string, unknown>> {
    const type = headers['content-type'] ?? '';
    if (raw.length === 0) return {};
    if (type.includes('application/json')) return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (type.includes('application/x-www-form-urlencoded') || type.includes('multipart/form-data')) {
      // The platform's own parser reads both encodings; media_ids[] becomes media_ids.
      const form = await new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(raw) }).formData();
      const out: Record<string, unknown> = {};
      for (const [name, value] of form) {
        const field = name.replace(/\[\]$/, '');
        const v = typeof value === 'string' ? value : { name: value.name, type: value.type, size: value.size };
        if (name.endsWith('[]')) out[field] = [...((out[field] as unknown[] | undefined) ?? []), v];
        else out[field] = v;
      }
      return out;
    }
    return {};
  }

  function send(res: ServerResponse, reply: Reply): void {
    res.writeHead(reply.status, {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '300',
      'x-ratelimit-remaining': '299',
      'x-ratelimit-reset': new Date(Date.now() + 300_000).toISOString(),
      ...reply.headers,
    });
    res.end(JSON.stringify(reply.body));
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const method = req.method ?? 'GET';
        const url = new URL(req.url ?? '/', base);
        const path = url.pathname;
        let body: Record<string, unknown>;
        try {
          body = await readBody(req.headers, Buffer.concat(chunks));
        } catch {
          return send(res, { status: 400, body: { error: 'Bad request' } });
        }
        requests.push({ method, path, headers: req.headers, body });

        const at = failures.findIndex((f) => !f.path || f.path === path);
        if (at >= 0) {
          const failure = failures.splice(at, 1)[0]!;
          if (failure.afterEffect || failure.hang) route(method, path, req.headers, body, url.searchParams);
          if (failure.hang) return;
          if (failure.drop || failure.afterEffect) return void req.socket.destroy();
          if (failure.garbage) {
            res.writeHead(failure.status, { 'content-type': 'application/json' });
            return void res.end('{"id": "1", "followers_count": ');
          }
          const headers: Record<string, string> = {};
          if (failure.status === 429) {
            headers['x-ratelimit-remaining'] = '0';
            headers['x-ratelimit-reset'] = new Date(Date.now() + (failure.resetInSeconds ?? 300) * 1000).toISOString();
          }
          const error = failure.error ?? (failure.status === 429 ? 'Too many requests' : failure.status === 401 ? 'The access token is invalid' : 'Internal server error');
          return send(res, { status: failure.status, body: { error }, headers });
        }
        if (req.headers.authorization !== `Bearer ${token}`) {
          return send(res, { status: 401, body: { error: 'The access token is invalid' } });
        }
        send(res, route(method, path, req.headers, body, url.searchParams));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    token,
    requests,
    statuses,
    media,
    account,
    failNext(status, failOpts = {}) {
      failures.push({ status, ...failOpts });
    },
    forgetIdempotencyKeys() {
      for (const s of statuses) delete s.idempotencyKey;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
