import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { parseLimit, parseSince } from '../../cli/audit.js';
import { readAudit } from '../../domain/audit.js';
import type { ServerDeps } from '../deps.js';
import { audienceApi } from './audience.js';
import { campaignApi } from './campaigns.js';
import { errorSchema } from './schemas.js';

/** The HTTP API under /api/v1, described at /openapi.json from the routes' own schemas. */

function auditApi(deps: ServerDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { since?: string; limit?: string } }>('/audit', {
      schema: {
        tags: ['audit'],
        summary: 'The audit log, oldest first (as `crier audit --json`)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { since: { type: 'string', description: '"YYYY-MM-DD", "YYYY-MM-DD HH:mm" (local) or ISO 8601' }, limit: { type: 'string', pattern: '^[0-9]+$' } },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                at: { type: 'string', format: 'date-time' },
                actor: { type: 'string' },
                action: { type: 'string' },
                subject: { type: 'string' },
                detail: { type: 'object', additionalProperties: true },
              },
            },
          },
          400: errorSchema,
          401: errorSchema,
        },
      },
    }, async (req) => {
      const since = req.query.since !== undefined ? parseSince(req.query.since, deps.config.timezone) : undefined;
      const entries = await readAudit(deps.handle.redis, deps.handle.prefix, { since, limit: parseLimit(req.query.limit) });
      return entries.map((e) => ({ id: e.id, at: e.at.toISOString(), actor: e.actor, action: e.action, subject: e.subject, detail: e.detail }));
    });
  };
}

/** Registered before any route so every route's schema is collected. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    hideUntagged: true,
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Crier API', version: '1', description: 'Campaigns, audience and audit log. Send `Authorization: Bearer <token>` (crier tokens create EMAIL). Errors are `{code, message}`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
}

export function apiRoutes(deps: ServerDeps): FastifyPluginAsync {
  return async (app) => {
    await app.register(campaignApi(deps), { prefix: '/api/v1' });
    await app.register(audienceApi(deps), { prefix: '/api/v1' });
    await app.register(auditApi(deps), { prefix: '/api/v1' });
    app.get('/openapi.json', async () => app.swagger());
  };
}
