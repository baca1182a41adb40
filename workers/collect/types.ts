import type { Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import type { Catalogue } from '../../src/domain/measures.js';
import type { ObservationStore } from '../../src/domain/observations.js';

/**
 * A collector reads one source (X, Mastodon, the website's analytics, news
 * feeds, Crier's own email records …) and writes observations. It is as small
 * as a channel adapter: a source name, whether it can run, and `run`.
 *
 * Errors decide what the `collect` worker does and what `crier metrics status`
 * shows; they are the channel adapters' error classes (one list for Crier):
 *  - RateLimitedError(message, resetAt) → the run waits for the reset (short
 *    waits inside the run via `ctx.limited`, longer ones by moving the job to
 *    the reset time); shown as a failure "rate limited until …"
 *  - NeedsReauthError   → credentials refused (401/403): failure, no retry until the next run
 *  - TransientError     → 5xx, network, an answer that is not what the API documents: retried
 *  - PermanentError     → anything retrying cannot fix (a 400 naming a bad site id)
 * A collector records what it could read before failing: observations already
 * written stay; nothing is deleted or zeroed on failure.
 */
export { NeedsReauthError, PermanentError, RateLimitedError, TransientError, ChannelError as CollectorError } from '../../channels/adapter.js';

export interface CollectContext {
  config: Config;
  log: Logger;
  redis: Redis;
  /** Redis key prefix (config.redis_prefix). */
  prefix: string;
  store: ObservationStore;
  catalogue: Catalogue;
  /** The clock: tests inject one. */
  now(): Date;
  /**
   * Runs one API call; when it throws RateLimitedError with a reset no further
   * away than the configured wait (`metrics.max_rate_limit_wait_seconds`),
   * waits for the reset and tries again, so a 429 mid-run costs a pause, not the run.
   */
  limited<T>(call: () => Promise<T>): Promise<T>;
  /** Base for outgoing HTTP (tests pass a private CA or a fetch); collectors use it instead of global fetch. */
  fetch: typeof fetch;
}

export interface CollectResult {
  /** Observations written (new, replaced or unchanged). */
  observations: number;
  /** Problems with single items that did not stop the run (a deleted post, a feed that failed). */
  warnings: string[];
  /** API calls made, for the status line and the benchmark. */
  calls?: number;
}

export interface Collector {
  readonly source: string;
  run(ctx: CollectContext): Promise<CollectResult>;
  close?(): Promise<void>;
}

export interface CollectorDefinition {
  /** Source name: used in `--source`, config `metrics.collectors.<source>`, the job scheduler id and status. */
  source: string;
  /** One line for `crier metrics status`. */
  description: string;
  /** Measures it writes (for docs and the digest). */
  measures: readonly string[];
  /** Default cron (Europe/London), overridden by `metrics.collectors.<source>.cron`. */
  cron: string;
  /**
   * Why it cannot run with this config (missing credentials, no feeds), or
   * undefined when it can. An unconfigured source is not scheduled and is
   * shown as such in status.
   */
  unconfigured(config: Config): string | undefined;
  create(config: Config, opts?: CollectorOptions): Collector;
}

export interface CollectorOptions {
  /** Extra certificate authority for an HTTPS API with a private certificate (tests; production uses NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer;
}
