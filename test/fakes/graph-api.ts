import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Facebook Graph API as a Page sees it, speaking the
 * real wire format under `/{version}/…`:
 *  - POST /{page}/feed (message, link, attached_media[n]={"media_fbid":…}) → {id: "<page>_<post>"}
 *  - POST /{page}/photos (multipart: source, published=false, alt_text_custom) → {id}
 *  - GET /{page}/posts?fields=id,message,created_time&limit=N (newest first)
 *  - GET /{page}?fields=id,name,followers_count
 *  - GET /{page}/insights?metric=page_media_view,page_follows&period=day&since&until
 *  - GET /{post}/insights?metric=post_media_view
 *  - GET /{post}?fields=reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares
 * Errors as {"error": {message, type, code, error_subcode?, fbtrace_id}}.
 * Since 15 Nov 2025 Meta answers error 100 for the removed metrics
 * (page_impressions*, post_impressions*, page_fans*): so does this fake, and
 * it remembers that someone asked (`removedMetricRequests`).
 */

export interface FakeFacebookPost {
  id: string;
  message: string;
  link?: string;
  photoIds: string[];
  createdTime: string;
  views: number;
  reactions: number;
  comments: number;
  shares: number;
}

export interface FakeFacebookPhoto {
  id: string;
  alt: string;
  fileName: string;
  published: boolean;
}

export interface GraphFailOptions {
  /** Only for requests whose path (after the version) ends with this. */
  path?: string;
  /** HTTP status (default 400, as Graph answers most errors). */
  status?: number;
  message?: string;
  /** For rate limits: X-Business-Use-Case-Usage estimated_time_to_regain_access (minutes). */
  regainMinutes?: number;
}

export interface RecordedGraphRequest {
  method: string;
  /** Path after the version, e.g. "/1234/feed". */
  path: string;
  version: string;
  query: Record<string, string>;
  body: Record<string, string>;
  authorization?: string;
  /** When it arrived (ms since the epoch). */
  at: number;
}

export interface FakeGraphApi {
  url: string;
  pageId: string;
  token: string;
  posts: FakeFacebookPost[];
  photos: FakeFacebookPhoto[];
  requests: RecordedGraphRequest[];
  followers: number;
  /** page_media_view / page_follows per day (YYYY-MM-DD), as the insights answer them. */
  pageDaily: Map<string, { views: number; follows: number }>;
  removedMetricRequests: string[];
  /** While true, a feed post is made but its answer withheld (the connection stays open): a send in flight. */
  holdPostReplies: boolean;
  failNext(code: number, opts?: GraphFailOptions): void;
  close(): Promise<void>;
}

const REMOVED = /^(page_impressions|post_impressions|page_fans)/;
const PAGE_METRICS = new Set(['page_media_view', 'page_follows', 'page_post_engagements', 'page_views_total']);
const POST_METRICS = new Set(['post_media_view', 'post_reactions_by_type_total', 'post_clicks']);

export async function startFakeGraphApi(opts: { pageId?: string; token?: string; followers?: number } = {}): Promise<FakeGraphApi> {
  const pageId = opts.pageId ?? '104729381234567';
  const token = opts.token ?? 'EAAGfakePageToken';
  const posts: FakeFacebookPost[] = [];
  const photos: FakeFacebookPhoto[] = [];
  const requests: RecordedGraphRequest[] = [];
  const failures: Array<GraphFailOptions & { code: number }> = [];
  const removedMetricRequests: string[] = [];
  const pageDaily = new Map<string, { views: number; follows: number }>();
  let nextId = 800_000_000_000_000;
  let base = '';
  const api: FakeGraphApi = {
    url: '',
    pageId,
    token,
    posts,
    photos,
    requests,
    followers: opts.followers ?? 4321,
    pageDaily,
    removedMetricRequests,
    holdPostReplies: false,
    failNext(code, failOpts = {}) {
      failures.push({ code, ...failOpts });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const graphError = (code: number, message: string, status = 400, type = 'OAuthException') => ({
    status,
    body: { error: { message, type, code, fbtrace_id: `A${Math.random().toString(36).slice(2, 12)}` } },
  });

  function insights(metrics: string[], known: Set<string>, values: (metric: string) => Array<{ value: number; end_time: string }>, subject: string) {
    const removed = metrics.filter((m) => REMOVED.test(m));
    if (removed.length > 0) {
      removedMetricRequests.push(...removed);
      return graphError(100, '(#100) The value must be a valid insights metric');
    }
    const unknown = metrics.find((m) => !known.has(m));
    if (unknown) return graphError(100, '(#100) The value must be a valid insights metric');
    return {
      status: 200,
      body: {
        data: metrics.map((name) => ({ name, period: 'day', values: values(name), title: name, description: name, id: `${subject}/insights/${name}/day` })),
        paging: { previous: `${base}/previous`, next: `${base}/next` },
      },
    };
  }

  function route(method: string, path: string, query: Record<string, string>, body: Record<string, string>): { status: number; body: unknown } {
    const parts = path.split('/').filter(Boolean);
    const metrics = (query.metric ?? '').split(',').filter(Boolean);
    if (method === 'POST' && parts[0] === pageId && parts[1] === 'photos') {
      if (!body.source) return graphError(324, '(#324) Requires upload file');
      const photo: FakeFacebookPhoto = { id: String(nextId++), alt: body.alt_text_custom ?? '', fileName: body.source, published: body.published !== 'false' };
      photos.push(photo);
      return { status: 200, body: { id: photo.id } };
    }
    if (method === 'POST' && parts[0] === pageId && parts[1] === 'feed') {
      const message = body.message ?? '';
      const photoIds = Object.keys(body)
        .filter((k) => k.startsWith('attached_media['))
        .map((k) => (JSON.parse(body[k] ?? '{}') as { media_fbid?: string }).media_fbid ?? '');
      if (!message && !body.link && photoIds.length === 0) return graphError(100, '(#100) Invalid parameter');
      if (photoIds.some((id) => !photos.some((p) => p.id === id))) return graphError(100, '(#100) Invalid attached_media');
      if (posts.some((p) => p.message === message && message !== '')) return graphError(506, 'Duplicate status message');
      const createdTime = new Date().toISOString().replace(/\.\d+Z$/, '+0000');
      const post: FakeFacebookPost = { id: `${pageId}_${nextId++}`, message, link: body.link, photoIds, createdTime, views: 0, reactions: 0, comments: 0, shares: 0 };
      posts.push(post);
      return { status: 200, body: { id: post.id } };
    }
    if (method === 'GET' && parts[0] === pageId && parts[1] === 'posts') {
      const limit = Number(query.limit ?? 25);
      const data = [...posts].reverse().slice(0, limit).map((p) => ({ id: p.id, message: p.message, created_time: p.createdTime }));
      return { status: 200, body: { data, paging: { cursors: { before: 'b', after: 'a' } } } };
    }
    if (method === 'GET' && parts.length === 1 && parts[0] === pageId) {
      const fields = (query.fields ?? 'id,name').split(',');
      const out: Record<string, unknown> = { id: pageId };
      if (fields.includes('name')) out.name = 'Police and Crime Commissioner';
      if (fields.includes('followers_count')) out.followers_count = api.followers;
      return { status: 200, body: out };
    }
    if (method === 'GET' && parts[0] === pageId && parts[1] === 'insights') {
      const since = query.since ?? '';
      const until = query.until ?? '';
      return insights(metrics, PAGE_METRICS, (metric) =>
        [...pageDaily.entries()]
          .filter(([day]) => (!since || day >= since) && (!until || day < until))
          // A day's value is stamped with the day's end: midnight Pacific (08:00 UTC in winter) the next day.
          .map(([day, v]) => ({
            value: metric === 'page_follows' ? v.follows : metric === 'page_media_view' ? v.views : 0,
            end_time: `${new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10)}T08:00:00+0000`,
          })),
        pageId,
      );
    }
    const post = posts.find((p) => p.id === parts[0]);
    if (method === 'GET' && post && parts[1] === 'insights') {
      return insights(metrics, POST_METRICS, (metric) => [{ value: metric === 'post_media_view' ? post.views : 0, end_time: new Date().toISOString() }], post.id);
    }
    if (method === 'GET' && post && parts.length === 1) {
      const fields = query.fields ?? '';
      const out: Record<string, unknown> = { id: post.id };
      if (fields.includes('reactions')) out.reactions = { data: [], summary: { total_count: post.reactions, viewer_reaction: 'NONE' } };
      if (fields.includes('comments')) out.comments = { data: [], summary: { order: 'ranked', total_count: post.comments, can_comment: true } };
      // Graph leaves `shares` out when a post has never been shared.
      if (fields.includes('shares') && post.shares > 0) out.shares = { count: post.shares };
      return { status: 200, body: out };
    }
    if (parts[0] && /^\d+_\d+$/.test(parts[0])) {
      return graphError(100, `(#100) Object with ID '${parts[0]}' does not exist, cannot be loaded due to missing permissions, or does not support this operation`, 400, 'GraphMethodException');
    }
    return graphError(803, '(#803) Some of the aliases you requested do not exist');
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'x-fb-trace-id': 'fake', ...headers });
    res.end(JSON.stringify(body));
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', base);
        const match = /^\/(v\d+\.\d+)(\/.*)$/.exec(url.pathname);
        if (!match) return send(res, 400, { error: { message: 'Unknown path components', type: 'OAuthException', code: 2500 } });
        const [, version = '', path = ''] = match;
        const query = Object.fromEntries(url.searchParams);
        const body: Record<string, string> = {};
        const type = req.headers['content-type'] ?? '';
        const raw = Buffer.concat(chunks);
        if (raw.length > 0 && (type.includes('form-urlencoded') || type.includes('multipart/form-data'))) {
          const form = await new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(raw) }).formData();
          for (const [name, value] of form) body[name] = typeof value === 'string' ? value : value.name;
        }
        const authorization = req.headers.authorization;
        requests.push({ method: req.method ?? 'GET', path, version, query, body, authorization, at: Date.now() });

        const at = failures.findIndex((f) => !f.path || path.endsWith(f.path));
        if (at >= 0) {
          const f = failures.splice(at, 1)[0]!;
          const headers: Record<string, string> = {};
          if (f.regainMinutes !== undefined) {
            headers['x-business-use-case-usage'] = JSON.stringify({
              [pageId]: [{ type: 'pages', call_count: 100, total_cputime: 30, total_time: 40, estimated_time_to_regain_access: f.regainMinutes }],
            });
          }
          const message = f.message ?? (f.code === 190 ? 'Error validating access token: Session has expired.' : f.code === 32 ? 'Page request limit reached' : `fake error ${f.code}`);
          const e = graphError(f.code, message, f.status ?? 400);
          return send(res, e.status, e.body, headers);
        }
        const given = authorization?.startsWith('Bearer ') ? authorization.slice(7) : query.access_token;
        if (given !== token) {
          const e = graphError(190, 'Invalid OAuth access token - Cannot parse access token');
          return send(res, e.status, e.body);
        }
        const reply = route(req.method ?? 'GET', path, query, body);
        if (api.holdPostReplies && req.method === 'POST' && path.endsWith('/feed')) return;
        send(res, reply.status, reply.body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.url = base;
  return api;
}

/** The environment that points the Facebook channel and collector at a fake. */
export function facebookEnv(fake: FakeGraphApi): Record<string, string> {
  return { FACEBOOK_GRAPH_URL: fake.url, FACEBOOK_PAGE_ID: fake.pageId, FACEBOOK_PAGE_TOKEN: fake.token };
}
