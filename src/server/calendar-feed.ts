import type { FastifyPluginAsync } from 'fastify';
import { currentCalendarSecret, renderCalendar } from '../domain/calendar-feed.js';
import { sameSecret } from '../domain/accounts.js';
import { listCampaigns } from '../domain/campaigns.js';
import type { ServerDeps } from './deps.js';

/** GET /calendar/<secret>.ics (public: the secret is the key). A wrong or rotated secret is a plain 404. */
export function calendarFeedRoutes(deps: ServerDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { file: string } }>('/calendar/:file', { config: { public: true } }, async (req, reply) => {
      const m = /^([A-Za-z0-9_-]{16,64})\.ics$/.exec(req.params.file);
      const secret = m ? await currentCalendarSecret(deps.handle.redis, deps.handle.prefix) : null;
      if (!m || !secret || !sameSecret(m[1]!, secret)) return reply.code(404).type('text/plain').send('not found\n');
      const host = new URL(deps.config.publicUrl).hostname || 'crier';
      const body = renderCalendar(await listCampaigns(deps.handle.redis, deps.handle.prefix, 2000), {
        name: deps.config.organisation ? `${deps.config.organisation} campaigns` : 'Crier campaigns',
        publicUrl: deps.config.publicUrl,
        host,
      });
      return reply.type('text/calendar; charset=utf-8').header('cache-control', 'private, max-age=300').header('x-content-type-options', 'nosniff').send(body);
    });
  };
}
