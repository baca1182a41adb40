import type { Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import type { Catalogue } from '../../src/domain/measures.js';
import { ObservationStore } from '../../src/domain/observations.js';
import { catalogueFor } from '../../src/metrics-config.js';
import { recordFailure, recordRunStart, recordSuccess } from './status.js';
import { CollectorError, RateLimitedError, type CollectContext, type CollectorDefinition, type CollectorOptions, type CollectResult } from './types.js';

/**
 * Runs one collector once, wherever from (the `collect` worker, `crier metrics
 * collect`, a test): builds its context, records the outcome in its status,
 * and returns the result or throws the collector's error.
 */

export interface CollectDeps {
  config: Config;
  redis: Redis;
  log: Logger;
  now?: () => Date;
  /** Tests and benchmarks pass a fetch bound to a fake's CA; default global fetch. */
  fetch?: typeof fetch;
  catalogue?: Catalogue;
  sleep?: (ms: number) => Promise<void>;
  collectorOptions?: CollectorOptions;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MAX_WAITS = 3;

export function failureKind(err: unknown): string {
  return err instanceof CollectorError ? err.kind : 'transient';
}

export function collectContext(def: CollectorDefinition, deps: CollectDeps): CollectContext {
  const { config } = deps;
  const now = deps.now ?? (() => new Date());
  const catalogue = deps.catalogue ?? catalogueFor(config.metrics);
  const log = deps.log.child({ collector: def.source });
  const sleep = deps.sleep ?? realSleep;
  const maxWaitMs = config.metrics.max_rate_limit_wait_seconds * 1000;
  return {
    config,
    log,
    redis: deps.redis,
    prefix: config.redis_prefix,
    store: new ObservationStore(deps.redis, config.redis_prefix, catalogue, { zone: config.timezone }),
    catalogue,
    now,
    fetch: deps.fetch ?? fetch,
    async limited<T>(call: () => Promise<T>): Promise<T> {
      for (let waits = 0; ; waits++) {
        try {
          return await call();
        } catch (err) {
          if (!(err instanceof RateLimitedError) || waits >= MAX_WAITS) throw err;
          const wait = err.resetAt.getTime() - now().getTime();
          if (wait > maxWaitMs) throw err;
          log.warn({ resetAt: err.resetAt.toISOString(), waitMs: Math.max(0, wait) }, 'rate limited: waiting for the reset');
          await recordFailure(deps.redis, config.redis_prefix, def.source, now(), `${err.message}; waited until ${err.resetAt.toISOString()}`, 'rate_limited', err.resetAt);
          await sleep(Math.max(0, wait) + 250);
        }
      }
    },
  };
}

export async function runCollector(def: CollectorDefinition, deps: CollectDeps): Promise<CollectResult> {
  const ctx = collectContext(def, deps);
  const prefix = deps.config.redis_prefix;
  await recordRunStart(deps.redis, prefix, def.source, ctx.now());
  const collector = def.create(deps.config, deps.collectorOptions);
  try {
    const result = await collector.run(ctx);
    await recordSuccess(deps.redis, prefix, def.source, ctx.now(), result.observations, result.warnings);
    ctx.log.info({ observations: result.observations, warnings: result.warnings.length, calls: result.calls }, 'collected');
    return result;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const until = err instanceof RateLimitedError ? err.resetAt : undefined;
    await recordFailure(deps.redis, prefix, def.source, ctx.now(), until ? `${reason} (until ${until.toISOString()})` : reason, failureKind(err), until);
    ctx.log.warn({ err: reason, kind: failureKind(err) }, 'collection failed; earlier observations kept');
    throw err;
  } finally {
    await collector.close?.();
  }
}
