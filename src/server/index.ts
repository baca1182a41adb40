import Fastify from 'fastify';
import { pressRoutes } from '../../channels/press/routes.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RedisHandle } from '../redis/connection.js';
import { healthRoutes } from './health.js';
import { requestForLog } from './request-log.js';
import { organisationRoutes } from './organisation-routes.js';
import { unsubscribeRoutes } from './unsubscribe.js';

/** The HTTP server: health, and the public endpoints (unsubscribe, the press room and feeds, the organisation's logo). */
export async function buildServer(config: Config, handle: RedisHandle, log: Logger, now: () => Date = () => new Date()) {
  // Request logs never show an unsubscribe token (/u/<token> → /u/…).
  const app = Fastify({ loggerInstance: log.child({ part: 'http' }, { serializers: { req: requestForLog } }) });
  await app.register(healthRoutes({ redis: handle.redis, prefix: handle.prefix }));
  await app.register(unsubscribeRoutes({ redis: handle.redis, prefix: handle.prefix, secret: config.secret, site: { org: config.org, publicUrl: config.publicUrl } }));
  await app.register(pressRoutes({ redis: handle.redis, prefix: handle.prefix, publicUrl: config.publicUrl, timezone: config.timezone, siteTitle: config.organisation, org: config.org, root: true, now }));
  await app.register(organisationRoutes(config.org));
  return app;
}
