import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { LOGO_PATH, LOGO_TYPES, type Organisation } from '../organisation.js';

/**
 * GET /organisation/logo: the logo file named in the config, so emails and
 * pages can show it from PUBLIC_URL. Read when asked (a replaced file shows
 * without a restart); 404 when none is configured.
 */
export function organisationRoutes(org: Organisation | undefined): FastifyPluginAsync {
  return async (app) => {
    app.get(LOGO_PATH, async (_req, reply) => {
      if (!org?.logoFile) return reply.code(404).send({ error: 'no logo configured' });
      let bytes: Buffer;
      try {
        bytes = await readFile(org.logoFile);
      } catch {
        return reply.code(404).send({ error: 'the configured logo file cannot be read' });
      }
      return reply
        .type(LOGO_TYPES[path.extname(org.logoFile).toLowerCase()] ?? 'application/octet-stream')
        .header('cache-control', 'public, max-age=86400')
        .header('x-content-type-options', 'nosniff')
        .send(bytes);
    });
  };
}
