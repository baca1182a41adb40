import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for Plausible's Stats API v2: POST /api/v2/query with
 * `Authorization: Bearer <key>` and a JSON query {site_id, date_range,
 * metrics, dimensions}; answers {results: [{metrics, dimensions}], meta,
 * query} with metrics in the order asked, errors as {error} with 400/401/402/429
 * (and, like Plausible, no rate-limit headers).
 * Traffic is the same every day: `perDay` (scaled by `scale`), summed over the range.
 */

export interface PlausibleDay {
  visitors: number;
  visits: number;
  pageviews: number;
  bounce_rate: number;
  visit_duration: number;
  devices: Record<string, number>;
}

export interface FakePlausible {
  url: string;
  apiKey: string;
  siteId: string;
  perDay: PlausibleDay;
  queries: Array<Record<string, unknown>>;
  failNext(status: number, opts?: { error?: string; garbage?: boolean }): void;
  close(): Promise<void>;
}

const DAY = 86_400_000;

export async function startFakePlausible(opts: { apiKey?: string; siteId?: string } = {}): Promise<FakePlausible> {
  const apiKey = opts.apiKey ?? 'plausible-test-key';
  const siteId = opts.siteId ?? 'pcc.example.org';
  const failures: Array<{ status: number; error?: string; garbage?: boolean }> = [];
  const fake: FakePlausible = {
    url: '',
    apiKey,
    siteId,
    perDay: { visitors: 80, visits: 100, pageviews: 250, bounce_rate: 40, visit_duration: 95, devices: { Desktop: 50, Mobile: 40, Tablet: 10 } },
    queries: [],
    failNext: (status, o = {}) => void failures.push({ status, ...o }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const reply = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/api/v2/query') return reply(res, 404, { error: 'Not found' });
      const failure = failures.shift();
      if (failure?.garbage) {
        res.writeHead(failure.status, { 'content-type': 'application/json' });
        return void res.end('{"results": [{"metrics": [80, 100');
      }
      if (failure) return reply(res, failure.status, { error: failure.error ?? (failure.status === 429 ? 'Too many API requests. Your API key is limited to 600 requests per hour.' : 'Internal server error') });
      if (req.headers.authorization !== `Bearer ${apiKey}`) return reply(res, 401, { error: 'Invalid API key or site ID. Please make sure you\'re using a valid API key with access to the site you\'ve requested.' });
      let q: { site_id?: unknown; date_range?: unknown; metrics?: unknown; dimensions?: unknown };
      try {
        q = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof q;
      } catch {
        return reply(res, 400, { error: 'Invalid JSON' });
      }
      fake.queries.push(q as Record<string, unknown>);
      if (q.site_id !== siteId) return reply(res, 401, { error: 'Invalid API key or site ID.' });
      const range = q.date_range;
      if (!Array.isArray(range) || range.length !== 2) return reply(res, 400, { error: '#/date_range: Invalid date range' });
      const days = Math.round((Date.parse(String(range[1])) - Date.parse(String(range[0]))) / DAY) + 1;
      if (!(days > 0)) return reply(res, 400, { error: '#/date_range: Invalid date range' });
      const metrics = Array.isArray(q.metrics) ? q.metrics.map(String) : [];
      const known = ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration'];
      const bad = metrics.find((m) => !known.includes(m));
      if (bad || metrics.length === 0) return reply(res, 400, { error: `#/metrics/0: Invalid metric "${bad ?? ''}"` });
      const d = fake.perDay;
      const value = (m: string, share = 1) =>
        m === 'bounce_rate' ? d.bounce_rate : m === 'visit_duration' ? d.visit_duration : Math.round(days * share * (d[m as 'visitors' | 'visits' | 'pageviews'] as number));
      const dims = Array.isArray(q.dimensions) ? q.dimensions.map(String) : [];
      let results: Array<{ metrics: number[]; dimensions: string[] }>;
      if (dims.length === 0) results = [{ metrics: metrics.map((m) => value(m)), dimensions: [] }];
      else if (dims.length === 1 && dims[0] === 'visit:device') {
        const total = Object.values(d.devices).reduce((a, b) => a + b, 0);
        results = Object.entries(d.devices).map(([label, n]) => ({ dimensions: [label], metrics: metrics.map((m) => value(m, n / total)) }));
      } else return reply(res, 400, { error: `#/dimensions/0: Invalid dimension "${dims[0]}"` });
      reply(res, 200, { results, meta: {}, query: { site_id: siteId, metrics, date_range: [`${range[0]}T00:00:00+00:00`, `${range[1]}T23:59:59+00:00`], filters: [], dimensions: dims } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
