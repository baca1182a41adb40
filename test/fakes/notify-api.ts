import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for GOV.UK Notify's API v2, as notifications-node-client
 * talks to it: every request carries `Authorization: Bearer <JWT>` signed
 * HS256 with the API key's secret, `iss` the service id, `iat` within 30
 * seconds. The API key is `<name>-<service id>-<secret>` (two UUIDs).
 *  - POST /v2/notifications/sms {phone_number, template_id, personalisation, reference}
 *    → 201 {id, reference, content: {body, from_number}, uri, template: {id, version, uri}}
 *  - GET /v2/template/:id → the template ({id, type: "sms", body: "((body))", …})
 * Errors as Notify sends them: {"errors": [{"error": "ValidationError", "message": …}], "status_code": 400}.
 */

export interface FakeText {
  id: string;
  to: string;
  body: string;
  reference?: string;
}

export interface NotifyFailOptions {
  error?: string;
  message?: string;
  /** Accept the text, then drop the connection without answering (the ambiguous failure). */
  afterEffect?: boolean;
}

export interface FakeNotifyApi {
  url: string;
  apiKey: string;
  templateId: string;
  texts: FakeText[];
  /** Requests refused for their Authorization header. */
  authFailures: number;
  failNext(status: number, opts?: NotifyFailOptions): void;
  close(): Promise<void>;
}

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

export async function startFakeNotifyApi(opts: { templateBody?: string } = {}): Promise<FakeNotifyApi> {
  const serviceId = randomUUID();
  const secret = randomUUID();
  const apiKey = `crier_test-${serviceId}-${secret}`;
  const templateId = randomUUID();
  const templateBody = opts.templateBody ?? '((body))';
  const texts: FakeText[] = [];
  const failures: Array<NotifyFailOptions & { status: number }> = [];
  let base = '';
  const api: FakeNotifyApi = {
    url: '',
    apiKey,
    templateId,
    texts,
    authFailures: 0,
    failNext(status, failOpts = {}) {
      failures.push({ status, ...failOpts });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const errorBody = (status: number, error: string, message: string) => ({ status, body: { errors: [{ error, message }], status_code: status } });

  /** Checks the JWT as Notify does; the reason when it is refused. */
  function authProblem(header: string | undefined): string | undefined {
    if (!header?.startsWith('Bearer ')) return 'Unauthorized: authentication token must be provided';
    const [h, p, s] = header.slice(7).split('.');
    if (!h || !p || !s) return 'Invalid token: signature, api token not found';
    try {
      const head = b64urlJson(h) as { alg?: string; typ?: string };
      const claims = b64urlJson(p) as { iss?: string; iat?: number };
      if (head.alg !== 'HS256' || head.typ !== 'JWT') return 'Invalid token: algorithm used is not HS256';
      const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
      const given = Buffer.from(s, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'Invalid token: signature, api token not found';
      if (claims.iss !== serviceId) return 'Invalid token: service not found';
      if (typeof claims.iat !== 'number' || Math.abs(Date.now() / 1000 - claims.iat) > 30) {
        return 'Error: Your system clock must be accurate to within 30 seconds';
      }
    } catch {
      return 'Invalid token: signature, api token not found';
    }
    return undefined;
  }

  function route(method: string, path: string, body: Record<string, unknown>): { status: number; body: unknown } {
    if (method === 'GET' && path === `/v2/template/${templateId}`) {
      const now = new Date().toISOString();
      return {
        status: 200,
        body: { id: templateId, name: 'Crier text', type: 'sms', created_at: now, updated_at: now, created_by: 'team@example.gov.uk', version: 1, body: templateBody, subject: null, letter_contact_block: null, postage: null },
      };
    }
    if (method === 'GET' && path.startsWith('/v2/template/')) return errorBody(404, 'NoResultFound', 'No result found');
    if (method === 'POST' && path === '/v2/notifications/sms') {
      if (body.template_id !== templateId) return errorBody(400, 'BadRequestError', 'Template not found');
      const personalisation = (body.personalisation ?? {}) as Record<string, unknown>;
      const placeholders = [...templateBody.matchAll(/\(\(([^)]+)\)\)/g)].map((m) => m[1] ?? '');
      const missing = placeholders.filter((name) => personalisation[name] === undefined);
      if (missing.length > 0) return errorBody(400, 'BadRequestError', `Missing personalisation: ${missing.join(', ')}`);
      const to = String(body.phone_number ?? '').replace(/[\s()-]/g, '');
      if (!/^(\+44|0044|0)7\d{9}$/.test(to)) return errorBody(400, 'ValidationError', 'phone_number Not a UK mobile number');
      const content = templateBody.replace(/\(\(([^)]+)\)\)/g, (_, name: string) => String(personalisation[name] ?? ''));
      const id = randomUUID();
      const reference = typeof body.reference === 'string' ? body.reference : undefined;
      texts.push({ id, to, body: content, reference });
      return {
        status: 201,
        body: {
          id,
          reference: reference ?? null,
          content: { body: content, from_number: 'GOVUK' },
          uri: `${base}/v2/notifications/${id}`,
          template: { id: templateId, version: 1, uri: `${base}/services/${serviceId}/templates/${templateId}` },
        },
      };
    }
    return errorBody(404, 'NoResultFound', 'No result found');
  }

  function send(res: ServerResponse, reply: { status: number; body: unknown }): void {
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply.body));
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const path = new URL(req.url ?? '/', base).pathname;
      let body: Record<string, unknown> = {};
      try {
        const raw = Buffer.concat(chunks).toString('utf8');
        if (raw) body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return send(res, errorBody(400, 'BadRequestError', 'Invalid JSON supplied in POST data'));
      }
      const problem = authProblem(req.headers.authorization);
      if (problem) {
        api.authFailures += 1;
        return send(res, errorBody(403, 'AuthError', problem));
      }
      const failure = method === 'POST' ? failures.shift() : undefined;
      if (failure) {
        if (failure.afterEffect) {
          route(method, path, body);
          return void req.socket.destroy();
        }
        const error = failure.error ?? (failure.status === 429 ? 'RateLimitError' : failure.status === 403 ? 'AuthError' : failure.status >= 500 ? 'Exception' : 'ValidationError');
        const message =
          failure.message ??
          (failure.status === 429 ? 'Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds' : failure.status === 403 ? 'Invalid token: API key revoked' : failure.status >= 500 ? 'Internal server error' : 'phone_number Not a UK mobile number');
        return send(res, errorBody(failure.status, error, message));
      }
      send(res, route(method, path, body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.url = base;
  return api;
}

/** The environment that points the SMS channel at a fake Notify. */
export function notifyEnv(fake: FakeNotifyApi): Record<string, string> {
  return { NOTIFY_BASE_URL: fake.url, NOTIFY_API_KEY: fake.apiKey, NOTIFY_SMS_TEMPLATE_ID: fake.templateId };
}
