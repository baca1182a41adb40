import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the YouTube Data API v3 as an API key sees it, under
 * `/youtube/v3`: `channels` (statistics, contentDetails.relatedPlaylists.uploads),
 * `playlistItems` (the uploads playlist, newest first, 50 a page with
 * nextPageToken) and `videos?part=statistics` (at most 50 ids). Counts are
 * strings, as the real API sends them; a hidden subscriber count comes as
 * hiddenSubscriberCount: true (with subscriberCount "0", so reading it as a
 * number would be wrong). Quota is counted (1 unit a list call) and, when
 * spent, answered 403 quotaExceeded in Google's error format.
 */

export interface FakeVideo {
  id: string;
  publishedAt: string;
  views: number;
  likes?: number;
  comments?: number;
}

export interface FakeYoutubeApi {
  /** YOUTUBE_API_URL for Crier. */
  url: string;
  apiKey: string;
  channelId: string;
  subscribers: number;
  hiddenSubscribers: boolean;
  views: number;
  /** Newest first. */
  videos: FakeVideo[];
  /** Units used so far. */
  unitsUsed: number;
  /** Units left before quotaExceeded (default: plenty). */
  quota: number;
  /** The number of ids in each `videos` call. */
  videoCalls: number[];
  requests: Array<{ resource: string; query: Record<string, string> }>;
  close(): Promise<void>;
}

export async function startFakeYoutubeApi(opts: { videos?: FakeVideo[] } = {}): Promise<FakeYoutubeApi> {
  const channelId = 'UCfakeOPCCchannel0000001';
  const uploads = `UU${channelId.slice(2)}`;
  const api: FakeYoutubeApi = {
    url: '',
    apiKey: 'AIzaFakeYoutubeKey0123456789',
    channelId,
    subscribers: 2750,
    hiddenSubscribers: false,
    views: 918_204,
    videos: opts.videos ?? [],
    unitsUsed: 0,
    quota: 10_000,
    videoCalls: [],
    requests: [],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const error = (code: number, message: string, reason: string, domain = 'global', details?: unknown) => ({
    status: code,
    body: { error: { code, message, errors: [{ message, domain, reason }], ...(details ? { details } : {}) } },
  });

  function route(resource: string, q: Record<string, string>): { status: number; body: unknown } {
    if (q.key !== api.apiKey) {
      return error(400, 'API key not valid. Please pass a valid API key.', 'badRequest', 'global', [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' },
      ]);
    }
    if (api.unitsUsed >= api.quota) {
      return error(403, 'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.', 'quotaExceeded', 'youtube.quota');
    }
    api.unitsUsed += 1;
    if (resource === 'channels') {
      const items =
        q.id === channelId
          ? [
              {
                kind: 'youtube#channel',
                etag: 'etag-channel',
                id: channelId,
                statistics: {
                  viewCount: String(api.views),
                  subscriberCount: api.hiddenSubscribers ? '0' : String(api.subscribers),
                  hiddenSubscriberCount: api.hiddenSubscribers,
                  videoCount: String(api.videos.length),
                },
                contentDetails: { relatedPlaylists: { likes: '', uploads } },
              },
            ]
          : [];
      return { status: 200, body: { kind: 'youtube#channelListResponse', etag: 'etag-list', pageInfo: { totalResults: items.length, resultsPerPage: 5 }, items } };
    }
    if (resource === 'playlistItems') {
      if (q.playlistId !== uploads) return error(404, "The playlist identified with the request's <code>playlistId</code> parameter cannot be found.", 'playlistNotFound', 'youtube.playlistItem');
      const size = Math.min(50, Number(q.maxResults ?? 5));
      const start = Number(q.pageToken?.replace(/^p/, '') ?? 0);
      const page = api.videos.slice(start, start + size);
      const next = start + size < api.videos.length ? `p${start + size}` : undefined;
      return {
        status: 200,
        body: {
          kind: 'youtube#playlistItemListResponse',
          etag: 'etag-items',
          ...(next ? { nextPageToken: next } : {}),
          pageInfo: { totalResults: api.videos.length, resultsPerPage: size },
          items: page.map((v) => ({ kind: 'youtube#playlistItem', etag: `e${v.id}`, id: `pi-${v.id}`, contentDetails: { videoId: v.id, videoPublishedAt: v.publishedAt } })),
        },
      };
    }
    if (resource === 'videos') {
      const ids = (q.id ?? '').split(',').filter(Boolean);
      api.videoCalls.push(ids.length);
      if (ids.length > 50) return error(400, 'The request specifies an invalid filter parameter.', 'invalidFilters', 'youtube.parameter');
      const items = ids
        .map((id) => api.videos.find((v) => v.id === id))
        .filter((v): v is FakeVideo => v !== undefined)
        .map((v) => ({
          kind: 'youtube#video',
          etag: `e${v.id}`,
          id: v.id,
          statistics: {
            viewCount: String(v.views),
            ...(v.likes !== undefined ? { likeCount: String(v.likes) } : {}),
            favoriteCount: '0',
            ...(v.comments !== undefined ? { commentCount: String(v.comments) } : {}),
          },
        }));
      return { status: 200, body: { kind: 'youtube#videoListResponse', etag: 'etag-videos', items, pageInfo: { totalResults: items.length, resultsPerPage: items.length } } };
    }
    return error(404, 'Not Found', 'notFound');
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  }

  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', api.url);
      const m = /^\/youtube\/v3\/([A-Za-z]+)$/.exec(url.pathname);
      if (!m || req.method !== 'GET') return send(res, 404, { error: { code: 404, message: 'Not Found', errors: [{ reason: 'notFound' }] } });
      const query = Object.fromEntries(url.searchParams);
      api.requests.push({ resource: m[1]!, query });
      const reply = route(m[1]!, query);
      send(res, reply.status, reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

/** The environment that points the YouTube collector at a fake. */
export function youtubeEnv(fake: FakeYoutubeApi): Record<string, string> {
  return { YOUTUBE_API_URL: `${fake.url}/youtube/v3`, YOUTUBE_API_KEY: fake.apiKey, YOUTUBE_CHANNEL_ID: fake.channelId };
}
