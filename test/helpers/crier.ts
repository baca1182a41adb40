import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config.js';
import { parseCampaign } from '../../src/domain/campaign-file.js';
import { channelCounts, getCampaign, type Campaign, type ChannelCounts } from '../../src/domain/campaigns.js';
import { createLogger } from '../../src/log.js';
import { connectRedis, type RedisHandle } from '../../src/redis/connection.js';
import { Scheduler } from '../../src/scheduler.js';
import { buildServer } from '../../src/server/index.js';
import { startWorkers, type WorkerPool } from '../../workers/index.js';

/**
 * Crier in-process for a test: real Redis (the run's private one, under the
 * config's unique prefix), real BullMQ workers, optionally the HTTP server on
 * 127.0.0.1. Nothing is mocked.
 */
export interface TestCrier {
  config: Config;
  handle: RedisHandle;
  scheduler: Scheduler;
  pool?: WorkerPool;
  /** http://127.0.0.1:<port> when started with server: true. */
  baseUrl?: string;
  /** Creates a campaign from YAML text (as `crier campaign create` would). */
  create(yaml: string, opts?: { actor?: string; approve?: boolean }): Promise<Campaign>;
  show(id: string): Promise<Campaign & { counts: Record<string, ChannelCounts> }>;
  /** Polls until the campaign reaches one of `statuses` (or throws after timeoutMs). */
  waitForStatus(id: string, statuses: string[], timeoutMs?: number): Promise<Campaign & { counts: Record<string, ChannelCounts> }>;
  close(): Promise<void>;
}

export async function startCrier(config: Config, opts: { workers?: boolean; server?: boolean; queues?: string[]; now?: () => Date } = {}): Promise<TestCrier> {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const handle = await connectRedis(config, log);
  const now = opts.now ?? (() => new Date());
  const scheduler = new Scheduler(config, handle, log, now);
  const pool = opts.workers === false ? undefined : startWorkers({ config, handle, log, queues: opts.queues, now });
  let baseUrl: string | undefined;
  const server = opts.server ? await buildServer(config, handle, log, now) : undefined;
  if (server) {
    await server.listen({ port: 0, host: '127.0.0.1' });
    const addr = server.server.address();
    baseUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }
  const show = async (id: string) => {
    const c = await getCampaign(handle.redis, config.redis_prefix, id);
    return { ...c, counts: await channelCounts(handle.redis, config.redis_prefix, c) };
  };
  return {
    config,
    handle,
    scheduler,
    pool,
    baseUrl,
    async create(yaml, o = {}) {
      const file = path.join(config.dataDir, `campaign-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, yaml);
      const draft = parseCampaign(yaml, file, config, { now: now() });
      return scheduler.create(draft, { actor: o.actor ?? 'tester', approve: o.approve });
    },
    show,
    async waitForStatus(id, statuses, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const c = await show(id);
        if (statuses.includes(c.status)) return c;
        if (Date.now() > deadline) throw new Error(`campaign ${id} is ${c.status} after ${timeoutMs} ms, wanted ${statuses.join('|')}: ${JSON.stringify(c.counts)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await server?.close();
      await pool?.close();
      await scheduler.close();
      await handle.close();
    },
  };
}

/** "YYYY-MM-DD HH:mm:ss" in Europe/London, `ms` from now: for send_at in test campaign files. */
export function londonIn(ms: number, from = new Date()): string {
  const d = new Date(from.getTime() + ms);
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(d);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')}`;
}
