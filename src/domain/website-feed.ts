import Parser from 'rss-parser';
import { BodyTooLarge, formatBytes, readBodyLimited } from './bounded-body.js';
import { decodeFeed } from './feed-text.js';

/**
 * The organisation's website feed (RSS or Atom), read with rss-parser. The
 * bytes are fetched here rather than by rss-parser's parseURL so that a
 * request that times out is aborted, and so that a feed in another encoding
 * (declared in Content-Type or in the XML prolog, e.g. ISO-8859-1) is decoded
 * correctly.
 */

export interface FeedItem {
  title: string;
  link?: string;
  /** Undated items cannot be placed in a run's period. */
  published?: Date;
  summary?: string;
}

export class FeedUnavailable extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`the website feed ${url} could not be read: ${reason}`);
    this.name = 'FeedUnavailable';
  }
}

/** The most of a feed read: a real site's feed is tens of kB; past this it is a mistake or an attack. */
export const MAX_FEED_BYTES = 5 * 1024 * 1024;

const clean = (text: string | undefined): string | undefined => {
  const t = text
    ?.replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return t || undefined;
};

export async function fetchFeed(url: string, timeoutMs: number, maxBytes = MAX_FEED_BYTES): Promise<FeedItem[]> {
  let body: Buffer;
  let contentType: string | null;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8' } });
    if (!res.ok) throw new FeedUnavailable(url, `HTTP ${res.status}`);
    body = await readBodyLimited(res, maxBytes);
    contentType = res.headers.get('content-type');
  } catch (err) {
    if (err instanceof FeedUnavailable) throw err;
    if (err instanceof BodyTooLarge) throw new FeedUnavailable(url, `the feed is larger than ${formatBytes(maxBytes)} (stopped reading there)`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new FeedUnavailable(url, reason);
  }
  const xml = decodeFeed(body, contentType);
  let feed: Awaited<ReturnType<Parser['parseString']>>;
  try {
    // A parser per feed: rss-parser keeps one xml2js parser, and after a feed that failed to parse
    // it accepted the next hostile one (a DTD's entities left as text) instead of refusing it.
    feed = await new Parser().parseString(xml);
  } catch (err) {
    throw new FeedUnavailable(url, `not an RSS or Atom feed (${(err as Error).message.split('\n')[0]})`);
  }
  return feed.items.map((item) => {
    const when = item.isoDate ?? item.pubDate;
    const date = when ? new Date(when) : undefined;
    return {
      title: clean(item.title) ?? clean(item.contentSnippet)?.slice(0, 80) ?? '(untitled)',
      ...(item.link ? { link: item.link } : {}),
      ...(date && !Number.isNaN(date.getTime()) ? { published: date } : {}),
      ...(clean(item.contentSnippet) ? { summary: clean(item.contentSnippet) } : {}),
    };
  });
}
