import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DependencyError, UserError, type ErrorCode } from '../../errors.js';
import { page, escapeHtml } from '../html.js';
import { errorList } from './campaign-body.js';

/**
 * Every error leaves the server as `{code, message}` (plus `errors` listing
 * each mistake in a body), or as a short HTML page for a browser navigating
 * the dashboard. A user's mistake never shows a stack trace.
 */

const STATUS: Record<ErrorCode, number> = {
  CRIER_ERR_CONFIG: 400,
  CRIER_ERR_INPUT: 400,
  CRIER_ERR_NOT_FOUND: 404,
  CRIER_ERR_STATE: 409,
  CRIER_ERR_FORBIDDEN: 403,
  CRIER_ERR_REDIS_MISSING: 503,
  CRIER_ERR_DEPENDENCY: 503,
};

export interface ErrorBody {
  code: string;
  message: string;
  errors?: Array<{ field?: string; message: string }>;
}

export function errorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof UserError) {
    return { status: STATUS[err.code] ?? 400, body: { code: err.code, message: err.message, ...(err.more.length || err.where.field ? { errors: errorList(err) } : {}) } };
  }
  if (err instanceof DependencyError) return { status: 503, body: { code: err.code, message: err.message } };
  const e = err as FastifyError;
  if (e.validation) {
    const field = (v: { instancePath?: string; params?: { missingProperty?: string } }) =>
      [e.validationContext, ...(v.instancePath ?? '').split('/').filter(Boolean), v.params?.missingProperty].filter(Boolean).join('.');
    const allowed = (v: { params?: { allowedValues?: unknown } }) => (Array.isArray(v.params?.allowedValues) ? `: ${v.params.allowedValues.join(', ')}` : '');
    const errors = e.validation.map((v) => ({ field: field(v), message: `${v.message ?? 'invalid'}${allowed(v)}` }));
    return { status: 400, body: { code: 'CRIER_ERR_INPUT', message: errors.map((x) => `${x.field}: ${x.message}`).join('\n'), errors } };
  }
  if (typeof e.code === 'string' && e.code.startsWith('FST_CSRF')) {
    return { status: 403, body: { code: 'CRIER_ERR_CSRF', message: 'missing or invalid CSRF token: reload the page and try again' } };
  }
  if (e.statusCode === 429) return { status: 429, body: { code: 'CRIER_ERR_RATE_LIMITED', message: e.message } };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { code: 'CRIER_ERR_INPUT', message: e.message } };
  }
  return { status: 500, body: { code: 'CRIER_ERR_INTERNAL', message: 'internal error (see the server log)' } };
}

function wantsPage(req: FastifyRequest): boolean {
  return !req.url.startsWith('/api/') && !req.headers['hx-request'] && (req.headers.accept ?? '').includes('text/html');
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler(async (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = errorBody(err);
    if (status >= 500) req.log.error({ err }, 'request failed');
    reply.code(status);
    if (wantsPage(req)) {
      return reply.type('text/html').send(page(status === 404 ? 'Not found' : 'Something went wrong', `<p>${escapeHtml(body.message)}</p><p><a href="/dashboard">Back to the dashboard</a></p>`));
    }
    return reply.send(body);
  });
}
