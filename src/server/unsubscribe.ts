import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import { appendAudit } from '../domain/audit.js';
import { unsubscribe } from '../domain/audience.js';
import { verifyUnsubscribeToken } from '../domain/unsubscribe-token.js';
import type { Organisation } from '../organisation.js';
import { escapeHtml, page as basePage } from './html.js';

/**
 * Public unsubscribe endpoints. GET shows a confirmation page with a button
 * (mail scanners follow links, so GET never unsubscribes); POST unsubscribes at
 * once — RFC 8058 one-click from the mail client, or the page's button.
 */
export function unsubscribeRoutes(deps: { redis: Redis; prefix: string; secret: string; site?: { org?: Organisation; publicUrl: string } }): FastifyPluginAsync {
  const page = (title: string, body: string) => basePage(title, body, deps.site);
  return async (app) => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.get<{ Params: { token: string } }>('/u/:token', async (req, reply) => {
      const id = verifyUnsubscribeToken(deps.secret, req.params.token);
      if (!id) return reply.code(400).type('text/html').send(page('Link not valid', '<p>This unsubscribe link is not valid. Please use the link from your most recent email.</p>'));
      const action = `/u/${encodeURIComponent(req.params.token)}`;
      return reply
        .type('text/html')
        .send(page('Unsubscribe', `<p>Stop receiving emails from us?</p><form method="post" action="${escapeHtml(action)}"><button type="submit">Unsubscribe</button></form>`));
    });
    app.post<{ Params: { token: string } }>('/u/:token', async (req, reply) => {
      const id = verifyUnsubscribeToken(deps.secret, req.params.token);
      if (!id) return reply.code(400).type('text/html').send(page('Link not valid', '<p>This unsubscribe link is not valid.</p>'));
      const oneClick = typeof req.body === 'string' && req.body.includes('List-Unsubscribe=One-Click');
      const done = await unsubscribe(deps.redis, deps.prefix, id, oneClick ? 'one-click' : 'link');
      if (done) await appendAudit(deps.redis, deps.prefix, { actor: 'public', action: 'subscriber.unsubscribe', subject: id, detail: { via: oneClick ? 'one-click' : 'link' } });
      return reply.type('text/html').send(page('Unsubscribed', '<p>You are unsubscribed and will not receive further emails from us.</p>'));
    });
  };
}
