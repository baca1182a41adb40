import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySecureSession from '@fastify/secure-session';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { accountForToken, roleAtLeast, sessionAccount, SESSION_TTL_SECONDS, type Account, type Role } from '../../domain/accounts.js';
import { deriveKey } from '../../keys.js';

/**
 * Who is asking, and may they. Every route needs a signed-in account unless
 * it is marked public (`config: { public: true }`, or registered inside
 * `publicScope`); `config.role` raises the bar above viewer. The check runs in
 * the root onRequest hook, so a route added anywhere later is private by
 * default. Unsafe methods from a browser session must carry the CSRF token
 * (form field `_csrf` or header `x-csrf-token`); API tokens are not cookies,
 * so bearer requests need none.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without signing in (unsubscribe, press, calendar feed, login, assets, health). */
    public?: boolean;
    /** A public route whose unsafe methods still need the CSRF token (the login form). */
    csrf?: boolean;
    /** The least role that may use the route (default viewer). */
    role?: Role;
  }
  interface FastifyInstance {
    /** Every route registered after the guard (method and URL pattern): tests prove each private one refuses. */
    routeTable(): ReadonlyArray<{ method: string; url: string }>;
  }
  interface FastifyRequest {
    account: Account | null;
    authVia: 'session' | 'token' | null;
  }
}

declare module '@fastify/secure-session' {
  interface SessionData {
    sid: string;
    flash: string;
  }
}

export interface AuthDeps {
  redis: Redis;
  prefix: string;
  secret: string;
  publicUrl: string;
}

export const SESSION_COOKIE = 'crier_session';
export const LOGIN_PATH = '/login';
export const PASSWORD_PATH = '/dashboard/password';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Registers routes made by `plugin` as public: press feeds and pages, unsubscribe, the calendar feed. */
export function publicScope(plugin: FastifyPluginAsync): FastifyPluginAsync {
  return withRouteConfig({ public: true }, plugin);
}

/** Registers routes made by `plugin` with a minimum role (Bull Board: admin). */
export function roleScope(role: Role, plugin: FastifyPluginAsync): FastifyPluginAsync {
  return withRouteConfig({ role }, plugin);
}

function withRouteConfig(extra: { public?: boolean; role?: Role }, plugin: FastifyPluginAsync): FastifyPluginAsync {
  return async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), ...extra };
    });
    await scope.register(plugin);
  };
}

function wantsHtml(req: FastifyRequest): boolean {
  return !req.url.startsWith('/api/') && req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

async function deny(req: FastifyRequest, reply: FastifyReply, status: 401 | 403, message: string): Promise<void> {
  if (status === 401 && wantsHtml(req) && !req.headers['hx-request']) {
    await reply.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(req.url)}`, 303);
    return;
  }
  // htmx follows HX-Redirect instead of swapping an error into the page.
  if (status === 401 && req.headers['hx-request']) reply.header('hx-redirect', LOGIN_PATH);
  await reply.code(status).send({ code: status === 401 ? 'CRIER_ERR_UNAUTHENTICATED' : 'CRIER_ERR_FORBIDDEN', message });
}

async function identify(deps: AuthDeps, req: FastifyRequest): Promise<void> {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    req.account = m ? await accountForToken(deps.redis, deps.prefix, m[1]!) : null;
    req.authVia = req.account ? 'token' : null;
    return;
  }
  const sid = req.session?.get('sid');
  req.account = typeof sid === 'string' ? await sessionAccount(deps.redis, deps.prefix, sid) : null;
  req.authVia = req.account ? 'session' : null;
  // The cookie's own expiry slides with the Redis session's, so an active user stays signed in.
  if (req.account) req.session.touch();
}

export async function registerAuth(app: FastifyInstance, deps: AuthDeps): Promise<void> {
  const routes: Array<{ method: string; url: string }> = [];
  app.decorate('routeTable', () => routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  app.decorateRequest('account', null);
  app.decorateRequest('authVia', null);
  await app.register(fastifyCookie);
  await app.register(fastifySecureSession, {
    key: deriveKey(deps.secret, 'session'),
    cookieName: SESSION_COOKIE,
    expiry: SESSION_TTL_SECONDS,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: deps.publicUrl.startsWith('https:') },
  });
  await app.register(fastifyCsrf, { sessionPlugin: '@fastify/secure-session' });
  // Only routes that ask (config.rateLimit: the login form) are limited; counts live in Redis so every server process shares them.
  await app.register(fastifyRateLimit, { global: false, redis: deps.redis, nameSpace: `${deps.prefix}:ratelimit:` });

  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    if (config.public) return;
    if (req.routeOptions.url === undefined) return; // no such route: the 404 handler answers
    await identify(deps, req);
    const account = req.account;
    if (!account) return deny(req, reply, 401, 'sign in first, or send "Authorization: Bearer <token>" (crier tokens create EMAIL)');
    if (account.mustChangePassword && req.authVia === 'session' && req.routeOptions.url !== PASSWORD_PATH) {
      if (wantsHtml(req)) return reply.redirect(PASSWORD_PATH, 303);
      return deny(req, reply, 403, 'choose a new password first (the one from `crier users add` works once)');
    }
    const needed = config.role ?? 'viewer';
    if (!roleAtLeast(account.role, needed)) return deny(req, reply, 403, `this needs the ${needed} role; ${account.email} is ${account.role}`);
  });

  app.addHook('preHandler', (req, reply, done) => {
    const config = req.routeOptions.config;
    if (SAFE_METHODS.has(req.method) || req.authVia === 'token') return done();
    if (config.public && !config.csrf) return done();
    if (req.routeOptions.url === undefined) return done();
    app.csrfProtection(req, reply, done);
  });
}
