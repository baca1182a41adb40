import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { roleAtLeast } from '../../domain/accounts.js';

/**
 * Rendering a dashboard page: the eta template, inside the layout, with what
 * every page needs (the account, the CSRF token for forms and htmx, the nav
 * for the account's role).
 */

/** src/server/views, found from here whether running from src/ (tests) or dist/src/ (built). */
export function viewsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'src', 'server', 'views');
    if (existsSync(path.join(candidate, 'layout.eta'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('dashboard views not found (src/server/views): is the package complete?');
}

export function navFor(req: FastifyRequest): Array<[string, string]> {
  const role = req.account?.role;
  if (!role) return [];
  const nav: Array<[string, string]> = [
    ['/dashboard/calendar', 'Calendar'],
    ['/dashboard/campaigns', 'Campaigns'],
  ];
  if (roleAtLeast(role, 'editor')) nav.push(['/dashboard/compose', 'New campaign']);
  nav.push(['/dashboard/audience', 'Audience'], ['/dashboard/measures', 'Measures']);
  if (roleAtLeast(role, 'admin')) nav.push(['/queues', 'Queues']);
  return nav;
}

export async function render(req: FastifyRequest, reply: FastifyReply, template: string, title: string, data: Record<string, unknown> = {}, status = 200): Promise<FastifyReply> {
  const csrf = reply.generateCsrf();
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    // Never inside another site's frame (no clickjacking an Approve button); no URLs leak to other sites.
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "frame-ancestors 'none'")
    .header('referrer-policy', 'same-origin')
    .view(template, { title, account: req.account, csrf, nav: navFor(req), path: req.url.split('?')[0] ?? '/', ...data });
}

/** A fragment for htmx (no layout); still gets the CSRF token for any form in it. */
export async function fragment(req: FastifyRequest, reply: FastifyReply, template: string, data: Record<string, unknown> = {}, status = 200): Promise<FastifyReply> {
  return reply.code(status).header('cache-control', 'no-store').view(template, { account: req.account, csrf: reply.generateCsrf(), ...data });
}
