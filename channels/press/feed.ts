import { DateTime } from 'luxon';
import type { Organisation } from '../../src/organisation.js';
import { escapeHtml } from '../../src/html-escape.js';
import { renderPage } from '../../src/server/html.js';
import type { PressRelease } from './store.js';

/** The public face of published press releases: RSS 2.0, Atom 1.0 and one HTML page each. */

/** The feeds' title when no organisation is configured. */
export const DEFAULT_SITE_TITLE = 'Press releases';

export interface FeedSite {
  title: string;
  /** Base URL without trailing slash (config.publicUrl). */
  publicUrl: string;
  /** For dates shown on pages (default Europe/London). */
  timezone?: string;
  /** The feed's updated time when there are no releases yet. */
  now?: Date;
  /** Masthead, footer and press contact of the pages. */
  org?: Organisation;
}

/** XML 1.0 forbids most C0 controls even escaped; a stray one would make the whole feed unparseable. */
function stripInvalidXml(s: string): string {
  return s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '');
}

export function escapeXml(s: string): string {
  return escapeHtml(stripInvalidXml(s));
}

function cdata(s: string): string {
  return `<![CDATA[${stripInvalidXml(s).replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
}

const ALLOWED_TAGS = new Set([
  'p', 'br', 'hr', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'strong', 'em', 'b', 'i', 'u', 's',
  'blockquote', 'code', 'pre', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'sup', 'sub',
]);
const VOID_TAGS = new Set(['br', 'hr']);
const DROP_WITH_CONTENT = /<(script|style|iframe|object|embed|template|noscript|textarea|title|svg|math)\b[^>]*>[\s\S]*?<\/\1\s*>/gi;

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);?/gi, (m, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(Number.parseInt(lower.slice(2), 16) || 0xfffd);
    if (lower.startsWith('#')) return String.fromCodePoint(Number(lower.slice(1)) || 0xfffd);
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower] ?? m;
  });
}

/** Only links a reader can follow safely: http(s), mailto, and relative ones. */
function safeHref(raw: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const href = decodeEntities(raw).replace(/[\u0000-\u0020\u007f]/g, '');
  if (/^(https?:|mailto:)/i.test(href)) return href;
  // A colon before any / ? # would be a scheme (javascript:, data: …).
  return /^[^/?#]*:/.test(href) ? undefined : href;
}

/**
 * The release body as it may appear on a public page: an allow-list of
 * formatting tags without attributes (links keep a checked href), every other
 * tag dropped, text kept, tags balanced so the body cannot break the page.
 */
export function safeHtml(html: string): string {
  const out: string[] = [];
  const open: string[] = [];
  for (const token of html.replace(DROP_WITH_CONTENT, '').split(/(<[^>]*>)/)) {
    if (!token.startsWith('<') || !token.endsWith('>')) {
      out.push(token.replace(/</g, '&lt;').replace(/>/g, '&gt;'));
      continue;
    }
    const m = /^<(\/?)\s*([a-zA-Z][a-zA-Z0-9]*)([\s\S]*)>$/.exec(token);
    if (!m) continue;
    const closing = m[1] === '/';
    let name = m[2]!.toLowerCase();
    if (name === 'h1') name = 'h2';
    if (!ALLOWED_TAGS.has(name)) continue;
    if (closing) {
      const at = open.lastIndexOf(name);
      if (at === -1) continue;
      while (open.length > at) out.push(`</${open.pop()}>`);
      continue;
    }
    if (VOID_TAGS.has(name)) {
      out.push(`<${name}>`);
      continue;
    }
    let attrs = '';
    if (name === 'a') {
      const hm = /\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i.exec(m[3] ?? '');
      const href = hm ? safeHref(hm[1] ?? hm[2] ?? hm[3] ?? '') : undefined;
      if (href !== undefined) attrs = ` href="${escapeXml(href)}"`;
    }
    out.push(`<${name}${attrs}>`);
    open.push(name);
  }
  while (open.length) out.push(`</${open.pop()}>`);
  return stripInvalidXml(out.join(''));
}

export function releaseUrl(site: FeedSite, slug: string): string {
  return `${site.publicUrl}/press/${encodeURIComponent(slug)}`;
}

function newest(releases: PressRelease[], site: FeedSite): Date {
  const times = releases.map((r) => r.publishedAt.getTime());
  return times.length ? new Date(Math.max(...times)) : (site.now ?? new Date());
}

function summary(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1).replace(/\s+\S*$/, '')}…` : flat;
}

/** RSS 2.0; dates in RFC 822 form (Date#toUTCString gives the RFC 1123 profile of it). */
export function renderRss(releases: PressRelease[], site: FeedSite): string {
  const self = `${site.publicUrl}/press.rss`;
  const items = releases.map((r) => {
    const url = releaseUrl(site, r.slug);
    return [
      '    <item>',
      `      <title>${escapeXml(r.headline)}</title>`,
      `      <link>${escapeXml(url)}</link>`,
      `      <guid isPermaLink="true">${escapeXml(url)}</guid>`,
      `      <pubDate>${r.publishedAt.toUTCString()}</pubDate>`,
      `      <description>${cdata(safeHtml(r.bodyHtml))}</description>`,
      '    </item>',
    ].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">',
    '  <channel>',
    `    <title>${escapeXml(site.title)}</title>`,
    `    <link>${escapeXml(`${site.publicUrl}/press`)}</link>`,
    `    <description>${escapeXml(site.title === DEFAULT_SITE_TITLE ? site.title : `Press releases from ${site.title}`)}</description>`,
    '    <language>en-gb</language>',
    `    <lastBuildDate>${newest(releases, site).toUTCString()}</lastBuildDate>`,
    '    <generator>Crier</generator>',
    `    <atom:link href="${escapeXml(self)}" rel="self" type="application/rss+xml"/>`,
    ...items,
    '  </channel>',
    '</rss>',
    '',
  ].join('\n');
}

/** Atom 1.0 (RFC 4287): the entry id is the release's permanent URL. */
export function renderAtom(releases: PressRelease[], site: FeedSite): string {
  const self = `${site.publicUrl}/press.atom`;
  const entries = releases.map((r) => {
    const url = releaseUrl(site, r.slug);
    const at = r.publishedAt.toISOString();
    return [
      '  <entry>',
      `    <id>${escapeXml(url)}</id>`,
      `    <title type="text">${escapeXml(r.headline)}</title>`,
      `    <updated>${at}</updated>`,
      `    <published>${at}</published>`,
      `    <link rel="alternate" type="text/html" href="${escapeXml(url)}"/>`,
      `    <summary type="text">${escapeXml(summary(r.bodyText))}</summary>`,
      `    <content type="html">${escapeXml(safeHtml(r.bodyHtml))}</content>`,
      '  </entry>',
    ].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-GB">',
    `  <id>${escapeXml(self)}</id>`,
    `  <title type="text">${escapeXml(site.title)}</title>`,
    `  <updated>${newest(releases, site).toISOString()}</updated>`,
    `  <link rel="self" type="application/atom+xml" href="${escapeXml(self)}"/>`,
    `  <link rel="alternate" type="text/html" href="${escapeXml(`${site.publicUrl}/press`)}"/>`,
    `  <author><name>${escapeXml(site.title)}</name></author>`,
    '  <generator>Crier</generator>',
    ...entries,
    '</feed>',
    '',
  ].join('\n');
}

const SECTION = 'Press room';

function feedHead(site: FeedSite): string {
  const rss = `${site.publicUrl}/press.rss`;
  const atom = `${site.publicUrl}/press.atom`;
  return `<link rel="alternate" type="application/rss+xml" title="${escapeHtml(site.title)} (RSS)" href="${escapeHtml(rss)}">
<link rel="alternate" type="application/atom+xml" title="${escapeHtml(site.title)} (Atom)" href="${escapeHtml(atom)}">
`;
}

/** The press contact box and the feed links, at the foot of every press page. */
function pressFooter(site: FeedSite, withContact: boolean): string {
  const rss = `${site.publicUrl}/press.rss`;
  const atom = `${site.publicUrl}/press.atom`;
  const c = site.org?.pressContact;
  const contact = c && withContact
    ? `<p>Media enquiries: ${[c.name ? escapeHtml(c.name) : '', c.email ? `<a href="mailto:${escapeHtml(c.email)}">${escapeHtml(c.email)}</a>` : '', c.phone ? `<a href="tel:${escapeHtml(c.phone.replace(/[^+\d]/g, ''))}">${escapeHtml(c.phone)}</a>` : ''].filter(Boolean).join(' · ')}</p>`
    : '';
  return `${contact}<p>Follow our press releases: <a href="${escapeHtml(rss)}">RSS feed</a> · <a href="${escapeHtml(atom)}">Atom feed</a></p>`;
}

function page(site: FeedSite, title: string, main: string, withContact = true): string {
  return renderPage({
    title,
    org: site.org,
    fallbackName: site.title,
    publicUrl: site.publicUrl,
    main,
    section: SECTION,
    home: `${site.publicUrl}/press`,
    head: feedHead(site),
    footer: pressFooter(site, withContact),
  });
}

function localDate(at: Date, site: FeedSite, format: string): string {
  return DateTime.fromJSDate(at, { zone: site.timezone ?? 'Europe/London' }).setLocale('en-GB').toFormat(format);
}

/** A small accessible page for one release: headline, date in local time, body (ending with ENDS and the notes). */
export function renderReleasePage(release: PressRelease, site: FeedSite): string {
  const main = `<p class="meta"><a href="${escapeHtml(`${site.publicUrl}/press`)}">All press releases</a></p>
<article>
<h1>${escapeHtml(release.headline)}</h1>
<p class="meta">Press release · <time datetime="${release.publishedAt.toISOString()}">${escapeHtml(localDate(release.publishedAt, site, 'd LLLL yyyy, HH:mm'))}</time></p>
${safeHtml(release.bodyHtml)}
</article>`;
  // A release that ends with its own media enquiries line does not repeat it in the footer.
  return page(site, release.headline, main, !/^Media enquiries:/m.test(release.bodyText));
}

export interface PressRoomPage {
  /** 1-based. */
  page: number;
  /** Whether an older page exists. */
  more: boolean;
}

/** The press room: published releases, newest first, each with its date and opening lines. */
export function renderPressRoom(releases: PressRelease[], site: FeedSite, at: PressRoomPage = { page: 1, more: false }): string {
  const items = releases.map(
    (r) => `<li>
<h2><a href="${escapeHtml(releaseUrl(site, r.slug))}">${escapeHtml(r.headline)}</a></h2>
<p class="meta"><time datetime="${r.publishedAt.toISOString()}">${escapeHtml(localDate(r.publishedAt, site, 'd LLLL yyyy'))}</time></p>
<p>${escapeHtml(summary(r.bodyText.split(/\n\s*\*{0,2}ENDS\*{0,2}\s*\n/)[0] ?? '', 220))}</p>
</li>`,
  );
  const pager = [
    at.page > 1 ? `<a href="${escapeHtml(`${site.publicUrl}/press${at.page === 2 ? '' : `?page=${at.page - 1}`}`)}">Newer releases</a>` : '',
    at.more ? `<a href="${escapeHtml(`${site.publicUrl}/press?page=${at.page + 1}`)}">Older releases</a>` : '',
  ].filter(Boolean);
  const list = items.length
    ? `<ol class="releases">\n${items.join('\n')}\n</ol>`
    : `<p>${at.page > 1 ? 'There are no older press releases.' : 'No press releases have been published yet.'}</p>`;
  const main = `<h1>Press releases</h1>
${list}
${pager.length ? `<p class="pager">${pager.join(' · ')}</p>` : ''}`;
  return page(site, at.page > 1 ? `Press releases, page ${at.page}` : 'Press releases', main);
}

export function renderNotFoundPage(site: FeedSite): string {
  return page(site, 'Press release not found', `<h1>Press release not found</h1>\n<p>There is no published press release at this address. <a href="${escapeHtml(`${site.publicUrl}/press`)}">See all press releases</a>.</p>`);
}
