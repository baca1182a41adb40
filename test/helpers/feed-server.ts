import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The organisation's website, as far as the newsletter run sees it: serves the
 * real-world feeds in test/fixtures/feeds/ on 127.0.0.1 exactly as
 * stored (no charset in Content-Type, so the XML prolog decides), plus
 * scripted outages. `hits` counts requests per path.
 */

/** `test/fixtures/feeds` (copied from the project's shared fixtures, so any clone has them). */
export const FEED_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'feeds');

export interface FeedServer {
  base: string;
  hits: Map<string, number>;
  /** Answer the next `n` requests (any path) with this status. */
  failNext(n: number, status?: number): void;
  /** Serve this body at this path (e.g. a feed generated for "now"). */
  set(pathname: string, body: string): void;
  close(): Promise<void>;
}

export async function startFeedServer(): Promise<FeedServer> {
  const dir = FEED_FIXTURES;
  const hits = new Map<string, number>();
  const extra = new Map<string, string>();
  const failures: number[] = [];
  const server: Server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(pathname, (hits.get(pathname) ?? 0) + 1);
    const fail = failures.shift();
    if (fail) return void res.writeHead(fail, { 'content-type': 'text/plain' }).end('unavailable');
    const body = extra.get(pathname);
    if (body !== undefined) return void res.writeHead(200, { 'content-type': 'application/rss+xml; charset=utf-8' }).end(body);
    try {
      const bytes = readFileSync(path.join(dir, path.basename(pathname)));
      res.writeHead(200, { 'content-type': 'application/xml' }).end(bytes);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    failNext(n, status = 503) {
      for (let i = 0; i < n; i++) failures.push(status);
    },
    set(pathname, body) {
      extra.set(pathname, body);
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** An RSS 2.0 feed whose items are dated `ageMs` ago each. */
export function rssWith(items: Array<{ title: string; link: string; ageMs: number }>, now = Date.now()): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body = items.map((i) => `<item><title>${esc(i.title)}</title><link>${esc(i.link)}</link><pubDate>${new Date(now - i.ageMs).toUTCString()}</pubDate><description>${esc(i.title)}: more on our website.</description></item>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>News</title><link>https://www.example.org</link><description>News</description>${body}</channel></rss>`;
}
