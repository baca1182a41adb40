import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import { pausedChannels } from '../domain/channel-pause.js';

/**
 * GET /healthz: 200 when Redis answers, 503 at once while it is away (a
 * command would otherwise wait for the reconnection). Channels paused by a
 * fault Crier cannot fix itself (an SMTP login refused) are listed: the
 * process is healthy, but someone has to act.
 */
export function healthRoutes(deps: { redis: Redis; prefix: string }): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async (_req, reply) => {
      if (deps.redis.status !== 'ready') return reply.code(503).send({ ok: false, redis: 'unreachable' });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), 2000);
      });
      try {
        const paused = await Promise.race([pausedChannels(deps.redis, deps.prefix), timeout]);
        return { ok: true, ...(Object.keys(paused).length > 0 ? { paused } : {}) };
      } catch {
        return reply.code(503).send({ ok: false, redis: 'unreachable' });
      } finally {
        clearTimeout(timer);
      }
    });
  };
}
