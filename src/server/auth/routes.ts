import type { FastifyPluginAsync } from 'fastify';
import { checkPassword, endSession, MIN_PASSWORD_LENGTH, setPassword, startSession } from '../../domain/accounts.js';
import { UserError } from '../../errors.js';
import type { ServerDeps } from '../deps.js';
import { render } from '../dashboard/render.js';
import { LOGIN_PATH, PASSWORD_PATH } from './guard.js';

/** Sign in (rate-limited per address and account), sign out (ends the session in Redis too), and the first-login password change. */

export interface LoginLimit {
  max: number;
  /** Milliseconds. */
  timeWindow: number;
}

/** Only a path on this site: never an absolute or protocol-relative URL (no open redirect). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) && !next.startsWith(LOGIN_PATH) ? next : '/dashboard';
}

export function authRoutes(deps: ServerDeps, limit: LoginLimit): FastifyPluginAsync {
  const { handle } = deps;
  return async (app) => {
    app.get<{ Querystring: { next?: string; out?: string } }>(LOGIN_PATH, { config: { public: true } }, async (req, reply) =>
      render(req, reply, 'login', 'Sign in', { next: safeNext(req.query.next), signedOut: req.query.out === '1', email: '' }),
    );

    app.post<{ Body: { email?: string; password?: string; next?: string } }>(LOGIN_PATH, {
      config: {
        public: true,
        csrf: true,
        rateLimit: {
          max: limit.max,
          timeWindow: limit.timeWindow,
          hook: 'preHandler',
          // Per address and account: one person mistyping does not lock out the office, a guesser is slowed on every account.
          keyGenerator: (req) => `login:${req.ip}:${String((req.body as { email?: unknown } | undefined)?.email ?? '').trim().toLowerCase()}`,
        },
      },
    }, async (req, reply) => {
      const email = String(req.body?.email ?? '').trim();
      const account = email ? await checkPassword(handle.redis, handle.prefix, email, String(req.body?.password ?? '')) : null;
      if (!account) {
        return render(req, reply, 'login', 'Sign in', { next: safeNext(req.body?.next), email, error: 'The email or password is not right.' }, 401);
      }
      const old = req.session.get('sid');
      if (typeof old === 'string') await endSession(handle.redis, handle.prefix, old);
      req.session.set('sid', await startSession(handle.redis, handle.prefix, account.email));
      return reply.redirect(account.mustChangePassword ? PASSWORD_PATH : safeNext(req.body?.next), 303);
    });

    app.post('/logout', async (req, reply) => {
      const sid = req.session.get('sid');
      if (typeof sid === 'string') await endSession(handle.redis, handle.prefix, sid);
      req.session.delete();
      return reply.redirect(`${LOGIN_PATH}?out=1`, 303);
    });

    app.get(PASSWORD_PATH, async (req, reply) => render(req, reply, 'password', 'Choose a password', { min: MIN_PASSWORD_LENGTH }));

    app.post<{ Body: { password?: string; confirm?: string } }>(PASSWORD_PATH, async (req, reply) => {
      const password = String(req.body?.password ?? '');
      const again = String(req.body?.confirm ?? '');
      try {
        if (password !== again) throw new UserError('the two passwords are not the same', 'CRIER_ERR_INPUT', { field: 'confirm' });
        await setPassword(handle.redis, handle.prefix, req.account!.email, password);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        return render(req, reply, 'password', 'Choose a password', { min: MIN_PASSWORD_LENGTH, error: err.plain }, 400);
      }
      return reply.redirect('/dashboard', 303);
    });
  };
}
