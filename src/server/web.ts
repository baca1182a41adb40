import { createRequire } from 'node:module';
import path from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import fastifyFormbody from '@fastify/formbody';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import fastifyView from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { allQueueNames } from '../../workers/index.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RedisHandle } from '../redis/connection.js';
import { Scheduler } from '../scheduler.js';
import { apiRoutes, registerOpenApi } from './api/index.js';
import { registerErrorHandler } from './api/errors.js';
import { registerAuth, roleScope } from './auth/guard.js';
import { authRoutes } from './auth/routes.js';
import { calendarFeedRoutes } from './calendar-feed.js';
import { dashboardAudience } from './dashboard/audience.js';
import { dashboardCampaigns } from './dashboard/campaigns.js';
import { digestPreviewApi, measuresApi, measuresPage } from './measures-routes.js';
import { viewsDir } from './dashboard/render.js';
import type { ServerDeps } from './deps.js';

/**
 * The team's side of the server: accounts and the route guard, the API under
 * /api/v1 with /openapi.json, the dashboard under /dashboard, the calendar
 * feed and Bull Board (admin). Registered first, so the guard and the OpenAPI
 * collector see every route added after.
 */

function dashboard(deps: ServerDeps): FastifyPluginAsync {
  const { config } = deps;
  return async (app) => {
    const views = viewsDir();
    await app.register(fastifyFormbody);
    await app.register(fastifyMultipart);
    await app.register(fastifyView, { engine: { eta: new Eta({ views, cache: true, autoEscape: true }) }, templates: views, viewExt: 'eta' });
    const htmx = path.dirname(createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'));
    // Assets are public (the login page needs them); htmx comes from node_modules, never a CDN.
    app.addHook('onRoute', (route) => {
      if (route.url.startsWith('/static/')) route.config = { ...(route.config ?? {}), public: true };
    });
    await app.register(fastifyStatic, { root: [path.join(views, 'static'), htmx], prefix: '/static/', allowedPath: (p) => p === '/dashboard.css' || p === '/htmx.min.js', maxAge: 3600_000 });
    await app.register(authRoutes(deps, { max: config.dashboard.login_attempts, timeWindow: config.dashboard.login_window_minutes * 60_000 }));
    await app.register(dashboardCampaigns(deps));
    await app.register(dashboardAudience(deps));
    await app.register(measuresPage(deps));
  };
}

/** Queue health, read-only: Crier's own commands retry and cancel, so nothing here changes a queue. */
function bullBoard(deps: ServerDeps): FastifyPluginAsync {
  return async (app) => {
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath('/queues');
    createBullBoard({
      queues: allQueueNames().map((name) => new BullMQAdapter(deps.scheduler.queue(name), { readOnlyMode: true })),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'Crier queues' } },
    });
    // Its page asks Google Fonts for IBM Plex: nothing of ours calls a third party, so the link goes (system fonts instead).
    app.addHook('onSend', async (_req, reply, payload) => {
      if (typeof payload !== 'string' || !String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
      return payload.replace(/<link[^>]+fonts\.(googleapis|gstatic)\.com[^>]*>/g, '');
    });
    await app.register(serverAdapter.registerPlugin(), { prefix: '/queues' });
  };
}

export async function registerWeb(app: FastifyInstance, config: Config, handle: RedisHandle, log: Logger, now: () => Date): Promise<void> {
  const scheduler = new Scheduler(config, handle, log.child({ part: 'api' }), now);
  app.addHook('onClose', async () => scheduler.close());
  const deps: ServerDeps = { config, handle, log, scheduler, now };
  registerErrorHandler(app);
  await registerAuth(app, { redis: handle.redis, prefix: handle.prefix, secret: config.secret, publicUrl: config.publicUrl });
  await registerOpenApi(app);
  await app.register(apiRoutes(deps));
  await app.register(measuresApi(deps), { prefix: '/api/v1' });
  await app.register(digestPreviewApi(deps), { prefix: '/api/v1' });
  await app.register(dashboard(deps));
  await app.register(calendarFeedRoutes(deps));
  await app.register(roleScope('admin', bullBoard(deps)));
}
