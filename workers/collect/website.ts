import type { Config } from '../../src/config.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { dateRange, periodOf, previousPeriod, type Period } from '../../src/domain/periods.js';
import { num, requestJson } from './http.js';
import { NeedsReauthError, PermanentError, TransientError, type CollectContext, type CollectorDefinition, type CollectResult } from './types.js';

/**
 * Website traffic from Plausible (Stats API v2) or Matomo (Reporting API), as
 * `metrics.website.provider` says (default: whichever has credentials). Each
 * run reads today and yesterday, this week and last, this month and last:
 * figures for a period still running are replaced as it fills up (the earlier
 * reading kept in history). Unique visitors, bounce rate and visit length
 * cannot be added up across days, so each period is asked for as a whole.
 */

export type WebsiteProvider = 'plausible' | 'matomo';

export function websiteProvider(config: Config): WebsiteProvider | undefined {
  const p = config.plausible;
  const m = config.matomo;
  const plausible = Boolean(p.url && p.apiKey && p.siteId);
  const matomo = Boolean(m.url && m.token && m.siteId);
  const chosen = config.metrics.website.provider;
  if (chosen === 'plausible') return plausible ? 'plausible' : undefined;
  if (chosen === 'matomo') return matomo ? 'matomo' : undefined;
  return plausible ? 'plausible' : matomo ? 'matomo' : undefined;
}

export function websitePeriods(now: Date, zone: string): Period[] {
  const out: Period[] = [];
  for (const kind of ['day', 'week', 'month'] as const) {
    const p = periodOf(kind, now, zone);
    out.push(p, previousPeriod(p));
  }
  return out;
}

interface Traffic {
  visitors?: number;
  visits: number;
  pageviews: number;
  bounceRate?: number;
  visitDuration?: number;
  mobileVisits?: number;
}

const PLAUSIBLE_METRICS = ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration'] as const;

interface PlausibleAnswer {
  results?: Array<{ dimensions?: unknown[]; metrics?: unknown[] }>;
}

async function plausible(ctx: CollectContext, p: Period, count: () => void): Promise<Traffic | undefined> {
  const { url, apiKey, siteId } = ctx.config.plausible;
  const query = (body: Record<string, unknown>) =>
    ctx.limited(async () => {
      count();
      const answer = (await requestJson(ctx, {
        service: 'Plausible',
        url: `${url}/api/v2/query`,
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ site_id: siteId, date_range: dateRange(p), ...body }),
      })) as PlausibleAnswer;
      if (!answer || !Array.isArray(answer.results)) throw new TransientError('Plausible answered without results[]');
      return answer.results;
    });
  const [total] = await query({ metrics: PLAUSIBLE_METRICS });
  // Metrics come back in the order asked.
  const m = total?.metrics ?? [];
  const visits = num('Plausible', m[1], 'visits');
  const devices = await query({ metrics: ['visits'], dimensions: ['visit:device'] });
  const mobile = devices.find((r) => r.dimensions?.[0] === 'Mobile');
  return {
    visitors: num('Plausible', m[0], 'visitors'),
    visits,
    pageviews: num('Plausible', m[2], 'pageviews'),
    bounceRate: m[3] === null ? undefined : num('Plausible', m[3], 'bounce_rate'),
    visitDuration: m[4] === null ? undefined : num('Plausible', m[4], 'visit_duration'),
    mobileVisits: mobile ? num('Plausible', mobile.metrics?.[0], 'visits by device') : 0,
  };
}

/** Matomo can answer 200 with {result: "error", message}: the message says whether it is the token. */
function matomoError(body: unknown): Error | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const b = body as { result?: unknown; message?: unknown };
  if (b.result !== 'error') return undefined;
  const message = typeof b.message === 'string' ? b.message : 'unknown error';
  if (/token_auth|authenticat|access|login|permission/i.test(message)) return new NeedsReauthError(`Matomo refused the token: ${message}`);
  return new PermanentError(`Matomo error: ${message}`);
}

const MATOMO_PERIOD: Record<string, string> = { day: 'day', week: 'week', month: 'month' };
/** Matomo's device types that are phones (its "Tablet" is left out, as Plausible's is). */
const MATOMO_MOBILE = new Set(['Smartphone', 'Phablet', 'Feature phone']);

async function matomo(ctx: CollectContext, p: Period, count: () => void): Promise<Traffic | undefined> {
  const { url, token, siteId } = ctx.config.matomo;
  const endpoint = `${(url ?? '').replace(/\/+$/, '').replace(/\/index\.php$/, '')}/index.php`;
  const call = (method: string) =>
    ctx.limited(async () => {
      count();
      // token_auth goes in the POST body: Matomo 5 refuses it in the URL.
      const body = new URLSearchParams({ module: 'API', format: 'JSON', method, idSite: siteId ?? '', period: MATOMO_PERIOD[p.kind] ?? 'day', date: dateRange(p)[0], token_auth: token ?? '' });
      const answer = await requestJson(ctx, { service: 'Matomo', url: endpoint, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const err = matomoError(answer);
      if (err) throw err;
      return answer;
    });
  const summary = await call('VisitsSummary.get');
  // No data archived for the period: [] — missing, not zero.
  if (Array.isArray(summary) || !summary || typeof summary !== 'object') return undefined;
  const s = summary as Record<string, unknown>;
  const visits = num('Matomo', s.nb_visits, 'nb_visits');
  const types = await call('DevicesDetection.getType');
  const rows = Array.isArray(types) ? (types as Array<{ label?: unknown; nb_visits?: unknown }>) : [];
  const mobileVisits = rows.filter((r) => typeof r.label === 'string' && MATOMO_MOBILE.has(r.label)).reduce((a, r) => a + num('Matomo', r.nb_visits, 'nb_visits by device'), 0);
  const bounce = typeof s.bounce_rate === 'string' ? Number(s.bounce_rate.replace('%', '')) : s.bounce_rate;
  return {
    // Matomo leaves unique visitors out for weeks and months unless the site is set to process them.
    visitors: s.nb_uniq_visitors === undefined ? undefined : num('Matomo', s.nb_uniq_visitors, 'nb_uniq_visitors'),
    visits,
    pageviews: num('Matomo', s.nb_actions, 'nb_actions'),
    bounceRate: bounce === undefined ? undefined : num('Matomo', bounce, 'bounce_rate'),
    visitDuration: s.avg_time_on_site === undefined ? undefined : num('Matomo', s.avg_time_on_site, 'avg_time_on_site'),
    mobileVisits,
  };
}

export async function collectWebsite(ctx: CollectContext): Promise<CollectResult> {
  const provider = websiteProvider(ctx.config);
  if (!provider) throw new PermanentError('no website analytics configured');
  const now = ctx.now();
  let calls = 0;
  const count = () => void calls++;
  const inputs: ObservationInput[] = [];
  const warnings: string[] = [];
  for (const p of websitePeriods(now, ctx.config.timezone)) {
    const t = await (provider === 'plausible' ? plausible(ctx, p, count) : matomo(ctx, p, count));
    if (!t) {
      warnings.push(`${provider} has no data for ${p.key}`);
      continue;
    }
    const meta = { provider };
    const add = (measure: string, value: number | undefined) => {
      if (value !== undefined) inputs.push({ measure, period: p, value, source: 'website', collectedAt: now, meta });
    };
    add('website.visitors', t.visitors);
    add('website.visits', t.visits);
    add('website.pageviews', t.pageviews);
    add('website.bounce_rate', t.bounceRate);
    add('website.visit_duration', t.visitDuration);
    // No visits: no share to speak of (missing, not 0%).
    add('website.mobile_share', t.visits > 0 && t.mobileVisits !== undefined ? Math.round((1000 * t.mobileVisits) / t.visits) / 10 : undefined);
  }
  await ctx.store.recordMany(inputs);
  return { observations: inputs.length, warnings, calls };
}

export const websiteCollector: CollectorDefinition = {
  source: 'website',
  description: 'Website visitors, visits, pageviews, bounce rate, visit length and mobile share (Plausible or Matomo)',
  measures: ['website.visitors', 'website.visits', 'website.pageviews', 'website.bounce_rate', 'website.visit_duration', 'website.mobile_share'],
  cron: '30 * * * *',
  unconfigured(config) {
    if (websiteProvider(config)) return undefined;
    const chosen = config.metrics.website.provider;
    if (chosen === 'matomo') return 'needs MATOMO_URL, MATOMO_TOKEN and MATOMO_SITE_ID';
    if (chosen === 'plausible') return 'needs PLAUSIBLE_URL, PLAUSIBLE_API_KEY and PLAUSIBLE_SITE_ID';
    return 'needs PLAUSIBLE_URL, PLAUSIBLE_API_KEY and PLAUSIBLE_SITE_ID (or MATOMO_URL, MATOMO_TOKEN and MATOMO_SITE_ID)';
  },
  create: () => ({ source: 'website', run: collectWebsite }),
};
