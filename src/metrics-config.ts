import { z } from 'zod';
import { buildCatalogue, MEASURE_NAME, UNITS, type Catalogue } from './domain/measures.js';
import { UserError } from './errors.js';

/**
 * The `metrics:` section of the configuration file (collectors, sources, the
 * team's own measures). Parsed once by src/config.ts with the rest.
 */

const collectorSettings = z
  .object({
    /** Cron in the config's time zone (Europe/London): "10 * * * *" = ten past every hour. */
    cron: z.string().trim().min(9).optional(),
    /** false = never scheduled (still runnable with `crier metrics collect --source`). */
    enabled: z.boolean().default(true),
  })
  .strict();

const measureSettings = z
  .object({
    name: z.string().regex(MEASURE_NAME, 'a dotted lower-case name such as "library.visits"'),
    unit: z.enum(UNITS),
    description: z.string().trim().min(1),
    heading: z.string().trim().min(1),
    good: z.enum(['up', 'down']),
    target: z.number().optional(),
    dimensions: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,39}$/)).optional(),
    period: z.enum(['day', 'week', 'month', 'quarter']).optional(),
    rollup: z.enum(['sum', 'last', 'none']).optional(),
  })
  .strict();

export const metricsSchema = z
  .object({
    /** Collectors by source (x, mastodon, website, media, email, …): cron, enabled. */
    collectors: z.record(z.string(), collectorSettings).default({}),
    /** A 429 whose reset is at most this far away is waited for inside the run; longer ones move the job to the reset. */
    max_rate_limit_wait_seconds: z.number().int().min(0).max(3600).default(900),
    /** The team's own measures, for what Crier does not collect. */
    measures: z.array(measureSettings).default([]),
    /** Targets by measure name (built-in or the team's). */
    targets: z.record(z.string(), z.number()).default({}),
    x: z
      .object({
        /** Posts sent by Crier in the last N days get their metrics refreshed. */
        post_days: z.number().int().min(1).max(365).default(30),
      })
      .strict()
      .default({ post_days: 30 }),
    mastodon: z.object({ post_days: z.number().int().min(1).max(365).default(30) }).strict().default({ post_days: 30 }),
    website: z
      .object({
        /** Which analytics: plausible (PLAUSIBLE_URL, PLAUSIBLE_API_KEY, PLAUSIBLE_SITE_ID) or matomo (MATOMO_URL, MATOMO_TOKEN, MATOMO_SITE_ID). Default: whichever has credentials. */
        provider: z.enum(['plausible', 'matomo']).optional(),
      })
      .strict()
      .default({}),
    media: z
      .object({
        /** News feeds (RSS or Atom) to read. */
        feeds: z.array(z.string().url()).default([]),
        /** An item mentioning any of these (case-insensitive, whole words) is a mention. */
        terms: z.array(z.string().trim().min(2)).default([]),
        /** A mention is linked to a press release published at most this many days before it. */
        link_days: z.number().int().min(0).max(60).default(7),
        /** Weeks of mentions counted again on every run (late items, edited feeds). */
        weeks: z.number().int().min(1).max(52).default(2),
      })
      .strict()
      .default({ feeds: [], terms: [], link_days: 7, weeks: 2 }),
    email: z
      .object({
        /** Campaigns sent in the last N days get their counts refreshed. */
        campaign_days: z.number().int().min(1).max(365).default(35),
      })
      .strict()
      .default({ campaign_days: 35 }),
  })
  .strict();

export type MetricsConfig = z.infer<typeof metricsSchema>;

export const metricsDefaults: MetricsConfig = metricsSchema.parse({});

/** The catalogue for a configuration: built-ins with targets, plus the team's measures. */
export function catalogueFor(metrics: MetricsConfig, file?: string): Catalogue {
  try {
    return buildCatalogue(metrics.measures, metrics.targets);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(err.plain, err.code, { ...err.where, file });
    throw err;
  }
}
