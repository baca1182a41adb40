import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Organisation } from '../../src/organisation.js';
import { DEFAULT_SITE_TITLE, renderAtom, renderNotFoundPage, renderPressRoom, renderReleasePage, renderRss, type FeedSite } from './feed.js';
import { getRelease, listReleases } from './store.js';

/**
 * Public press endpoints (no auth): GET /press (the press room: releases,
 * newest first, `?page=N` for older ones), /press.rss, /press.atom, /press/:slug;
 * with `root`, / answers the press room too.
 * Register with `app.register(pressRoutes({ redis, prefix, publicUrl }))`.
 */

export interface PressRoutesDeps {
  redis: Redis;
  prefix: string;
  publicUrl: string;
  siteTitle?: string;
  /** For dates shown on release pages (default Europe/London). */
  timezone?: string;
  /** The clock: a release whose publishedAt is later than now() is not shown. */
  now?: () => Date;
  /** Entries per feed (default 50). */
  feedLimit?: number;
  /** The organisation: masthead, footer and press contact on the pages; its name titles the feeds. */
  org?: Organisation;
  /** Also answer GET / with the press room (the public server's home page). */
  root?: boolean;
}

/** Releases per press room page. */
export const PRESS_ROOM_PAGE = 20;

// Short enough that a release appears soon after its embargo even through a cache.
const FEED_CACHE = 'public, max-age=60';

function common(reply: FastifyReply, type: string, cache: string): FastifyReply {
  return reply.type(type).header('cache-control', cache).header('x-content-type-options', 'nosniff');
}

export function pressRoutes(deps: PressRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? (() => new Date());
  const limit = deps.feedLimit ?? 50;
  const siteAt = (at: Date): FeedSite => ({
    title: deps.org?.name ?? deps.siteTitle ?? DEFAULT_SITE_TITLE,
    org: deps.org,
    publicUrl: deps.publicUrl.replace(/\/+$/, ''),
    timezone: deps.timezone,
    now: at,
  });

  return async (app) => {
    const pressRoom = async (req: FastifyRequest<{ Querystring: { page?: string } }>, reply: FastifyReply) => {
      const at = now();
      const raw = req.query.page ?? '1';
      const pageNo = /^[1-9]\d{0,5}$/.test(raw) ? Number(raw) : 0;
      if (!pageNo) {
        common(reply, 'text/html; charset=utf-8', 'no-store').code(404);
        return renderNotFoundPage(siteAt(at));
      }
      // One more than a page tells whether an older page exists; only releases already public are counted.
      const upTo = await listReleases(deps.redis, deps.prefix, pageNo * PRESS_ROOM_PAGE + 1, at);
      const releases = upTo.slice((pageNo - 1) * PRESS_ROOM_PAGE, pageNo * PRESS_ROOM_PAGE);
      common(reply, 'text/html; charset=utf-8', FEED_CACHE);
      return renderPressRoom(releases, siteAt(at), { page: pageNo, more: upTo.length > pageNo * PRESS_ROOM_PAGE });
    };
    app.get('/press', pressRoom);
    if (deps.root) app.get('/', pressRoom);

    app.get('/press.rss', async (_req, reply) => {
      const at = now();
      const releases = await listReleases(deps.redis, deps.prefix, limit, at);
      common(reply, 'application/rss+xml; charset=utf-8', FEED_CACHE);
      return renderRss(releases, siteAt(at));
    });

    app.get('/press.atom', async (_req, reply) => {
      const at = now();
      const releases = await listReleases(deps.redis, deps.prefix, limit, at);
      common(reply, 'application/atom+xml; charset=utf-8', FEED_CACHE);
      return renderAtom(releases, siteAt(at));
    });

    app.get<{ Params: { slug: string } }>('/press/:slug', async (req, reply) => {
      if (req.params.slug === '') return reply.redirect('/press', 301);
      const at = now();
      const release = await getRelease(deps.redis, deps.prefix, req.params.slug);
      // An embargoed release answers exactly like a missing one: nothing leaks early.
      if (!release || release.publishedAt.getTime() > at.getTime()) {
        common(reply, 'text/html; charset=utf-8', 'no-store').code(404);
        return renderNotFoundPage(siteAt(at));
      }
      common(reply, 'text/html; charset=utf-8', 'public, max-age=300');
      return renderReleasePage(release, siteAt(at));
    });
  };
}
