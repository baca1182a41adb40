import { UserError } from '../errors.js';
import type { PeriodKind } from './periods.js';

/**
 * The catalogue of measures: every figure Crier keeps, named once, with the
 * strategy heading it serves (section 5 of the consultation and engagement
 * strategy), its unit and which way is good. Scripts rely on these names;
 * add measures, never rename one.
 */

/** The strategy's headings (section 5), plus email under "keeping communities informed" (4.1). */
export const STRATEGY_HEADINGS = [
  'Consultations and surveys',
  'Media coverage',
  'Social media growth',
  'Website growth',
  'Keeping communities informed',
  'Direct engagement',
  'Reference groups',
  'Grants scheme',
] as const;
export type StrategyHeading = (typeof STRATEGY_HEADINGS)[number];

export const UNITS = ['count', 'percent', 'seconds', 'gbp'] as const;
export type MeasureUnit = (typeof UNITS)[number];

export type GoodDirection = 'up' | 'down';

/**
 * How values for shorter periods make a longer one, for readers that roll up
 * (the digest): `sum` for counts of things that happened in the period,
 * `last` for levels read at a moment (followers, list size), `none` where
 * neither is honest (unique visitors, rates): only a value collected for that
 * period itself counts.
 */
export type Rollup = 'sum' | 'last' | 'none';

export interface Measure {
  name: string;
  unit: MeasureUnit;
  description: string;
  heading: string;
  good: GoodDirection;
  target?: number;
  /** Dimension names an observation of it may carry (tone, list, location …); others are refused. */
  dimensions: readonly string[];
  /** Where values come from: a collector source (x, mastodon, website, media, email …) or `manual`. */
  source: string;
  /** The period it is usually kept for. */
  period: PeriodKind;
  rollup: Rollup;
  /** What its subject is, when observations have one (a post, a campaign, a consultation). */
  subject?: string;
  /** False for measures added in the configuration file. */
  builtin: boolean;
}

type Builtin = Omit<Measure, 'builtin' | 'dimensions'> & { dimensions?: readonly string[] };

const B: Builtin[] = [
  // Social media growth
  { name: 'x.followers', unit: 'count', heading: 'Social media growth', good: 'up', source: 'x', period: 'day', rollup: 'last', description: 'Followers of the X account, read once a day or more (the last reading of the day stands)' },
  { name: 'x.impressions', unit: 'count', heading: 'Social media growth', good: 'up', source: 'x', period: 'week', rollup: 'sum', subject: 'post (x:<id>) for one post; none for the week total', description: 'Times the posts Crier sent were seen: per post its lifetime count so far; per week the total so far for the posts sent that week' },
  { name: 'x.engagements', unit: 'count', heading: 'Social media growth', good: 'up', source: 'x', period: 'week', rollup: 'sum', subject: 'post (x:<id>) for one post; none for the week total', description: 'Reposts + replies + likes + quotes of the posts Crier sent (public metrics), counted as for x.impressions' },
  { name: 'x.link_clicks', unit: 'count', heading: 'Social media growth', good: 'up', source: 'x', period: 'week', rollup: 'sum', subject: 'post (x:<id>) for one post; none for the week total', description: 'Clicks on links in the posts Crier sent, for posts under 30 days old (X reports them only then, to the author), counted as for x.impressions' },
  { name: 'mastodon.followers', unit: 'count', heading: 'Social media growth', good: 'up', source: 'mastodon', period: 'day', rollup: 'last', description: 'Followers of the Mastodon account' },
  { name: 'mastodon.boosts', unit: 'count', heading: 'Social media growth', good: 'up', source: 'mastodon', period: 'week', rollup: 'sum', subject: 'post (mastodon:<id>) for one post; none for the week total', description: 'Boosts (reblogs) of the statuses Crier posted, counted as for x.impressions' },
  { name: 'mastodon.favourites', unit: 'count', heading: 'Social media growth', good: 'up', source: 'mastodon', period: 'week', rollup: 'sum', subject: 'post (mastodon:<id>) for one post; none for the week total', description: 'Favourites of the statuses Crier posted, counted as for x.impressions' },
  { name: 'mastodon.replies', unit: 'count', heading: 'Social media growth', good: 'up', source: 'mastodon', period: 'week', rollup: 'sum', subject: 'post (mastodon:<id>) for one post; none for the week total', description: 'Replies to the statuses Crier posted, counted as for x.impressions' },
  { name: 'facebook.followers', unit: 'count', heading: 'Social media growth', good: 'up', source: 'facebook', period: 'day', rollup: 'last', description: 'Followers of the Facebook Page (followers_count when collected; days Crier did not read are filled from the page_follows insight)' },
  { name: 'facebook.views', unit: 'count', heading: 'Social media growth', good: 'up', source: 'facebook', period: 'week', rollup: 'sum', subject: 'post (facebook:<id>) for one post; none for the week total', description: 'Times the posts Crier sent on the Facebook Page were on screen (post_media_view): per post its lifetime count so far; per week the total so far for the posts sent that week' },
  { name: 'facebook.engagements', unit: 'count', heading: 'Social media growth', good: 'up', source: 'facebook', period: 'week', rollup: 'sum', subject: 'post (facebook:<id>) for one post; none for the week total', description: 'Reactions + comments + shares of the posts Crier sent on the Facebook Page, counted as for facebook.views' },
  { name: 'facebook.page_views', unit: 'count', heading: 'Social media growth', good: 'up', source: 'facebook', period: 'week', rollup: 'sum', description: 'Times anything on the Facebook Page was on screen in the week (Page insight page_media_view summed over the days; Meta counts in Pacific-time days)' },
  { name: 'youtube.subscribers', unit: 'count', heading: 'Social media growth', good: 'up', source: 'youtube', period: 'day', rollup: 'last', description: 'Subscribers of the YouTube channel (YouTube rounds large counts; missing, not 0, when the channel hides its count)' },
  { name: 'youtube.views', unit: 'count', heading: 'Social media growth', good: 'up', source: 'youtube', period: 'day', rollup: 'last', subject: 'video (youtube:<id>) for one video; none for the channel', description: 'Views: for the channel, its lifetime total when collected; per recent upload, its views so far' },
  { name: 'youtube.videos', unit: 'count', heading: 'Social media growth', good: 'up', source: 'youtube', period: 'day', rollup: 'last', description: 'Public videos on the YouTube channel' },
  { name: 'youtube.engagements', unit: 'count', heading: 'Social media growth', good: 'up', source: 'youtube', period: 'day', rollup: 'last', subject: 'video (youtube:<id>)', description: 'Likes + comments of each recent upload so far (YouTube no longer reports dislikes)' },
  // Website growth
  { name: 'website.visitors', unit: 'count', heading: 'Website growth', good: 'up', source: 'website', period: 'week', rollup: 'none', description: 'Unique visitors to the website in the period (Plausible visitors, Matomo nb_uniq_visitors)' },
  { name: 'website.visits', unit: 'count', heading: 'Website growth', good: 'up', source: 'website', period: 'week', rollup: 'sum', description: 'Visits (sessions) to the website in the period' },
  { name: 'website.pageviews', unit: 'count', heading: 'Website growth', good: 'up', source: 'website', period: 'week', rollup: 'sum', description: 'Pages viewed on the website in the period (Matomo: actions)' },
  { name: 'website.bounce_rate', unit: 'percent', heading: 'Website growth', good: 'down', source: 'website', period: 'week', rollup: 'none', description: 'Share of visits that saw one page only' },
  { name: 'website.visit_duration', unit: 'seconds', heading: 'Website growth', good: 'up', source: 'website', period: 'week', rollup: 'none', description: 'Average visit length in seconds' },
  { name: 'website.mobile_share', unit: 'percent', heading: 'Website growth', good: 'up', source: 'website', period: 'week', rollup: 'none', description: 'Share of visits from mobile phones (Plausible "Mobile"; Matomo "Smartphone" and "Phablet"; tablets not counted)' },
  // Media coverage
  { name: 'media.mentions', unit: 'count', heading: 'Media coverage', good: 'up', source: 'media', period: 'week', rollup: 'sum', dimensions: ['tone'], description: 'News items in the configured feeds that mention the configured terms, by tone (positive, neutral, negative, no_signal), counted in the week they were published' },
  { name: 'media.releases_with_coverage', unit: 'count', heading: 'Media coverage', good: 'up', source: 'media', period: 'week', rollup: 'sum', description: 'Press releases published in the week that at least one mention was linked to' },
  // Keeping communities informed
  { name: 'email.delivered', unit: 'count', heading: 'Keeping communities informed', good: 'up', source: 'email', period: 'week', rollup: 'sum', subject: 'campaign id for one campaign; none for the week total', description: 'Emails accepted by the mail server, per campaign and per week the campaign was sent' },
  { name: 'email.failed', unit: 'count', heading: 'Keeping communities informed', good: 'down', source: 'email', period: 'week', rollup: 'sum', subject: 'campaign id for one campaign; none for the week total', description: 'Emails that could not be delivered, counted as for email.delivered' },
  { name: 'email.unsubscribed', unit: 'count', heading: 'Keeping communities informed', good: 'down', source: 'email', period: 'week', rollup: 'sum', dimensions: ['list'], description: 'People who unsubscribed in the week, by list' },
  { name: 'email.list_size', unit: 'count', heading: 'Keeping communities informed', good: 'up', source: 'email', period: 'week', rollup: 'last', dimensions: ['list'], description: 'Subscribed (not suppressed) addresses on each list when collected; growth is this week against last' },
  // Direct engagement
  { name: 'engagement.events', unit: 'count', heading: 'Direct engagement', good: 'up', source: 'manual', period: 'month', rollup: 'sum', dimensions: ['location', 'community'], description: 'Meetings and events held with the public' },
  { name: 'engagement.attendees', unit: 'count', heading: 'Direct engagement', good: 'up', source: 'manual', period: 'month', rollup: 'sum', dimensions: ['location', 'community'], description: 'People who came to those meetings and events' },
  { name: 'engagement.questions', unit: 'count', heading: 'Direct engagement', good: 'up', source: 'manual', period: 'month', rollup: 'sum', dimensions: ['location', 'community'], description: 'Questions and issues raised' },
  { name: 'engagement.actions', unit: 'count', heading: 'Direct engagement', good: 'up', source: 'manual', period: 'month', rollup: 'sum', dimensions: ['location', 'community'], description: 'Actions taken as a result' },
  // Reference groups
  { name: 'reference_groups.active_volunteers', unit: 'count', heading: 'Reference groups', good: 'up', source: 'manual', period: 'quarter', rollup: 'last', dimensions: ['group'], description: 'Volunteers active on each reference group or citizens\u2019 panel' },
  // Grants scheme
  { name: 'grants.recipients', unit: 'count', heading: 'Grants scheme', good: 'up', source: 'manual', period: 'quarter', rollup: 'sum', dimensions: ['fund'], description: 'Organisations receiving a grant' },
  { name: 'grants.amount', unit: 'gbp', heading: 'Grants scheme', good: 'up', source: 'manual', period: 'quarter', rollup: 'sum', dimensions: ['fund'], description: 'Money granted, in pounds' },
  // Consultations and surveys
  { name: 'consultation.respondents', unit: 'count', heading: 'Consultations and surveys', good: 'up', source: 'manual', period: 'quarter', rollup: 'none', subject: 'the consultation or survey', description: 'People who responded' },
  { name: 'consultation.population', unit: 'count', heading: 'Consultations and surveys', good: 'up', source: 'manual', period: 'quarter', rollup: 'none', subject: 'the consultation or survey', description: 'The population the consultation speaks for (for the margin of error)' },
  { name: 'consultation.margin_of_error', unit: 'percent', heading: 'Consultations and surveys', good: 'down', source: 'derived', period: 'quarter', rollup: 'none', target: 5, subject: 'the consultation or survey', description: 'Margin of error at 95% confidence with finite population correction, derived from respondents and population (worst case p = 0.5); above 5 the sample is too small for \u00b15%' },
];

export const BUILTIN_MEASURES: readonly Measure[] = Object.freeze(B.map((m) => Object.freeze({ ...m, dimensions: m.dimensions ?? [], builtin: true })));

/** A measure the team adds in the configuration file (`metrics.measures`). */
export interface MeasureSettings {
  name: string;
  unit: MeasureUnit;
  description: string;
  heading: string;
  good: GoodDirection;
  target?: number;
  dimensions?: string[];
  period?: PeriodKind;
  rollup?: Rollup;
}

export const MEASURE_NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/;

export class Catalogue {
  private readonly byName: ReadonlyMap<string, Measure>;

  constructor(measures: readonly Measure[]) {
    this.byName = new Map(measures.map((m) => [m.name, m]));
  }

  list(): Measure[] {
    return [...this.byName.values()];
  }

  get(name: string): Measure | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The measure, or a user error that suggests the nearest names. */
  require(name: string, where: { file?: string; line?: number; field?: string } = {}): Measure {
    const m = this.byName.get(name);
    if (m) return m;
    const near = [...this.byName.keys()].filter((n) => n.split('.')[0] === name.split('.')[0]).slice(0, 6);
    const hint = near.length ? ` (did you mean ${near.join(', ')}?)` : ' (see `crier metrics measures`)';
    throw new UserError(`unknown measure "${name}"${hint}`, 'CRIER_ERR_INPUT', where);
  }

  /** By heading, in the strategy's order, then any team-added headings. */
  byHeading(): Array<[string, Measure[]]> {
    const groups = new Map<string, Measure[]>();
    for (const h of STRATEGY_HEADINGS) groups.set(h, []);
    for (const m of this.byName.values()) {
      const g = groups.get(m.heading) ?? [];
      g.push(m);
      groups.set(m.heading, g);
    }
    return [...groups].filter(([, ms]) => ms.length > 0);
  }
}

/**
 * The built-in measures, with targets from config (`metrics.targets`) and
 * the team's own measures (`metrics.measures`) added. A team measure may
 * not reuse a built-in name.
 */
export function buildCatalogue(extra: readonly MeasureSettings[] = [], targets: Readonly<Record<string, number>> = {}): Catalogue {
  const all: Measure[] = BUILTIN_MEASURES.map((m) => (targets[m.name] !== undefined ? { ...m, target: targets[m.name] } : m));
  const names = new Set(all.map((m) => m.name));
  for (const s of extra) {
    if (names.has(s.name)) throw new UserError(`measure "${s.name}" is built in; give yours another name`, 'CRIER_ERR_CONFIG', { field: 'metrics.measures' });
    names.add(s.name);
    all.push({
      name: s.name,
      unit: s.unit,
      description: s.description,
      heading: s.heading,
      good: s.good,
      ...(s.target !== undefined || targets[s.name] !== undefined ? { target: s.target ?? targets[s.name] } : {}),
      dimensions: s.dimensions ?? [],
      source: 'manual',
      period: s.period ?? 'month',
      rollup: s.rollup ?? 'sum',
      builtin: false,
    });
  }
  for (const name of Object.keys(targets)) {
    if (!names.has(name)) throw new UserError(`target for unknown measure "${name}"`, 'CRIER_ERR_CONFIG', { field: `metrics.targets.${name}` });
  }
  return new Catalogue(all);
}
