import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for Matomo's Reporting API: POST /index.php with
 * module=API&format=JSON&method=…&idSite&period&date and token_auth in the
 * body (a token in the URL is refused, as Matomo 5 does). Errors come as
 * HTTP 200 {"result":"error","message":…}. VisitsSummary.get answers the
 * summary object (bounce_rate as "40%", nb_uniq_visitors for days only, as
 * Matomo does by default); DevicesDetection.getType a row per device type.
 */

export interface FakeMatomo {
  url: string;
  token: string;
  siteId: string;
  /** Visits per day; everything else is derived from it. */
  visitsPerDay: number;
  /** Periods (`<period>:<date>`) Matomo has no data for: answers []. */
  empty: Set<string>;
  calls: Array<Record<string, string>>;
  failNext(status: number, opts?: { garbage?: boolean; message?: string }): void;
  close(): Promise<void>;
}

const DAYS: Record<string, number> = { day: 1, week: 7, month: 30 };

export async function startFakeMatomo(opts: { token?: string; siteId?: string } = {}): Promise<FakeMatomo> {
  const token = opts.token ?? 'matomo-test-token';
  const siteId = opts.siteId ?? '3';
  const failures: Array<{ status: number; garbage?: boolean; message?: string }> = [];
  const fake: FakeMatomo = {
    url: '',
    token,
    siteId,
    visitsPerDay: 60,
    empty: new Set(),
    calls: [],
    failNext: (status, o = {}) => void failures.push({ status, ...o }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/index.php') return json(res, 404, { result: 'error', message: 'Not found' });
      const p = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      fake.calls.push(p);
      const failure = failures.shift();
      if (failure?.garbage) {
        res.writeHead(failure.status, { 'content-type': 'text/html' });
        return void res.end('<!DOCTYPE html><html><body>Matomo › Error</body></html>');
      }
      if (failure) return json(res, failure.status, { result: 'error', message: failure.message ?? 'Internal Server Error' });
      if (url.searchParams.has('token_auth')) return json(res, 200, { result: 'error', message: 'token_auth is not allowed in the URL: send it in the POST body' });
      if (p.token_auth !== token) return json(res, 200, { result: 'error', message: `You can't access this resource as it requires 'view' access for the website id = ${p.idSite ?? ''}.` });
      if (p.module !== 'API' || p.format !== 'JSON') return json(res, 200, { result: 'error', message: 'module=API&format=JSON expected' });
      if (p.idSite !== siteId) return json(res, 200, { result: 'error', message: `An unexpected website was found in the request: website id was set to '${p.idSite ?? ''}' .` });
      const days = DAYS[p.period ?? ''];
      if (!days || !/^\d{4}-\d{2}-\d{2}$/.test(p.date ?? '')) return json(res, 200, { result: 'error', message: 'The period or date is not valid' });
      if (fake.empty.has(`${p.period}:${p.date}`)) return json(res, 200, []);
      const visits = fake.visitsPerDay * days;
      if (p.method === 'VisitsSummary.get') {
        return json(res, 200, {
          ...(p.period === 'day' ? { nb_uniq_visitors: Math.round(visits * 0.8), nb_users: 0 } : {}),
          nb_visits: visits,
          nb_actions: visits * 3,
          nb_visits_converted: 0,
          bounce_count: Math.round(visits * 0.45),
          sum_visit_length: visits * 120,
          max_actions: 40,
          bounce_rate: '45%',
          nb_actions_per_visit: 3,
          avg_time_on_site: 120,
        });
      }
      if (p.method === 'DevicesDetection.getType') {
        const share = (f: number) => Math.round(visits * f);
        return json(res, 200, [
          { label: 'Desktop', nb_uniq_visitors: 0, nb_visits: share(0.5), nb_actions: 0, segment: 'deviceType==desktop' },
          { label: 'Smartphone', nb_uniq_visitors: 0, nb_visits: share(0.3), nb_actions: 0, segment: 'deviceType==smartphone' },
          { label: 'Phablet', nb_uniq_visitors: 0, nb_visits: share(0.05), nb_actions: 0, segment: 'deviceType==phablet' },
          { label: 'Tablet', nb_uniq_visitors: 0, nb_visits: share(0.15), nb_actions: 0, segment: 'deviceType==tablet' },
        ]);
      }
      return json(res, 200, { result: 'error', message: `The method '${p.method ?? ''}' does not exist or is not available in the module '\\Piwik\\Plugins\\API'.` });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
