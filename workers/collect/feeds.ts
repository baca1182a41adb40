import { BodyTooLarge, readBodyLimited } from '../../src/domain/bounded-body.js';
import { decodeFeed } from '../../src/domain/feed-text.js';
import { defaultHttpError } from './http.js';
import { TransientError, type CollectContext } from './types.js';

/**
 * News feeds as published: RSS 2.0 or Atom, in whatever encoding the server
 * or the XML declaration names (ISO-8859-1, Windows-1252 …), with fields
 * missing. rss-parser reads the text; we fetch and decode the bytes first,
 * because it assumes UTF-8.
 */

export interface FeedItem {
  feed: string;
  /** guid, link, or title + date: what identifies the item across runs. */
  key: string;
  title: string;
  /** Plain text of the summary or content, when any. */
  text: string;
  link?: string;
  published?: Date;
}

const MAX_BYTES = 10 * 1024 * 1024;

function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && '_' in v && typeof (v as { _: unknown })._ === 'string') return (v as { _: string })._;
  return '';
}

const plain = (html: string) =>
  html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(amp|lt|gt|quot|#39|nbsp);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", nbsp: ' ' })[e] ?? ' ')
    .replace(/\s+/g, ' ')
    .trim();

export async function parseFeed(feed: string, xml: string): Promise<FeedItem[]> {
  // Loaded on first use: only the media collector needs it.
  const { default: Parser } = await import('rss-parser');
  const parsed = await new Parser().parseString(xml);
  const out: FeedItem[] = [];
  for (const item of parsed.items ?? []) {
    const title = plain(str(item.title));
    const text = plain(str(item.contentSnippet) || str(item.summary) || str(item.content));
    if (!title && !text) continue;
    const iso = item.isoDate ?? item.pubDate;
    const published = iso && Number.isFinite(Date.parse(iso)) ? new Date(Date.parse(iso)) : undefined;
    const link = str(item.link) || undefined;
    const key = str(item.guid) || link || `${title}|${published?.toISOString() ?? ''}`;
    out.push({ feed, key, title, text, ...(link ? { link } : {}), ...(published ? { published } : {}) });
  }
  return out;
}

export async function fetchFeed(ctx: CollectContext, url: string): Promise<FeedItem[]> {
  let res: Response;
  try {
    res = await ctx.fetch(url, { headers: { accept: 'application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5', 'user-agent': 'Crier' }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new TransientError(`cannot reach ${url}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`);
  }
  if (!res.ok) throw await defaultHttpError(`feed ${url}`, res, ctx.now());
  let bytes: Buffer;
  try {
    bytes = await readBodyLimited(res, MAX_BYTES);
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new TransientError(`feed ${url} is larger than 10 MB (stopped reading there)`);
    throw new TransientError(`feed ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return await parseFeed(url, decodeFeed(bytes, res.headers.get('content-type')));
  } catch (err) {
    throw new TransientError(`feed ${url} is not RSS or Atom: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}
