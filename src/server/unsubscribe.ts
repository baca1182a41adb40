import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import { appendAudit } from '../domain/audit.js';
import { unsubscribe, unsubscribeFromList } from '../domain/audience.js';
import { verifyUnsubscribeToken } from '../domain/unsubscribe-token.js';
import { deriveKey } from '../keys.js';
import type { Organisation } from '../organisation.js';
import { escapeHtml, page as basePage } from './html.js';

/**
 * Public unsubscribe endpoints. GET shows a confirmation page (mail scanners
 * follow links, so GET never unsubscribes) whose first button unsubscribes
 * from the list the message came from and whose second, "from everything",
 * from every list for good. POST unsubscribes at once: RFC 8058 one-click from
 * the mail client (urlencoded or multipart/form-data, or no body at all) takes
 * the person off that list; the page's second button sends `scope=all`.
 */

const BODY_LIMIT = 16 * 1024;

/** `scope=all` in an urlencoded or multipart body: unsubscribe from everything. */
function wantsEverything(body: string, contentType: string): boolean {
  if (/^multipart\/form-data/i.test(contentType)) return /name="scope"\r?\n(?:[^\r\n]+\r?\n)*\r?\nall\r?\n/i.test(body);
  return new URLSearchParams(body).get('scope') === 'all';
}

function isOneClick(body: string, contentType: string): boolean {
  if (/^multipart\/form-data/i.test(contentType)) return /name="List-Unsubscribe"\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n/i.test(body);
  return new URLSearchParams(body).get('List-Unsubscribe') === 'One-Click';
}

function everythingForm(action: string): string {
  return `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="scope" value="all"><button type="submit">Unsubscribe from everything</button></form>`;
}

export function unsubscribeRoutes(deps: { redis: Redis; prefix: string; secret: string; site?: { org?: Organisation; publicUrl: string } }): FastifyPluginAsync {
  const page = (title: string, body: string) => basePage(title, body, deps.site);
  return async (app) => {
    // This scope (the /u routes only) takes any body as text: mail clients send
    // urlencoded or multipart one-click posts, some send none, some no type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

    app.get<{ Params: { token: string } }>('/u/:token', async (req, reply) => {
      const target = verifyUnsubscribeToken(deps.secret, req.params.token);
      if (!target) return reply.code(400).type('text/html').send(page('Link not valid', '<p>This unsubscribe link is not valid. Please use the link from your most recent email.</p>'));
      const action = `/u/${encodeURIComponent(req.params.token)}`;
      if (!target.list) {
        return reply
          .type('text/html')
          .send(page('Unsubscribe', `<p>Stop receiving emails from us?</p><form method="post" action="${escapeHtml(action)}"><button type="submit">Unsubscribe</button></form>`));
      }
      const list = escapeHtml(target.list);
      return reply
        .type('text/html')
        .send(
          page(
            'Unsubscribe',
            `<p>Stop receiving emails from the <strong>${list}</strong> list?</p><form method="post" action="${escapeHtml(action)}"><button type="submit">Unsubscribe from ${list}</button></form>` +
              `<p>Or stop every email from us, on every list:</p>${everythingForm(action)}`,
          ),
        );
    });

    app.post<{ Params: { token: string } }>('/u/:token', async (req, reply) => {
      const target = verifyUnsubscribeToken(deps.secret, req.params.token);
      if (!target) return reply.code(400).type('text/html').send(page('Link not valid', '<p>This unsubscribe link is not valid.</p>'));
      const body = typeof req.body === 'string' ? req.body : '';
      const type = req.headers['content-type'] ?? '';
      const via = isOneClick(body, type) ? 'one-click' : 'link';
      const everything = !target.list || wantsEverything(body, type);
      const id = target.subscriberId;
      const audit = (detail: Record<string, string>) => appendAudit(deps.redis, deps.prefix, { actor: 'public', action: 'subscriber.unsubscribe', subject: id, detail: { via, ...detail } });
      if (everything) {
        if (await unsubscribe(deps.redis, deps.prefix, id, via, { suppressionKey: deriveKey(deps.secret, 'suppression') })) await audit({ scope: 'all' });
        return reply.type('text/html').send(page('Unsubscribed', '<p>You are unsubscribed from every list and will not receive further emails from us.</p>'));
      }
      const list = target.list!;
      if (await unsubscribeFromList(deps.redis, deps.prefix, id, list, via)) await audit({ scope: 'list', list });
      const action = `/u/${encodeURIComponent(req.params.token)}`;
      return reply
        .type('text/html')
        .send(
          page(
            'Unsubscribed',
            `<p>You are unsubscribed from the <strong>${escapeHtml(list)}</strong> list and will not receive its emails any more.</p><p>To stop every email from us, on every list:</p>${everythingForm(action)}`,
          ),
        );
    });
  };
}
