import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { addAccount, createToken, setPassword, type Role } from '../src/domain/accounts.js';
import { calendarSecret } from '../src/domain/calendar-feed.js';
import { ObservationStore } from '../src/domain/observations.js';
import { periodOf, previousPeriod } from '../src/domain/periods.js';
import { catalogueFor } from '../src/metrics-config.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { buildServer } from '../src/server/index.js';
import { londonIn } from './helpers/crier.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { removeDir, startPrivateRedis, type PrivateRedis } from './helpers/redis-server.js';

/**
 * The HTTP API and the route guard, through fastify's inject on the real
 * server (real Redis under a private prefix). Every registered route is
 * enumerated, so a route added later cannot slip through unguarded.
 */

/** The only routes anyone may reach without signing in (the list). */
const PUBLIC = [/^\/$/, /^\/press$/, /^\/organisation\/logo$/, /^\/healthz$/, /^\/u\/:token$/, /^\/press\.(rss|atom)$/, /^\/press\/:slug$/, /^\/calendar\/:file$/, /^\/login$/, /^\/static\/\*$/];

const PASSWORD = 'a long enough password';

let config: Config;
let handle: RedisHandle;
let app: FastifyInstance;
const tokens: Record<string, string> = {};
const email = (who: string) => `${who}@example.org`;

async function account(who: string, role: Role): Promise<void> {
  await addAccount(handle.redis, handle.prefix, email(who), role, new Date());
  await setPassword(handle.redis, handle.prefix, email(who), PASSWORD);
  tokens[who] = await createToken(handle.redis, handle.prefix, email(who), 'test', new Date());
}

function api(who: string | undefined, method: 'GET' | 'POST', url: string, payload?: unknown) {
  return app.inject({ method, url, headers: who ? { authorization: `Bearer ${tokens[who]}` } : {}, ...(payload !== undefined ? { payload: payload as object } : {}) });
}

/** A campaign body as a campaign file would have it, as JSON. */
function campaign(over: Record<string, unknown> = {}) {
  return { title: 'API newsletter', kind: 'newsletter', send_at: londonIn(3600_000).slice(0, 16), channels: { email: { list: 'news', subject: 'Hello', body: 'Hi **all**' } }, ...over };
}

/** A browser-like session through the login form: its cookie and a CSRF token. */
class Browser {
  cookie = '';
  csrf = '';
  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await app.inject({
      method,
      url,
      headers: { cookie: this.cookie, accept: 'text/html', ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
      ...(form ? { payload: new URLSearchParams(form).toString() } : {}),
    });
    const set = res.headers['set-cookie'];
    const first = Array.isArray(set) ? set[0] : set;
    if (first) this.cookie = first.split(';')[0]!;
    const token = /name="_csrf" value="([^"]+)"/.exec(res.body)?.[1];
    if (token) this.csrf = token;
    return res;
  }
  async login(who: string, password = PASSWORD) {
    await this.request('GET', '/login');
    return this.request('POST', '/login', { _csrf: this.csrf, email: email(who), password, next: '/dashboard/campaigns' });
  }
}

let redis: PrivateRedis | undefined;

beforeAll(async () => {
  // A redis-server of this file's own: 'bad bodies' watches it with MONITOR, and on the run's shared server
  // the other test files running at the same time flood the monitor (ioredis once failed on it with
  // "Command queue state error"). The prefix check is the same either way.
  redis = await startPrivateRedis();
  config = testConfig({ env: { REDIS_URL: redis.url }, yaml: 'approval:\n  kinds: [newsletter]\ndashboard:\n  login_attempts: 3\n  login_window_minutes: 5' });
  handle = await connectRedis(config, silentLogger());
  app = await buildServer(config, handle, silentLogger());
  await app.ready();
  await account('viewer', 'viewer');
  await account('editor', 'editor');
  await account('editor2', 'editor');
  await account('approver', 'approver');
  await account('admin', 'admin');
});

afterAll(async () => {
  await app?.close();
  await handle?.close();
  await redis?.stop();
  if (redis) removeDir(redis.dir);
});

describe('route guard', () => {
  it('every registered route but the public ones refuses a request without credentials (or with a bad token)', async () => {
    const routes = app.routeTable().filter((r) => r.method !== 'HEAD');
    expect(routes.length).toBeGreaterThan(40);
    const fill = (url: string) => url.replace(/:[A-Za-z]+/g, 'cx1').replace(/\*$/, 'x');
    const checked: string[] = [];
    for (const r of routes) {
      if (PUBLIC.some((p) => p.test(r.url))) continue;
      for (const headers of [{}, { authorization: 'Bearer crier_notarealtoken' }, { accept: 'text/html' }]) {
        const res = await app.inject({ method: r.method as 'GET', url: fill(r.url), headers });
        const refused = res.statusCode === 401 || (res.statusCode === 303 && String(res.headers.location).startsWith('/login'));
        expect(refused, `${r.method} ${r.url} ${JSON.stringify(headers)} → ${res.statusCode}`).toBe(true);
      }
      checked.push(`${r.method} ${r.url}`);
    }
    // The enumeration reaches the API, the dashboard and Bull Board.
    expect(checked).toEqual(expect.arrayContaining(['POST /api/v1/campaigns', 'GET /dashboard/calendar', 'GET /queues', 'GET /openapi.json', 'POST /logout']));
    const res = await app.inject({ url: '/api/v1/campaigns' });
    expect(res.json()).toMatchObject({ code: 'CRIER_ERR_UNAUTHENTICATED' });
  });

  it('the public routes answer without credentials', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/login' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/static/htmx.min.js' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/static/dashboard.css' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/press.rss' })).statusCode).toBe(200);
  });
});

describe('roles', () => {
  it('viewer reads but cannot create or approve; editor creates; the author cannot approve; an approver can', async () => {
    expect((await api('viewer', 'GET', '/api/v1/campaigns')).statusCode).toBe(200);
    const refused = await api('viewer', 'POST', '/api/v1/campaigns', campaign());
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'CRIER_ERR_FORBIDDEN' });

    const created = await api('editor', 'POST', '/api/v1/campaigns', campaign());
    expect(created.statusCode, created.body).toBe(201);
    const c = created.json<{ id: string; status: string; author: string }>();
    expect(c).toMatchObject({ status: 'awaiting_approval', author: email('editor') });

    expect((await api('viewer', 'POST', `/api/v1/campaigns/${c.id}/approve`)).statusCode).toBe(403);
    expect((await api('editor2', 'POST', `/api/v1/campaigns/${c.id}/approve`)).statusCode).toBe(403); // editors do not approve

    const own = await api('approver', 'POST', '/api/v1/campaigns', campaign({ title: 'Approver wrote this' }));
    expect(own.statusCode).toBe(201);
    const selfApprove = await api('approver', 'POST', `/api/v1/campaigns/${own.json<{ id: string }>().id}/approve`);
    expect(selfApprove.statusCode).toBe(403);
    expect(selfApprove.json<{ message: string }>().message).toMatch(/needs approval by someone else/);

    const ok = await api('approver', 'POST', `/api/v1/campaigns/${c.id}/approve`);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ id: c.id, status: 'scheduled', approved_by: email('approver') });

    const shown = await api('viewer', 'GET', `/api/v1/campaigns/${c.id}`);
    expect(shown.json()).toMatchObject({ status: 'scheduled', channels: { email: { sent: 0, failed: 0 } } });
    expect((await api('viewer', 'POST', `/api/v1/campaigns/${c.id}/cancel`)).statusCode).toBe(403);
    const moved = await api('editor', 'POST', `/api/v1/campaigns/${c.id}/reschedule`, { at: londonIn(7200_000).slice(0, 16) });
    expect(moved.statusCode, moved.body).toBe(200);
    const preview = await api('viewer', 'POST', `/api/v1/campaigns/${c.id}/preview`);
    expect(preview.json<Array<{ channel: string; html: string }>>()[0]).toMatchObject({ channel: 'email' });
    expect(preview.json<Array<{ html: string }>>()[0]!.html).toContain('<strong>all</strong>');
    expect((await api('editor', 'POST', `/api/v1/campaigns/${c.id}/cancel`)).json()).toMatchObject({ status: 'cancelled' });

    const audit = await api('viewer', 'GET', '/api/v1/audit');
    const actions = audit.json<Array<{ actor: string; action: string; subject: string }>>().filter((e) => e.subject === c.id);
    expect(actions.map((e) => [e.actor, e.action])).toEqual([
      [email('editor'), 'campaign.create'],
      [email('approver'), 'campaign.approve'],
      [email('editor'), 'campaign.reschedule'],
      [email('editor'), 'campaign.cancel'],
    ]);
    expect((await api('admin', 'GET', '/queues/api/queues')).statusCode).toBe(200);
    expect((await api('approver', 'GET', '/queues/api/queues')).statusCode).toBe(403);
  });

  it('audience: import, lists, export and forget by role', async () => {
    const csv = 'email,name,area,topics\nann@example.org,Ann,Rugby,\nnot-an-email,Bob,,\n';
    const asViewer = await app.inject({ method: 'POST', url: '/api/v1/audience/lists/news/import', headers: { authorization: `Bearer ${tokens.viewer}`, 'content-type': 'text/csv' }, payload: csv });
    expect(asViewer.statusCode).toBe(403);
    const imported = await app.inject({ method: 'POST', url: '/api/v1/audience/lists/news/import', headers: { authorization: `Bearer ${tokens.editor}`, 'content-type': 'text/csv' }, payload: csv });
    expect(imported.statusCode, imported.body).toBe(200);
    expect(imported.json()).toMatchObject({ imported: 1, rejected: 1 });
    expect((await api('viewer', 'GET', '/api/v1/audience/lists')).json()).toEqual([{ name: 'news', members: 1, subscribed: 1, unsubscribed: 0 }]);
    expect((await api('viewer', 'GET', '/api/v1/audience/lists/news/export')).statusCode).toBe(403);
    const exported = await api('editor', 'GET', '/api/v1/audience/lists/news/export');
    expect(exported.headers['content-type']).toMatch(/^text\/csv/);
    expect(exported.body.split('\n')[1]).toMatch(/^ann@example.org,Ann,Rugby/);
    expect((await api('editor', 'GET', '/api/v1/audience/lists/nolist/export')).statusCode).toBe(404);
    expect((await api('editor', 'POST', '/api/v1/audience/forget', { email: 'ann@example.org' })).json()).toEqual({ forgotten: true });
  });
});

describe('bad bodies', () => {
  it('are refused with {code, message} naming every field, and never reach Redis', async () => {
    const monitor: Redis = handle.duplicate();
    const seen: string[] = [];
    // MONITOR shows every command the server runs; ours are the ones naming our key prefix.
    const m = await monitor.monitor();
    m.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.includes(config.redis_prefix))) seen.push(args.join(' '));
    });
    const bad: Array<[unknown, RegExp]> = [
      [{ kind: 'newsletter', send_at: '2030-01-01 09:00', channels: {} }, /title/],
      [campaign({ kind: 'leaflet' }), /kind.*newsletter, community, social, press/],
      [campaign({ send_at: 'tomorrow' }), /send_at/],
      [campaign({ send_at: '2020-01-01 09:00' }), /in the past/],
      [campaign({ channels: { twitter: { text: 'x'.repeat(300) } } }), /300 characters, X allows 280/],
      [campaign({ channels: { email: { list: 'news', subject: 'Hi', body_file: '/etc/passwd' } } }), /body_file/],
      [campaign({ channels: { fax: { to: '1' } } }), /unknown channel "fax"/],
      [campaign({ extra: 1 }), /extra/],
      [[1, 2], /object/],
    ];
    for (const [body, why] of bad) {
      const res = await api('editor', 'POST', '/api/v1/campaigns', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      const err = res.json<{ code: string; message: string }>();
      expect(err.code).toBe('CRIER_ERR_INPUT');
      expect(err.message, JSON.stringify(body)).toMatch(why);
    }
    const notJson = await app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: { authorization: `Bearer ${tokens.editor}`, 'content-type': 'application/json' }, payload: '{"title": ' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toHaveProperty('code');
    const badAt = await api('editor', 'POST', '/api/v1/campaigns/cx1/reschedule', { at: 'next week' });
    expect(badAt.statusCode).toBe(400);
    expect((await api('editor', 'POST', '/api/v1/audience/forget', { mail: 'x@example.org' })).statusCode).toBe(400);
    // Let MONITOR catch up, then check: only the bearer-token lookups touched our keys.
    await handle.redis.ping();
    await new Promise((r) => setTimeout(r, 200));
    m.disconnect();
    monitor.disconnect();
    expect(seen.length).toBeGreaterThan(0);
    const other = seen.filter((cmd) => !/^(hget \S+:tokens \S+|hgetall \S+:user:editor@example\.org)$/i.test(cmd));
    expect(other).toEqual([]);
  });
});

describe('browser sessions', () => {
  it('login sets an HttpOnly SameSite=Lax cookie; unsafe requests need the CSRF token; logout ends the session for good', async () => {
    const b = new Browser();
    const login = await b.login('editor');
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/dashboard/campaigns');
    const setCookie = String([login.headers['set-cookie']].flat()[0]);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/); // PUBLIC_URL is http here
    const calendar = await b.request('GET', '/dashboard/calendar');
    expect(calendar.statusCode).toBe(200);
    expect(calendar.headers['x-frame-options']).toBe('DENY');

    const created = await api('editor2', 'POST', '/api/v1/campaigns', campaign({ title: 'CSRF target' }));
    const id = created.json<{ id: string }>().id;
    const noToken = await b.request('POST', `/dashboard/campaigns/${id}/cancel`, {});
    expect(noToken.statusCode).toBe(403);
    const wrong = await b.request('POST', `/api/v1/campaigns/${id}/cancel`, undefined, { 'x-csrf-token': 'forged' });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json()).toMatchObject({ code: 'CRIER_ERR_CSRF' });
    expect((await api('viewer', 'GET', `/api/v1/campaigns/${id}`)).json()).toMatchObject({ status: 'awaiting_approval' });
    const withHeader = await b.request('POST', `/api/v1/campaigns/${id}/cancel`, undefined, { 'x-csrf-token': b.csrf });
    expect(withHeader.statusCode, withHeader.body).toBe(200);

    const cookie = b.cookie;
    const out = await b.request('POST', '/logout', { _csrf: b.csrf });
    expect(out.statusCode).toBe(303);
    // The old cookie, replayed, no longer signs anyone in: the session is gone from Redis.
    const replay = await app.inject({ url: '/api/v1/campaigns', headers: { cookie } });
    expect(replay.statusCode).toBe(401);
  });

  it('the login form needs its CSRF token; a wrong password is refused; too many attempts get 429', async () => {
    const b = new Browser();
    await b.request('GET', '/login');
    expect((await b.request('POST', '/login', { email: email('viewer'), password: PASSWORD })).statusCode).toBe(403);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await b.request('POST', '/login', { _csrf: b.csrf, email: email('admin'), password: 'wrong password!' })).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Another account from the same address is not locked out by that.
    expect((await b.login('viewer')).statusCode).toBe(303);
  });

  it('a new account must choose its own password before anything else', async () => {
    const once = await addAccount(handle.redis, handle.prefix, 'new@example.org', 'viewer', new Date());
    const b = new Browser();
    await b.request('GET', '/login');
    const res = await b.request('POST', '/login', { _csrf: b.csrf, email: 'new@example.org', password: once });
    expect(res.headers.location).toBe('/dashboard/password');
    expect((await b.request('GET', '/dashboard/calendar')).headers.location).toBe('/dashboard/password');
    await b.request('GET', '/dashboard/password');
    expect((await b.request('POST', '/dashboard/password', { _csrf: b.csrf, password: 'short', confirm: 'short' })).statusCode).toBe(400);
    expect((await b.request('POST', '/dashboard/password', { _csrf: b.csrf, password: PASSWORD, confirm: PASSWORD })).statusCode).toBe(303);
    expect((await b.request('GET', '/dashboard/calendar')).statusCode).toBe(200);
  });
});

describe('measures', () => {
  it('catalogue, observations and export over the API; the page shows week on week and "no data" as such', async () => {
    const catalogue = catalogueFor(config.metrics);
    const store = new ObservationStore(handle.redis, handle.prefix, catalogue, { zone: config.timezone });
    const week = periodOf('week', new Date(), config.timezone);
    const last = previousPeriod(week);
    await store.record({ measure: 'website.visits', period: week.key, value: 1200, source: 'manual' });
    await store.record({ measure: 'website.visits', period: last.key, value: 1000, source: 'manual' });
    expect((await api('viewer', 'GET', '/api/v1/measures')).json<Array<{ name: string }>>().map((m) => m.name)).toContain('website.visits');
    const obs = await api('viewer', 'GET', `/api/v1/measures/observations?measure=website.visits&from=${last.key}`);
    expect(obs.json<Array<{ period: string; value: number }>>().map((o) => [o.period, o.value])).toEqual([[last.key, 1000], [week.key, 1200]]);
    expect((await api('viewer', 'GET', '/api/v1/measures/observations?measure=website.nope')).statusCode).toBe(400);
    const csv = await api('viewer', 'GET', '/api/v1/measures/export?measure=website.visits&format=csv');
    expect(csv.body.trim().split('\n')).toHaveLength(3);
    const digest = await api('viewer', 'GET', `/api/v1/measures/digest?week=${week.key}`);
    expect(digest.statusCode, digest.body.slice(0, 300)).toBe(200);
    expect(digest.headers['content-type']).toMatch(/^text\/html/);
    expect(digest.body).toContain('Website growth');
    expect(digest.body).not.toContain('cid:');
    const text = await api('viewer', 'GET', `/api/v1/measures/digest?week=${week.key}&format=text`);
    expect(text.body).toMatch(/1,?200/);
    expect((await api('viewer', 'GET', '/api/v1/measures/digest?week=2026-12')).statusCode).toBe(400);

    const b = new Browser();
    await b.login('viewer');
    const page = await b.request('GET', '/dashboard/measures');
    expect(page.statusCode).toBe(200);
    const row = (name: string) => new RegExp(`data-measure="${name.replace('.', '\\.')}"[\\s\\S]*?</tr>`).exec(page.body)?.[0] ?? '';
    expect(row('website.visits')).toContain('1,200');
    expect(row('website.visits')).toContain('+20%');
    expect(row('website.pageviews')).toContain('no data');
    expect(row('website.pageviews')).not.toMatch(/>0</);
  });
});

describe('OpenAPI and the calendar feed', () => {
  it('/openapi.json describes the API routes from their schemas', async () => {
    const doc = (await api('viewer', 'GET', '/openapi.json')).json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/campaigns', '/api/v1/campaigns/{id}/approve', '/api/v1/audience/lists', '/api/v1/audit']));
    expect(Object.keys(doc.paths).every((p) => p.startsWith('/api/v1/'))).toBe(true);
    expect(doc.paths['/api/v1/campaigns']!.post).toHaveProperty('requestBody');
  });

  it('/calendar/<secret>.ics is valid iCalendar with UTC times; a wrong or rotated secret is 404', async () => {
    const created = await api('editor', 'POST', '/api/v1/campaigns', campaign({ title: 'Calendar, feed; test', kind: 'social', channels: { twitter: { text: 'hello' } } }));
    const c = created.json<{ id: string; send_at: string }>();
    const secret = await calendarSecret(handle.redis, handle.prefix);
    const res = await app.inject({ url: `/calendar/${secret}.ics` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/calendar/);
    const events = parseIcs(res.body);
    const ev = events.find((e) => e.UID?.startsWith(c.id));
    expect(ev, res.body).toBeDefined();
    expect(ev!.SUMMARY).toBe('Calendar, feed; test (social)');
    const utc = new Date(c.send_at).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    expect(ev!.DTSTART).toBe(utc);
    expect((await app.inject({ url: `/calendar/${secret.slice(0, -2)}xx.ics` })).statusCode).toBe(404);
    const rotated = await calendarSecret(handle.redis, handle.prefix, true);
    expect((await app.inject({ url: `/calendar/${secret}.ics` })).statusCode).toBe(404);
    expect((await app.inject({ url: `/calendar/${rotated}.ics` })).statusCode).toBe(200);
  });
});

/**
 * A strict reading of RFC 5545 for what the feed uses: CRLF lines of at most
 * 75 octets, folded continuation lines, balanced BEGIN/END, VERSION and
 * PRODID, and per VEVENT a UID, DTSTAMP and a DTSTART in UTC form. Returns
 * each event's properties with text values unescaped.
 */
function parseIcs(text: string): Array<Record<string, string>> {
  expect(text.endsWith('\r\n')).toBe(true);
  const raw = text.slice(0, -2).split('\r\n');
  for (const line of raw) expect(Buffer.byteLength(line), line).toBeLessThanOrEqual(75);
  const lines: string[] = [];
  for (const line of raw) {
    if (line.startsWith(' ') || line.startsWith('\t')) lines[lines.length - 1] += line.slice(1);
    else lines.push(line);
  }
  const stack: string[] = [];
  const events: Array<Record<string, string>> = [];
  let calendar: Record<string, string> = {};
  let current: Record<string, string> | undefined;
  for (const line of lines) {
    const m = /^([A-Z0-9-]+)((?:;[^:]*)?):(.*)$/.exec(line);
    expect(m, `not a content line: ${line}`).not.toBeNull();
    const [, name, , value] = m!;
    if (name === 'BEGIN') {
      stack.push(value!);
      if (value === 'VEVENT') current = {};
      continue;
    }
    if (name === 'END') {
      expect(stack.pop()).toBe(value);
      if (value === 'VEVENT') {
        expect(current!.UID).toBeTruthy();
        expect(current!.DTSTAMP).toMatch(/^\d{8}T\d{6}Z$/);
        expect(current!.DTSTART).toMatch(/^\d{8}T\d{6}Z$/);
        events.push(current!);
        current = undefined;
      }
      continue;
    }
    const unescaped = value!.replace(/\\([,;\\nN])/g, (_s, c: string) => (c === 'n' || c === 'N' ? '\n' : c));
    if (current) current[name!] = unescaped;
    else calendar = { ...calendar, [name!]: unescaped };
  }
  expect(stack).toEqual([]);
  expect(calendar.VERSION).toBe('2.0');
  expect(calendar.PRODID).toBeTruthy();
  return events;
}
