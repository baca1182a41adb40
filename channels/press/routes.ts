import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import { DEFAULT_SITE_TITLE, renderAtom, renderNotFoundPage, renderReleasePage, renderRss, type FeedSite } from './feed.js';
import { getRelease, listReleases } from './store.js';

/**
 * Public press endpoints (no auth): GET /press.rss, /press.atom, /press/:slug.
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
}

// Short enough that a release appears soon after its embargo even through a cache.
const FEED_CACHE = 'public, max-age=60';

function common(reply: FastifyReply, type: string, cache: string): FastifyReply {
  return reply.type(type).header('cache-control', cache).header('x-content-type-options', 'nosniff');
}

export function pressRoutes(deps: PressRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? (() => new Date());
  const limit = deps.feedLimit ?? 50;
  const siteAt = (at: Date): FeedSite => ({
    title: deps.siteTitle ?? DEFAULT_SITE_TITLE,
    publicUrl: deps.publicUrl.replace(/\/+$/, ''),
    timezone: deps.timezone,
    now: at,
  });

  return async (app) => {
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
