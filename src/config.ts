import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { UserError } from './errors.js';
import { parseLocalTime } from './time.js';
import { organisationSchema, resolveOrganisation, type Organisation } from './organisation.js';
import { checkCron } from './domain/recurrence.js';
import { catalogueFor, metricsDefaults, metricsSchema } from './metrics-config.js';

/**
 * The one place that reads the configuration file and the environment.
 * Parsed and validated once at start, frozen, then passed down.
 */

const channelSettings = z
  .object({
    /** Deliveries worked at once per worker process. */
    concurrency: z.number().int().min(1).max(1000).default(10),
    /** Messages per second across all workers; 0 = unlimited. */
    rate_per_second: z.number().min(0).default(0),
    /** Tries for a transient failure before the delivery counts as failed. */
    attempts: z.number().int().min(1).max(50).default(6),
    /** First retry delay; doubles each try. */
    backoff_ms: z.number().int().min(10).default(2000),
  })
  .strict();

export type ChannelSettings = z.infer<typeof channelSettings>;

const localTime = z.string().regex(/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$/, 'expected "YYYY-MM-DD HH:mm"');

const fileSchema = z
  .object({
    timezone: z.string().default('Europe/London'),
    /** Who publishes: a name, or { name, address, website, logo, press_contact } (src/organisation.ts). */
    organisation: organisationSchema,
    redis_prefix: z.string().regex(/^[A-Za-z0-9_-]+$/).default('crier'),
    /** Recipients per delivery job when a campaign is fanned out. */
    batch_size: z.number().int().min(1).max(5000).default(100),
    /** How long a worker's hold on a job lasts without renewal: a dead worker's jobs go back to the queue after about this long. */
    worker_lock_ms: z.number().int().min(500).max(600_000).default(30_000),
    /** How often `crier start`/`worker` look for sending campaigns whose jobs were lost or failed for good. */
    reconcile_ms: z.number().int().min(1000).max(3_600_000).default(60_000),
    channels: z.record(z.string(), channelSettings).default({}),
    approval: z
      .object({
        /** Campaign kinds that wait for an approver other than the author. */
        kinds: z.array(z.enum(['newsletter', 'community', 'social', 'press'])).default([]),
        /** Who may approve; empty = anyone but the author. */
        approvers: z.array(z.string()).default([]),
      })
      .strict()
      .default({ kinds: [], approvers: [] }),
    purdah: z
      .array(z.object({ from: localTime, to: localTime, reason: z.string().default('pre-election period') }).strict())
      .default([]),
    webhook: z
      .object({ url: z.string().url().optional(), secret: z.string().optional(), timeout_ms: z.number().int().default(10_000) })
      .strict()
      .default({ timeout_ms: 10_000 }),
    community: z
      .object({ gateway_url: z.string().url().optional() })
      .strict()
      .default({}),
    facebook: z
      .object({ api_version: z.string().regex(/^v\d+\.\d+$/, 'expected a Graph API version such as v24.0').default('v24.0') })
      .strict()
      .default({ api_version: 'v24.0' }),
    sms: z
      .object({
        /** Numbers written without a country code (07…) belong to this country. */
        default_country: z.string().regex(/^[A-Z]{2}$/, 'expected a two-letter country code such as GB').default('GB'),
        /** Price of one text message fragment (segment) in pounds, for the estimate in `campaign preview`. */
        cost_per_segment: z.number().min(0).optional(),
      })
      .strict()
      .default({ default_country: 'GB' }),
    dashboard: z
      .object({
        /** Sign-in attempts per address and account in login_window_minutes. */
        login_attempts: z.number().int().min(1).max(1000).default(10),
        login_window_minutes: z.number().int().min(1).max(1440).default(15),
      })
      .strict()
      .default({ login_attempts: 10, login_window_minutes: 15 }),
    digest: z
      .object({
        cron: z.string().default('0 8 * * 1'),
        recipients: z.array(z.string().email()).default([]),
        // Issue 11: the weekly digest (src/digest/).
        subject: z.string().trim().min(1).default('Measures of success: week {{week}}'),
      })
      .strict()
      .prefault({}),
    // Issue 11: the monthly newsletter run (src/newsletter.ts).
    newsletter: z
      .object({
        /** Run on the schedule; default: on when feed_url is set. */
        enabled: z.boolean().optional(),
        cron: z.string().default('0 9 * * 2#1'),
        feed_url: z.string().url().optional(),
        template: z.string().default('config/templates/newsletter.md'),
        list: z.string().min(1).default('newsletter'),
        subject: z.string().trim().min(1).default('{{organisation}} newsletter: {{month}}'),
        approval: z.boolean().default(true),
        send_after_minutes: z.number().int().min(0).max(60 * 24 * 31).default(60),
        max_items: z.number().int().min(1).max(200).default(20),
        feed_attempts: z.number().int().min(1).max(20).default(3),
        feed_retry_ms: z.number().int().min(10).default(30_000),
        feed_timeout_ms: z.number().int().min(100).default(15_000),
      })
      .strict()
      .prefault({}),
    metrics: metricsSchema.default(metricsDefaults),
  })
  .strict();

const envSchema = z.object({
  REDIS_URL: z.string().url().optional(),
  SMTP_URL: z.string().url().optional(),
  /** Default: the organisation's name (else "Crier") at crier@localhost; set it for real sending. */
  MAIL_FROM: z.string().optional(),
  /** Default: http://localhost:<PORT>, so links in emails and pages follow a changed PORT. */
  PUBLIC_URL: z.string().url().optional(),
  CRIER_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  CRIER_CONFIG: z.string().optional(),
  CRIER_DATA_DIR: z.string().default('./data'),
  CRIER_USER: z.string().optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Loopback unless told otherwise: the server is reachable from other machines only by choice (docker-compose sets 0.0.0.0). */
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TWITTER_API_BASE: z.string().url().default('https://api.x.com'),
  TWITTER_APP_KEY: z.string().optional(),
  TWITTER_APP_SECRET: z.string().optional(),
  TWITTER_ACCESS_TOKEN: z.string().optional(),
  TWITTER_ACCESS_SECRET: z.string().optional(),
  MASTODON_URL: z.string().url().optional(),
  MASTODON_TOKEN: z.string().optional(),
  PLAUSIBLE_URL: z.string().url().optional(),
  PLAUSIBLE_API_KEY: z.string().optional(),
  PLAUSIBLE_SITE_ID: z.string().optional(),
  FACEBOOK_GRAPH_URL: z.string().url().default('https://graph.facebook.com'),
  FACEBOOK_PAGE_ID: z.string().optional(),
  FACEBOOK_PAGE_TOKEN: z.string().optional(),
  YOUTUBE_API_URL: z.string().url().default('https://www.googleapis.com/youtube/v3'),
  YOUTUBE_API_KEY: z.string().optional(),
  YOUTUBE_CHANNEL_ID: z.string().optional(),
  NOTIFY_BASE_URL: z.string().url().default('https://api.notifications.service.gov.uk'),
  NOTIFY_API_KEY: z.string().optional(),
  NOTIFY_SMS_TEMPLATE_ID: z.string().optional(),
  MATOMO_URL: z.string().url().optional(),
  MATOMO_TOKEN: z.string().optional(),
  MATOMO_SITE_ID: z.string().optional(),
});

export type FileConfig = z.infer<typeof fileSchema>;
export type EnvConfig = z.infer<typeof envSchema>;

export interface PurdahWindow {
  from: Date;
  to: Date;
  reason: string;
}

export interface Config extends Omit<FileConfig, 'channels' | 'purdah' | 'organisation' | 'facebook'> {
  /** The organisation's name (unset: none configured); `org` has the details. */
  organisation?: string;
  /** Masthead and footer of every email and public page. */
  org?: Organisation;
  /** Pre-election blackout windows as instants. */
  purdah: PurdahWindow[];
  configFile?: string;
  dataDir: string;
  outboxDir: string;
  redisUrl?: string;
  smtpUrl?: string;
  mailFrom: string;
  publicUrl: string;
  /** Signs unsubscribe links and webhooks. Generated into the data dir when unset. */
  secret: string;
  user: string;
  port: number;
  host: string;
  logLevel: EnvConfig['LOG_LEVEL'];
  twitter: { apiBase: string; appKey?: string; appSecret?: string; accessToken?: string; accessSecret?: string };
  mastodon: { url?: string; token?: string };
  plausible: { url?: string; apiKey?: string; siteId?: string };
  /** The Facebook Page Crier posts as (Graph API). */
  facebook: { graphUrl: string; apiVersion: string; pageId?: string; pageToken?: string };
  youtube: { apiUrl: string; apiKey?: string; channelId?: string };
  /** GOV.UK Notify for SMS. */
  notify: { baseUrl: string; apiKey?: string; smsTemplateId?: string };
  matomo: { url?: string; token?: string; siteId?: string };
  channelSettings(name: string): ChannelSettings;
}

function formatIssue(issue: z.core.$ZodIssue, file: string): UserError {
  // An unknown key is named itself (not its parent), so the user sees which line to fix.
  if (issue.code === 'unrecognized_keys') {
    const key = [...issue.path.map(String), issue.keys[0]].join('.');
    const known = issue.keys.length > 1 ? ` (also unknown: ${issue.keys.slice(1).join(', ')})` : '';
    return new UserError(`unknown key; see config/crier.example.yaml for the keys Crier reads${known}`, 'CRIER_ERR_CONFIG', { file, field: key });
  }
  const key = issue.path.map(String).join('.') || '(top level)';
  return new UserError(`${issue.message}`, 'CRIER_ERR_CONFIG', { file, field: key });
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`cannot read the configuration file`, 'CRIER_ERR_CONFIG', { file });
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    const line = err instanceof YAMLParseError ? err.linePos?.[0]?.line : undefined;
    const msg = err instanceof Error ? (err.message.split('\n')[0] ?? '').replace(/:\s*$/, '') : String(err);
    throw new UserError(`not valid YAML: ${msg}`, 'CRIER_ERR_CONFIG', { file, line });
  }
}

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  // An empty variable (PORT=) means unset, as in most tools, not "0" or "".
  const envParsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!envParsed.success) {
    const issue = envParsed.error.issues[0]!;
    throw new UserError(issue.message, 'CRIER_ERR_CONFIG', { file: 'environment', field: issue.path.map(String).join('.') });
  }
  const e = envParsed.data;
  const defaultFile = path.resolve(cwd, 'crier.config.yaml');
  const configFile = e.CRIER_CONFIG ? path.resolve(cwd, e.CRIER_CONFIG) : existsSync(defaultFile) ? defaultFile : undefined;
  const raw = configFile ? readConfigFile(configFile) : {};
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw formatIssue(parsed.error.issues[0]!, configFile ?? 'configuration');
  const f = parsed.data;
  if (!validZone(f.timezone)) {
    throw new UserError(`unknown time zone "${f.timezone}" (use an IANA name such as Europe/London)`, 'CRIER_ERR_CONFIG', {
      file: configFile,
      field: 'timezone',
    });
  }
  for (const field of ['digest', 'newsletter'] as const) {
    const problem = checkCron(f[field].cron, f.timezone);
    if (problem) throw new UserError(problem, 'CRIER_ERR_CONFIG', { file: configFile, field: `${field}.cron` });
  }
  catalogueFor(f.metrics, configFile);
  const dataDir = path.resolve(cwd, e.CRIER_DATA_DIR);
  const { channels, purdah, organisation, facebook, ...rest } = f;
  const org = resolveOrganisation(organisation, configFile, cwd);
  const where = (i: number, field: string) => ({ file: configFile, field: `purdah.${i}.${field}` });
  const windows = purdah.map((w, i) => {
    const from = parseLocalTime(w.from, f.timezone, where(i, 'from'));
    const to = parseLocalTime(w.to, f.timezone, where(i, 'to'));
    if (to <= from) throw new UserError('"to" must be after "from"', 'CRIER_ERR_CONFIG', where(i, 'to'));
    return { from, to, reason: w.reason };
  });
  const defaults = channelSettings.parse({});
  const config: Config = {
    ...rest,
    organisation: org?.name,
    org,
    purdah: windows,
    configFile,
    dataDir,
    outboxDir: path.join(dataDir, 'outbox'),
    redisUrl: e.REDIS_URL,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM ?? `"${(org?.name ?? 'Crier').replace(/["\\\r\n]/g, '')}" <crier@localhost>`,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT || 8080}`).replace(/\/+$/, ''),
    secret: e.CRIER_SECRET ?? '',
    user: e.CRIER_USER ?? env.USER ?? 'crier',
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    twitter: {
      apiBase: e.TWITTER_API_BASE.replace(/\/+$/, ''),
      appKey: e.TWITTER_APP_KEY,
      appSecret: e.TWITTER_APP_SECRET,
      accessToken: e.TWITTER_ACCESS_TOKEN,
      accessSecret: e.TWITTER_ACCESS_SECRET,
    },
    mastodon: { url: e.MASTODON_URL?.replace(/\/+$/, ''), token: e.MASTODON_TOKEN },
    plausible: { url: e.PLAUSIBLE_URL?.replace(/\/+$/, ''), apiKey: e.PLAUSIBLE_API_KEY, siteId: e.PLAUSIBLE_SITE_ID },
    matomo: { url: e.MATOMO_URL, token: e.MATOMO_TOKEN, siteId: e.MATOMO_SITE_ID },
    facebook: { graphUrl: e.FACEBOOK_GRAPH_URL.replace(/\/+$/, ''), apiVersion: facebook.api_version, pageId: e.FACEBOOK_PAGE_ID, pageToken: e.FACEBOOK_PAGE_TOKEN },
    youtube: { apiUrl: e.YOUTUBE_API_URL.replace(/\/+$/, ''), apiKey: e.YOUTUBE_API_KEY, channelId: e.YOUTUBE_CHANNEL_ID },
    notify: { baseUrl: e.NOTIFY_BASE_URL.replace(/\/+$/, ''), apiKey: e.NOTIFY_API_KEY, smsTemplateId: e.NOTIFY_SMS_TEMPLATE_ID },
    channelSettings: (name: string) => channels[name] ?? defaults,
  };
  return Object.freeze(config);
}

/** Tests and the secret bootstrap build a config with a few things changed. */
export function withOverrides(config: Config, overrides: Partial<Config>): Config {
  return Object.freeze({ ...config, ...overrides });
}
