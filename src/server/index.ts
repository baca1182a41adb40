import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pressRoutes } from '../../channels/press/routes.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RedisHandle } from '../redis/connection.js';
import { unsubscribeRoutes } from './unsubscribe.js';
import { publicScope } from './auth/guard.js';
import { registerWeb } from './web.js';

/** The HTTP server: health, and the public endpoints (unsubscribe, press feeds). */
export async function buildServer(config: Config, handle: RedisHandle, log: Logger, now: () => Date = () => new Date()) {
  // Unknown body fields are refused, not silently dropped; every mistake in a body is reported at once.
  const app = Fastify({ loggerInstance: log.child({ part: 'http' }) as FastifyBaseLogger, ajv: { customOptions: { removeAdditional: false, allErrors: true } } });
  // Accounts, API, dashboard, calendar feed: first, so the route guard covers every route. Everything is private unless marked public.
  await registerWeb(app, config, handle, log, now);
  app.get('/healthz', { config: { public: true } }, async (_req, reply) => {
    try {
      await handle.redis.ping();
      return { ok: true };
    } catch {
      return reply.code(503).send({ ok: false, redis: 'unreachable' });
    }
  });
  await app.register(publicScope(unsubscribeRoutes({ redis: handle.redis, prefix: handle.prefix, secret: config.secret })));
  await app.register(publicScope(pressRoutes({ redis: handle.redis, prefix: handle.prefix, publicUrl: config.publicUrl, timezone: config.timezone, siteTitle: config.organisation, now })));
  return app;
}
