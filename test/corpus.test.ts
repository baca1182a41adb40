import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../src/config.js';
import { addAccount, createToken } from '../src/domain/accounts.js';
import { exportList, findSubscriber, importSubscribers } from '../src/domain/audience.js';
import { readCampaignFile } from '../src/domain/campaign-file.js';
import { CsvParser } from '../src/domain/csv.js';
import { exportObservations, importObservations } from '../src/domain/metrics-io.js';
import { ObservationStore } from '../src/domain/observations.js';
import { catalogueFor } from '../src/metrics-config.js';
import { FeedUnavailable, fetchFeed } from '../src/domain/website-feed.js';
import { UserError } from '../src/errors.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { buildServer } from '../src/server/index.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { CLI_JS } from './helpers/dist.js';

/**
 * The hostile-input corpus (test/corpus/, listed in its README): every file
 * and every hostile HTTP body, each with the clear error it must get. For
 * each rejected input nothing is written (the Redis keys under this test's
 * prefix are the same before and after); a bad row in a good file is
 * reported and the good rows kept; no answer is a 500 or shows a stack trace.
 */

const corpus = (name: string): string => path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus', name);

let config: Config;
let handle: RedisHandle;
let rejectsDir: string;

/**
 * Every key under the prefix with a hash of its contents, in one round trip.
 * Contents, not DUMP: a read can make Redis rehash a set or hash, which
 * reorders DUMP's bytes without changing anything.
 */
const SNAPSHOT = `local out = {}
local function flat(t) local r = {} for _, v in ipairs(t) do r[#r + 1] = type(v) == 'table' and flat(v) or tostring(v) end return table.concat(r, '\\0') end
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
  local t = redis.call('TYPE', k).ok
  local v
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif t == 'set' then v = redis.call('SMEMBERS', k) table.sort(v)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'hash' then
    local h = redis.call('HGETALL', k)
    v = {}
    for i = 1, #h, 2 do v[#v + 1] = h[i] .. '=' .. h[i + 1] end
    table.sort(v)
  elseif t == 'stream' then v = { redis.call('XLEN', k), redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1) }
  else v = redis.call('DUMP', k) or '' end
  out[#out + 1] = k
  out[#out + 1] = redis.sha1hex(t .. ':' .. (type(v) == 'table' and flat(v) or v))
end
return out`;

async function snapshot(): Promise<Map<string, string>> {
  const flat = (await handle.redis.eval(SNAPSHOT, 0, `${handle.prefix}:*`)) as string[];
  const keys = new Map<string, string>();
  // The login form's attempt counter counts every try, well-formed or not: that is its job.
  for (let i = 0; i < flat.length; i += 2) if (!flat[i]!.includes(':ratelimit:')) keys.set(flat[i]!, flat[i + 1]!);
  return keys;
}

/** Keys added, removed or changed between two snapshots. */
function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  const all = new Set([...before.keys(), ...after.keys()]);
  return [...all].filter((k) => before.get(k) !== after.get(k)).sort();
}

/** Runs `fn`, which must throw a UserError, and checks that Redis did not change meanwhile. */
async function refusedWritingNothing(fn: () => unknown): Promise<UserError> {
  const before = await snapshot();
  const err = await Promise.resolve()
    .then(fn)
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err, String(err)).toBeInstanceOf(UserError);
  expect(changed(before, await snapshot())).toEqual([]);
  return err as UserError;
}

/** No stack frame, no source path: what a user sees never shows the inside of Crier. */
function expectNoInternals(text: string, what: string): void {
  expect(text, what).not.toMatch(/\n\s+at |node_modules|\/src\/|\/dist\/|\.ts:\d|\.js:\d/);
}

beforeAll(async () => {
  // A database of its own on the run's Redis: the snapshots' KEYS then walks only this test's keys, never blocking the other test files.
  config = testConfig({ env: { REDIS_URL: `${inject('redisUrl')}/11` } });
  handle = await connectRedis(config, silentLogger());
  rejectsDir = path.join(config.dataDir, 'rejects');
});
afterAll(async () => {
  await handle?.close();
});

// ---------------------------------------------------------------- CSV files

interface CsvCase {
  name: string;
  file: () => string;
  /** A file that cannot be read as a whole: this error, nothing written. */
  refused?: { message: RegExp; line?: number };
  /** Otherwise: counts, and who is on the list afterwards with which name. */
  result?: { imported: number; rejected: number; rejects?: Array<[string, RegExp]>; note?: RegExp };
  names?: Record<string, string>;
  absent?: string[];
}

const goodRows = (n: number, tag: string): string => Array.from({ length: n }, (_, i) => `${tag}${i}@example.org,Row ${i},Rugby,\n`).join('');

function generated(name: string, content: string | Buffer): () => string {
  return () => {
    const file = path.join(config.dataDir, name);
    writeFileSync(file, content);
    return file;
  };
}

const CSV_CASES: CsvCase[] = [
  {
    name: 'bom.csv: a UTF-8 byte-order mark before the header',
    file: () => corpus('bom.csv'),
    result: { imported: 2, rejected: 0 },
    names: { 'bom.first@example.org': 'Bom First', 'bom.second@example.org': 'Bom Second' },
  },
  {
    name: 'line-endings.csv: CRLF, LF and a lone CR in one file, a quoted CR LF, no final newline',
    file: () => corpus('line-endings.csv'),
    result: { imported: 4, rejected: 0 },
    names: { 'crlf@example.org': 'Crlf', 'lf@example.org': 'Lf', 'cr@example.org': 'Cr', 'last@example.org': 'Quoted Two lines' },
  },
  {
    name: 'invalid-utf8.csv: a line with bytes that are not UTF-8',
    file: () => corpus('invalid-utf8.csv'),
    result: { imported: 3, rejected: 0, note: /line 3 is not valid UTF-8/ },
    names: { 'good.one@example.org': 'Good One', 'good.two@example.org': 'Good Two €' },
  },
  {
    name: 'nul-byte.csv: a NUL byte inside a name',
    file: () => corpus('nul-byte.csv'),
    refused: { message: /nul-byte\.csv:3: not a CSV file: it holds binary data \(a NUL byte/, line: 3 },
    absent: ['before@example.org', 'after@example.org'],
  },
  {
    name: 'proto-header.csv: a header of __proto__, constructor, toString (names every object has)',
    file: () => corpus('proto-header.csv'),
    refused: { message: /proto-header\.csv:1: not a CSV file with a header row: expected columns email,name,area,topics/, line: 1 },
    absent: ['someone@example.org'],
  },
  {
    name: 'a 1 MB field (generated) ends the record limit: the file is refused at its line',
    file: generated('field-1mb.csv', `email,name,area,topics\n${goodRows(600, 'mb')}big@example.org,${'x'.repeat(1024 * 1024)},Rugby,\n${goodRows(5, 'mb-after')}`),
    refused: { message: /field-1mb\.csv:602: a record is longer than 1000000 characters/, line: 602 },
    absent: ['mb0@example.org', 'mb-after0@example.org'],
  },
  {
    name: 'a 900 kB name (generated, under the record limit): that row is rejected, the good rows kept',
    file: generated('field-900kb.csv', `email,name,area,topics\nkeep.one@example.org,Keep One,Rugby,\nlong@example.org,${'y'.repeat(900_000)},Rugby,\nkeep.two@example.org,Keep Two,Rugby,\n`),
    result: { imported: 2, rejected: 1, rejects: [['3', /name longer than 200 characters/]] },
    names: { 'keep.one@example.org': 'Keep One', 'keep.two@example.org': 'Keep Two' },
    absent: ['long@example.org'],
  },
  {
    name: 'formula-injection.csv: formulas in names, areas and topics (and one bad address)',
    file: () => corpus('formula-injection.csv'),
    result: { imported: 4, rejected: 1, rejects: [['2', /bad email/]] },
    names: { 'formula@example.org': '=HYPERLINK("http://evil.example","Click")' },
  },
];

function parseCsv(text: string): string[][] {
  const p = new CsvParser('out.csv');
  return [...p.push(text), ...p.end()].map((r) => r.fields);
}

describe('CSV files (crier subscribers import)', () => {
  CSV_CASES.forEach((c, i) => {
    it(c.name, async () => {
      const list = `corpus${i}`;
      const file = c.file();
      if (c.refused) {
        const err = await refusedWritingNothing(() => importSubscribers(handle.redis, handle.prefix, file, list, { rejectsDir }));
        expect(err.exitCode).toBe(1);
        expect(err.message).toMatch(c.refused.message);
        expect(err.where).toMatchObject({ file, ...(c.refused.line ? { line: c.refused.line } : {}) });
      } else {
        const r = await importSubscribers(handle.redis, handle.prefix, file, list, { rejectsDir });
        expect(r).toMatchObject({ imported: c.result!.imported, rejected: c.result!.rejected });
        if (c.result!.note) expect(r.encodingNote).toMatch(c.result!.note);
        if (c.result!.rejects) {
          const rows = parseCsv(readFileSync(r.rejectsFile!, 'utf8')).slice(1);
          expect(rows.map((row) => [row[0], row[1]])).toEqual(c.result!.rejects.map(([line, why]) => [line, expect.stringMatching(why)]));
        }
        // Exported again, no cell can start a spreadsheet formula.
        const lines: string[] = [];
        await exportList(handle.redis, handle.prefix, list, (l) => void lines.push(l));
        expect(lines).toHaveLength(1 + c.result!.imported);
        for (const cell of parseCsv(`${lines.join('\n')}\n`).flat()) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      }
      for (const [email, name] of Object.entries(c.names ?? {})) expect(await findSubscriber(handle.redis, handle.prefix, email), email).toMatchObject({ name });
      for (const email of c.absent ?? []) expect(await findSubscriber(handle.redis, handle.prefix, email), email).toBeNull();
    });
  });
});

describe('metrics CSVs (crier metrics import)', () => {
  const stores = () => {
    const catalogue = catalogueFor(config.metrics);
    return { catalogue, store: new ObservationStore(handle.redis, handle.prefix, catalogue, { zone: config.timezone }) };
  };

  it('metrics-hostile.csv: each bad row named by line and field, the good rows kept, formulas neutralised on export', async () => {
    const { catalogue, store } = stores();
    const file = corpus('metrics-hostile.csv');
    const r = await importObservations(store, catalogue, file, new Date());
    expect(r).toMatchObject({ imported: 2, rejected: 3 });
    expect(r.errors.map((e) => [e.where.line, e.where.field])).toEqual([
      [3, 'value'],
      [4, 'week'],
      [5, 'measure'],
    ]);
    const lines: string[] = [];
    await exportObservations(store, catalogue, { format: 'csv' }, (l) => void lines.push(l));
    const rows = parseCsv(`${lines.join('\n')}\n`);
    expect(rows.map((row) => row[1])).toEqual(['subject', '\'=HYPERLINK("http://evil.example","x")', "'+44 Rugby"]);
    for (const cell of rows.flat()) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
  });

  it('metrics-proto-column.csv: a __proto__ column is refused at the header, nothing written', async () => {
    const { catalogue, store } = stores();
    const file = corpus('metrics-proto-column.csv');
    const err = await refusedWritingNothing(() => importObservations(store, catalogue, file, new Date()));
    expect(err.message).toBe(`${file}:1: column "__proto__" cannot be a dimension: rename it`);
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

// ---------------------------------------------------------- campaign files

interface YamlCase {
  name: string;
  file: () => string;
  /** One entry per mistake, in order: line, field, message. */
  mistakes: Array<{ line: number; field?: string; message: RegExp }>;
}

const now = new Date('2026-06-01T12:00:00Z');

const YAML_CASES: YamlCase[] = [
  {
    name: 'wrong-types.yaml: a list for a title, a number for a date, strings for booleans, objects for strings',
    file: () => corpus('wrong-types.yaml'),
    mistakes: [
      { line: 1, field: 'title', message: /string/ },
      { line: 3, field: 'send_at', message: /YYYY-MM-DD HH:mm/ },
      { line: 4, field: 'essential', message: /true or false|boolean/ },
      { line: 7, field: 'channels.email.list', message: /string/ },
      { line: 8, field: 'channels.email.subject', message: /string/ },
    ],
  },
  {
    name: 'many-mistakes.yaml: unknown keys at the top and in a channel, an unknown channel, a bad kind',
    file: () => corpus('many-mistakes.yaml'),
    mistakes: [
      { line: 2, field: 'kind', message: /kind must be one of/ },
      { line: 4, field: 'subjct', message: /unknown field subjct/ },
      { line: 6, field: 'channels.email.list', message: /required/ },
      { line: 6, field: 'channels.email.subject', message: /required/ },
      { line: 6, field: 'channels.email.lst', message: /unknown field lst/ },
      { line: 7, field: 'channels.fax', message: /unknown channel "fax"/ },
    ],
  },
  {
    name: 'proto-keys.yaml: __proto__ keys at the top, as a channel and inside one (no pollution, none dropped silently)',
    file: () => corpus('proto-keys.yaml'),
    mistakes: [
      { line: 4, field: '__proto__', message: /^unknown field __proto__$/ },
      { line: 6, field: 'channels.__proto__', message: /^unknown field __proto__$/ },
      { line: 9, field: 'channels.mastodon.__proto__', message: /^unknown field __proto__$/ },
    ],
  },
  { name: 'alias-bomb.yaml: a YAML billion laughs', file: () => corpus('alias-bomb.yaml'), mistakes: [{ line: 1, message: /too many YAML aliases/ }] },
  {
    name: 'dst-gap.yaml: 01:30 on the morning the clocks go forward does not exist in Europe/London',
    file: () => corpus('dst-gap.yaml'),
    mistakes: [{ line: 3, field: 'send_at', message: /does not exist in Europe\/London: the clocks go forward that day\. Use 2027-03-28 00:30 GMT \(00:30 UTC\) or 2027-03-28 02:30 BST \(01:30 UTC\)/ }],
  },
  {
    name: 'dst-overlap.yaml: 01:30 on the morning the clocks go back happens twice',
    file: () => corpus('dst-overlap.yaml'),
    mistakes: [{ line: 3, field: 'send_at', message: /happens twice in Europe\/London.*"2026-10-25 01:30 \+01:00" is .*BST \(00:30 UTC\), "2026-10-25 01:30 \+00:00" is .*GMT \(01:30 UTC\)/ }],
  },
  {
    name: 'title-line-break.yaml: CR LF and a forged header in the title',
    file: () => corpus('title-line-break.yaml'),
    mistakes: [{ line: 1, field: 'title', message: /must be one line/ }],
  },
  {
    name: 'subject-line-break.yaml: CR LF and a forged Bcc header in the email subject',
    file: () => corpus('subject-line-break.yaml'),
    mistakes: [{ line: 7, field: 'channels.email.subject', message: /^the subject must be one line/ }],
  },
  {
    name: 'a press headline with a line break (inline)',
    file: () => {
      const file = path.join(config.dataDir, 'headline.yaml');
      writeFileSync(file, 'title: Press\nkind: press\nsend_at: 2099-12-01 09:00\nchannels:\n  press:\n    headline: "Arrests made\\nX-Injected: 1"\n    body: Text\n');
      return file;
    },
    mistakes: [{ line: 6, field: 'channels.press.headline', message: /^the headline must be one line/ }],
  },
  {
    name: 'a 10 MB body file (generated)',
    file: () => {
      writeFileSync(path.join(config.dataDir, 'ten-mb.md'), 'A line of the body.\n'.repeat(512 * 1024));
      const file = path.join(config.dataDir, 'ten-mb.yaml');
      writeFileSync(file, 'title: Ten megabytes\nkind: newsletter\nsend_at: 2099-12-01 09:00\nchannels:\n  email: { list: n, subject: S, body_file: ten-mb.md }\n');
      return file;
    },
    mistakes: [{ line: 5, field: 'channels.email.body_file', message: /ten-mb\.md is 10\.0 MB; the most a campaign body may be is 1 MB/ }],
  },
];

describe('campaign files (crier campaign create)', () => {
  for (const c of YAML_CASES) {
    it(c.name, async () => {
      const file = c.file();
      const err = await refusedWritingNothing(() => readCampaignFile(file, config, { now }));
      expect(Object.prototype).not.toHaveProperty('polluted');
      expect(err.exitCode).toBe(1);
      const lines = err.message.split('\n');
      expect(lines, err.message).toHaveLength(c.mistakes.length);
      c.mistakes.forEach((m, i) => {
        const at = `${file}:${m.line}${m.field ? `, field "${m.field}"` : ''}: `;
        expect(lines[i]!.startsWith(at), `${lines[i]} should start with ${at}`).toBe(true);
        expect(lines[i]!.slice(at.length)).toMatch(m.message);
      });
    });
  }
});

// --------------------------------------------------------------- feeds

describe('feeds (the website feed reader, fetchFeed)', () => {
  let server: Server;
  let base = '';
  let produced = 0;
  const FIFTY_MB = 50 * 1024 * 1024;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const file = { '/malformed.xml': 'feed-malformed.xml', '/laughs.xml': 'feed-billion-laughs.xml' }[req.url ?? ''];
      if (file) return void res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(readFileSync(corpus(file)));
      // 50 MB of a feed that never closes its first item: streamed, as a real slow site would.
      const declared = req.url === '/huge-declared.xml';
      res.writeHead(200, { 'content-type': 'application/rss+xml', ...(declared ? { 'content-length': String(FIFTY_MB) } : {}) });
      const chunk = Buffer.from(`<item><title>${'x'.repeat(64 * 1024 - 30)}</title></item>\n`);
      let sent = 0;
      const pump = (): void => {
        while (sent < FIFTY_MB && !res.destroyed) {
          sent += chunk.length;
          produced += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.write('<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>');
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const reason = async (url: string): Promise<string> => {
    const err = await fetchFeed(url, 20_000).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FeedUnavailable);
    return (err as FeedUnavailable).reason;
  };

  it('feed-malformed.xml: "not an RSS or Atom feed"', async () => {
    expect(await reason(`${base}/malformed.xml`)).toMatch(/^not an RSS or Atom feed \(/);
  });

  it('feed-billion-laughs.xml: entities declared in a DTD are never expanded', async () => {
    const rss = process.memoryUsage().rss;
    expect(await reason(`${base}/laughs.xml`)).toMatch(/^not an RSS or Atom feed \(Invalid character entity/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
  });

  it('a 50 MB answer is cut off at 5 MB, streamed or declared in Content-Length', async () => {
    expect(await reason(`${base}/huge.xml`)).toBe('the feed is larger than 5 MB (stopped reading there)');
    // The reader stopped: the server could not push the whole 50 MB (socket buffers hold a few MB at most).
    expect(produced).toBeLessThan(20 * 1024 * 1024);
    expect(await reason(`${base}/huge-declared.xml`)).toBe('the feed is larger than 5 MB (stopped reading there)');
  });
});

// ------------------------------------------------------ HTTP, every route

describe('HTTP bodies, params and query strings on every route', () => {
  let app: FastifyInstance;
  let token = '';

  beforeAll(async () => {
    app = await buildServer(config, handle, silentLogger());
    await app.ready();
    await addAccount(handle.redis, handle.prefix, 'corpus-admin@example.org', 'admin', new Date());
    token = await createToken(handle.redis, handle.prefix, 'corpus-admin@example.org', 'corpus', new Date());
  });
  afterAll(async () => {
    await app?.close();
  });

  const BODIES: Array<[string, string, string]> = [
    ['invalid JSON', 'application/json', '{"title": '],
    ['a JSON array', 'application/json', '[1,2]'],
    ['a JSON string', 'application/json', '"hello"'],
    ['wrong types', 'application/json', '{"title":5,"kind":[],"send_at":{},"channels":"x","email":7,"at":1,"password":[],"list":null}'],
    ['unknown fields', 'application/json', '{"zzz":1,"admin":true,"role":"admin"}'],
    ['__proto__', 'application/json', '{"__proto__":{"polluted":1},"channels":{"__proto__":{"polluted":1}}}'],
    ['constructor.prototype', 'application/json', '{"constructor":{"prototype":{"polluted":1}}}'],
    ['over the size limit (2 MB)', 'application/json', `{"title":"${'x'.repeat(2 * 1024 * 1024)}"}`],
    ['a wrong content type', 'application/xml', '<campaign><title>x</title></campaign>'],
    ['a form that pollutes', 'application/x-www-form-urlencoded', '__proto__[polluted]=1&constructor[prototype][polluted]=1&title=x&channels[email][list]=x'],
    ['multipart without a boundary', 'multipart/form-data', 'garbage'],
    ['multipart cut short', 'multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nemail\r\n'],
  ];
  const PARAMS = ['..%2F..%2Fetc%2Fpasswd', '%00', '__proto__', 'constructor', '%E0%A4%A', 'x'.repeat(5000), '%F0%9F%92%A9', '%27%22%3E%3Cscript%3E'];
  const QUERY = '?__proto__[polluted]=1&constructor[prototype][polluted]=1&from=%ZZ&to=2026-13-45&measure=__proto__&format=xml&week=2026-W99&since=yesterday&next=%2F%2Fevil.example&source=1&source=2&id[]=1';

  async function check(method: string, url: string, headers: Record<string, string>, payload?: string): Promise<void> {
    const what = `${method} ${url.slice(0, 120)} ${JSON.stringify(headers)}`;
    const res = await app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(payload !== undefined ? { payload } : {}) });
    expect(res.statusCode, `${what} → ${res.statusCode} ${res.body.slice(0, 300)}`).toBeLessThan(500);
    expectNoInternals(res.body, what);
    expect(Object.prototype, what).not.toHaveProperty('polluted');
    if (res.statusCode >= 400) {
      const type = String(res.headers['content-type']);
      if (type.startsWith('application/json')) expect(Object.keys(res.json<object>()), what).toEqual(expect.arrayContaining([expect.stringMatching(/^(code|error)$/)]));
      else expect(type, what).toMatch(url.startsWith('/api/') ? /^$/ : /^text\/(html|plain)/);
    }
  }

  /** Runs a route's hostile requests; none of them, whatever its answer, may change Redis. */
  async function writesNothing(route: string, requests: () => Promise<void>): Promise<void> {
    const before = await snapshot();
    await requests();
    expect(changed(before, await snapshot()), route).toEqual([]);
  }

  const fill = (url: string, value: string) => url.replace(/:[A-Za-z]+/g, value).replace(/\*$/, value);

  it('every route taking a body (POST, PUT, PATCH, DELETE), as an admin: hostile bodies get a 4xx (or a harmless answer) and write nothing', async () => {
    const routes = app.routeTable().filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method));
    expect(routes.length).toBeGreaterThan(15);
    for (const r of routes) {
      await writesNothing(`${r.method} ${r.url}`, async () => {
        for (const [, type, payload] of BODIES) {
          for (const accept of ['application/json', 'text/html']) await check(r.method, fill(r.url, 'cx1'), { 'content-type': type, accept }, payload);
        }
      });
    }
  }, 90_000); // ~800 requests: seconds on an idle machine, more while the whole suite runs beside it

  it('the refused CSV files through POST /api/v1/audience/lists/:list/import: 400 naming the line, nothing written', async () => {
    for (const c of CSV_CASES.filter((x) => x.refused)) {
      const payload = readFileSync(c.file());
      const before = await snapshot();
      const res = await app.inject({ method: 'POST', url: '/api/v1/audience/lists/api-corpus/import', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, payload });
      expect(res.statusCode, `${c.name}: ${res.body.slice(0, 300)}`).toBe(400);
      expect(res.json<{ code: string; message: string }>()).toMatchObject({ code: 'CRIER_ERR_INPUT', message: expect.stringMatching(new RegExp(`:${c.refused!.line}: `)) });
      expectNoInternals(res.body, c.name);
      expect(changed(before, await snapshot()), c.name).toEqual([]);
    }
  });

  it('POST /api/v1/campaigns with well-formed JSON carrying hostile values: 400 naming the field, nothing written', async () => {
    const base = { title: 'T', kind: 'social', send_at: '2099-12-01 09:00', channels: { mastodon: { text: 'hi' } } };
    const cases: Array<[object, RegExp]> = [
      [{ ...base, title: 'x'.repeat(10_000) }, /title/],
      [{ ...base, title: 'Hello\r\nBcc: x@example.org' }, /title.*one line/],
      [{ ...base, channels: { constructor: {} } }, /unknown channel "constructor"/],
      [{ ...base, channels: { toString: { text: 'x' } } }, /unknown channel "toString"/],
      [{ ...base, timezone: 'constructor' }, /unknown time zone/],
      [{ ...base, send_at: '2027-03-28 01:30', timezone: 'Europe/London' }, /does not exist/],
      [{ ...base, send_at: '2099-02-30 09:00' }, /not a valid date/],
      [{ ...base, channels: { email: { list: 'news', subject: 'Hi\r\nBcc: x@example.org', body: 'b' } } }, /subject must be one line/],
      [{ ...base, channels: { email: { list: 'news', subject: 'S', body_file: '../../../../etc/passwd' } } }, /body_file/],
      [{ ...base, channels: { mastodon: { text: 'hi', images: [{ file: '/etc/passwd', alt: 'a' }] } } }, /images/],
    ];
    for (const [body, why] of cases) {
      const before = await snapshot();
      const res = await app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: { authorization: `Bearer ${token}` }, payload: body });
      const what = JSON.stringify(body).slice(0, 160);
      expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBe(400);
      expect(res.json<{ message: string }>().message, what).toMatch(why);
      expectNoInternals(res.body, what);
      expect(changed(before, await snapshot()), what).toEqual([]);
    }
  });

  it('every GET route: hostile path params and query strings', async () => {
    const routes = app.routeTable().filter((r) => r.method === 'GET');
    expect(routes.length).toBeGreaterThan(25);
    for (const r of routes) {
      const values = /[:*]/.test(r.url) ? PARAMS : ['cx1'];
      await writesNothing(`GET ${r.url}`, async () => {
        for (const v of values) {
          for (const accept of ['application/json', 'text/html']) await check('GET', `${fill(r.url, v)}${QUERY}`, { accept });
        }
      });
    }
  }, 90_000); // ~800 requests: seconds on an idle machine, more while the whole suite runs beside it
});

// ------------------------------------------------- the CLI, a few real runs

describe('the built CLI on hostile files', () => {
  function crier(...args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [CLI_JS, ...args], {
        cwd: os.tmpdir(),
        env: { PATH: process.env.PATH, REDIS_URL: config.redisUrl!, CRIER_CONFIG: config.configFile, CRIER_DATA_DIR: config.dataDir, CRIER_SECRET: 'test-secret-0123456789abcdef', LOG_LEVEL: 'warn' },
      });
      let stderr = '';
      let stdout = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stderr, stdout }));
    });
  }

  it('campaign create (wrong types, DST gap) and subscribers import (NUL byte): exit 1, a line per mistake, no stack trace, nothing written', async () => {
    const before = await snapshot();
    const runs = await Promise.all([
      crier('campaign', 'create', corpus('wrong-types.yaml')),
      crier('campaign', 'create', corpus('dst-gap.yaml')),
      crier('subscribers', 'import', corpus('nul-byte.csv'), '--list', 'cli-corpus'),
    ]);
    const [types, gap, nul] = runs;
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(1);
      expectNoInternals(r.stderr.replaceAll(corpus(''), ''), r.stderr);
      for (const line of r.stderr.trimEnd().split('\n')) expect(line).toMatch(/^crier: \S+:\d+(, field "[^"]+")?: /);
    }
    expect(types!.stderr.trimEnd().split('\n')).toHaveLength(5);
    expect(gap!.stderr).toMatch(/dst-gap\.yaml:3, field "send_at": /);
    expect(nul!.stderr).toMatch(/nul-byte\.csv:3: not a CSV file/);
    expect(changed(before, await snapshot())).toEqual([]);
  });
});
