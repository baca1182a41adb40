import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pressRoutes } from '../../channels/press/routes.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RedisHandle } from '../redis/connection.js';
import { healthRoutes } from './health.js';
import { requestForLog } from './request-log.js';
import { organisationRoutes } from './organisation-routes.js';
import { unsubscribeRoutes } from './unsubscribe.js';
import { publicScope } from './auth/guard.js';
import { registerWeb } from './web.js';

/** The HTTP server: health, and the public endpoints (unsubscribe, the press room and feeds, the organisation's logo). */
export async function buildServer(config: Config, handle: RedisHandle, log: Logger, now: () => Date = () => new Date()) {
  // Request logs never show an unsubscribe token (/u/<token> → /u/…). Unknown body fields are refused,
  // not silently dropped; every mistake in a body is reported at once.
  const app = Fastify({
    loggerInstance: log.child({ part: 'http' }, { serializers: { req: requestForLog } }) as FastifyBaseLogger,
    ajv: { customOptions: { removeAdditional: false, allErrors: true } },
  });
  // Accounts, API, dashboard, calendar feed: first, so the route guard covers every route. Everything is private unless marked public.
  await registerWeb(app, config, handle, log, now);
  await app.register(publicScope(healthRoutes({ redis: handle.redis, prefix: handle.prefix })));
  await app.register(publicScope(unsubscribeRoutes({ redis: handle.redis, prefix: handle.prefix, secret: config.secret, site: { org: config.org, publicUrl: config.publicUrl } })));
  await app.register(publicScope(pressRoutes({ redis: handle.redis, prefix: handle.prefix, publicUrl: config.publicUrl, timezone: config.timezone, siteTitle: config.organisation, org: config.org, root: true, now })));
  await app.register(publicScope(organisationRoutes(config.org)));
  return app;
}
