import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { DateTime } from 'luxon';
import { listReleases, type PressRelease } from '../channels/press/store.js';
import type { Config } from './config.js';
import { UserError } from './errors.js';
import type { Logger } from './log.js';
import { appendAudit } from './domain/audit.js';
import type { CampaignDraft } from './domain/campaign-file.js';
import { findCampaign, type Campaign } from './domain/campaigns.js';
import { fetchFeed, FeedUnavailable, type FeedItem } from './domain/website-feed.js';
import type { Scheduler } from './scheduler.js';

/**
 * The monthly newsletter run: drafts that month's newsletter from a Markdown
 * template, the website feed's items since the last run and the press
 * releases published in the same period, then leaves it awaiting approval
 * (or scheduled, with newsletter.approval: false). One newsletter per month:
 * a second run for the same month returns the first one's campaign unless
 * that was cancelled.
 */

export const NEWSLETTER_QUEUE = 'newsletter';
export const NEWSLETTER_SCHEDULER_ID = 'newsletter-monthly';
export const NEWSLETTER_AUTHOR = 'newsletter-run';

export interface NewsletterDeps {
  config: Config;
  redis: Redis;
  scheduler: Scheduler;
  log: Logger;
  now(): Date;
  sleep?(ms: number): Promise<void>;
}

export interface NewsletterResult {
  campaign: Campaign;
  /** False when this month's newsletter already existed. */
  created: boolean;
  month: string;
  since: Date;
  until: Date;
  news: number;
  pressReleases: number;
  /** What the draft is made without (the feed was down), or ''. */
  missing: string;
}

const keys = (prefix: string) => ({ last: `${prefix}:newsletter:last_until`, month: (m: string) => `${prefix}:newsletter:month:${m}` });

export function parseMonth(text: string): string {
  const m = /^(\d{4})-(\d{2})$/.exec(text.trim());
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 12) throw new UserError(`"${text}" is not a month; write YYYY-MM (e.g. 2026-12)`, 'CRIER_ERR_INPUT', { field: '--month' });
  return text.trim();
}

/** newsletter.template, relative to the configuration file's folder, else to the working directory (the repository's layout). */
export function templatePath(config: Config): string {
  const beside = path.resolve(config.configFile ? path.dirname(config.configFile) : process.cwd(), config.newsletter.template);
  if (existsSync(beside)) return beside;
  const here = path.resolve(config.newsletter.template);
  return existsSync(here) ? here : beside;
}

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;
const KNOWN = new Set(['month', 'organisation', 'news', 'press_releases', 'name']);

/** Reads the template and checks every placeholder before anything is fetched or written. */
export function readTemplate(config: Config): string {
  const file = templatePath(config);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError('cannot read the newsletter template (newsletter.template in the configuration)', 'CRIER_ERR_CONFIG', { file });
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    for (const m of lines[i]!.matchAll(PLACEHOLDER)) {
      if (!KNOWN.has(m[1]!)) {
        throw new UserError(`unknown placeholder {{${m[1]}}} (known: ${[...KNOWN].map((k) => `{{${k}}}`).join(', ')})`, 'CRIER_ERR_CONFIG', { file, line: i + 1 });
      }
    }
  }
  return text;
}

/** Feed text goes into Markdown: no raw HTML, no link syntax of its own. */
function inline(text: string): string {
  return text
    .replace(/[<>]/g, (c) => (c === '<' ? '‹' : '›'))
    .replace(/\[/g, '(')
    .replace(/\]/g, ')')
    .replace(/\s+/g, ' ')
    .trim();
}

function safeUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.href.replace(/[()<> ]/g, (c) => encodeURIComponent(c));
  } catch {
    return undefined;
  }
}

function newsList(items: FeedItem[], zone: string, missing: string): string {
  if (items.length === 0) return missing ? '_No website news this time._' : '_No new stories on our website since the last newsletter._';
  return items
    .map((it) => {
      const url = safeUrl(it.link);
      const title = inline(it.title);
      const date = it.published ? ` (${DateTime.fromJSDate(it.published, { zone }).toFormat('d LLLL')})` : '';
      const summary = it.summary ? `  \n  ${inline(it.summary).slice(0, 240)}${it.summary.length > 240 ? '…' : ''}` : '';
      return `- ${url ? `[${title}](${url})` : title}${date}${summary}`;
    })
    .join('\n');
}

function pressList(releases: PressRelease[], config: Config): string {
  if (releases.length === 0) return '_No press releases this month._';
  return releases
    .map((r) => {
      const date = DateTime.fromJSDate(r.publishedAt, { zone: config.timezone }).toFormat('d LLLL');
      return `- [${inline(r.headline)}](${config.publicUrl}/press/${r.slug}) (${date})`;
    })
    .join('\n');
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (whole, key: string) => (key === 'name' ? whole : (values[key] ?? whole)));
}

/** The feed, tried `attempts` times in this process (the CLI run). */
export async function fetchWithRetries(deps: NewsletterDeps, url: string, attempts: number): Promise<FeedItem[]> {
  const { feed_retry_ms, feed_timeout_ms } = deps.config.newsletter;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchFeed(url, feed_timeout_ms);
    } catch (err) {
      if (!(err instanceof FeedUnavailable) || attempt >= attempts) throw err;
      deps.log.warn({ url, attempt, err: err.reason }, 'website feed unavailable; retrying');
      await sleep(feed_retry_ms * 2 ** (attempt - 1));
    }
  }
}

export function monthOf(at: Date, zone: string): string {
  return DateTime.fromJSDate(at, { zone }).toFormat('yyyy-MM');
}

export interface RunOptions {
  month?: string;
  /** How the feed is read: default in-process retries (newsletter.feed_attempts). The worker passes one try and decides itself. */
  feed?: () => Promise<FeedItem[]>;
  actor?: string;
}

export async function runNewsletter(deps: NewsletterDeps, opts: RunOptions = {}): Promise<NewsletterResult> {
  const { config, redis } = deps;
  const prefix = config.redis_prefix;
  const zone = config.timezone;
  const now = deps.now();
  const month = opts.month ? parseMonth(opts.month) : monthOf(now, zone);
  const k = keys(prefix);
  const template = readTemplate(config);

  const before = await redis.hgetall(k.month(month));
  const existing = before.id ? await findCampaign(redis, prefix, before.id) : null;
  const monthStart = DateTime.fromFormat(month, 'yyyy-MM', { zone });
  const lastUntil = await redis.get(k.last);
  // Since the last run (a month re-run after its draft was cancelled: the same period as that draft);
  // the first run covers the month before the newsletter's month.
  const since = before.since ? new Date(before.since) : lastUntil ? new Date(lastUntil) : monthStart.minus({ months: 1 }).toJSDate();
  if (existing && existing.status !== 'cancelled') {
    return { campaign: existing, created: false, month, since, until: now, news: 0, pressReleases: 0, missing: existing.note ?? '' };
  }

  let missing = '';
  let items: FeedItem[] = [];
  const url = config.newsletter.feed_url;
  if (!url) {
    missing = 'no website feed is configured (newsletter.feed_url): the draft has press releases only';
  } else {
    try {
      items = await (opts.feed ?? (() => fetchWithRetries(deps, url, config.newsletter.feed_attempts)))();
    } catch (err) {
      if (!(err instanceof FeedUnavailable)) throw err;
      missing = `${err.message}; its news is missing from this draft (add it by hand, or cancel this draft and run \`crier newsletter run --month ${month}\` again)`;
    }
  }
  const inPeriod = (d: Date) => d.getTime() > since.getTime() && d.getTime() <= now.getTime();
  const news = items
    .filter((it) => it.published && inPeriod(it.published))
    .sort((a, b) => b.published!.getTime() - a.published!.getTime())
    .slice(0, config.newsletter.max_items);
  const releases = (await listReleases(redis, prefix, 500, now)).filter((r) => inPeriod(r.publishedAt)).reverse();

  const monthName = monthStart.setLocale('en-GB').toFormat('LLLL yyyy');
  const organisation = config.organisation ?? 'Crier';
  const values = { month: monthName, organisation, news: newsList(news, zone, missing), press_releases: pressList(releases, config) };
  const draft: CampaignDraft = {
    title: `${monthName} newsletter`,
    kind: 'newsletter',
    sendAt: new Date(now.getTime() + config.newsletter.send_after_minutes * 60_000),
    timezone: zone,
    essential: false,
    channels: { email: { list: config.newsletter.list, subject: fill(config.newsletter.subject, values), body: fill(template, values) } },
  };
  const campaign = await deps.scheduler.create(draft, {
    actor: NEWSLETTER_AUTHOR,
    ...(config.newsletter.approval ? { requireApproval: true } : {}),
    ...(missing ? { note: missing } : {}),
  });
  await redis.multi().hset(k.month(month), { id: campaign.id, since: since.toISOString() }).set(k.last, now.toISOString()).exec();
  await appendAudit(redis, prefix, {
    actor: opts.actor ?? NEWSLETTER_AUTHOR,
    action: 'newsletter.run',
    subject: campaign.id,
    detail: { month, news: news.length, press_releases: releases.length, ...(missing ? { missing } : {}) },
  });
  deps.log.info({ campaignId: campaign.id, month, news: news.length, pressReleases: releases.length, missing: missing || undefined }, 'newsletter drafted');
  return { campaign, created: true, month, since, until: now, news: news.length, pressReleases: releases.length, missing };
}
