import v8 from 'node:v8';
import type { Command } from 'commander';
import { allQueueNames, startWorkers } from '../../workers/index.js';
import { loadConfig } from '../config.js';
import { UserError } from '../errors.js';
import { createLogger } from '../log.js';
import { connectRedis } from '../redis/connection.js';
import { CAMPAIGN_QUEUE, Scheduler } from '../scheduler.js';
import { ensureSecret } from '../secret.js';
import { indexExclusions } from '../domain/audience.js';
import { channelDefinition, channelNames } from '../../channels/registry.js';
import { COLLECT_QUEUE, reconcileCollectors } from '../../workers/collect/worker.js';

/** `crier start` (everything in one process) and `crier worker` (workers only, for more machines). */

/**
 * How far V8 lets the old generation grow past what the last full collection kept: 100 % here, where V8
 * picks up to 300 % for a process that allocates fast. A send allocates ~150 KB per message that lives
 * for one SMTP round trip; some of it outlives a young-generation collection, and V8's own factor let it
 * pile up to ~80 MB over the ~25 MB kept before collecting it. Measured (BENCHMARKS.md §3): a worker's
 * peak RSS over a 20,000-message send ~190-200 MB by default, ~151 MB at 100 %, ~142 MB at 50 %; but 50 %
 * cost ~15-25 % more CPU per message (two workers behind a 20 ms relay scaled 1.68x instead of 1.80x),
 * 100 % about none (1.81x). Read by V8 at each collection, so setting it at start is enough.
 */
export const HEAP_GROWING_PERCENT = 100;

async function run(opts: { server: boolean; queues?: string[] }): Promise<void> {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const loaded = loadConfig();
  const log = createLogger(loaded.logLevel);
  const known = allQueueNames();
  for (const q of opts.queues ?? []) {
    if (!known.includes(q)) throw new UserError(`unknown queue "${q}" (known: ${known.join(', ')})`, 'CRIER_ERR_INPUT', { field: '--queues' });
  }
  const handle = await connectRedis(loaded, log, { supervise: true });
  const config = await ensureSecret(loaded, handle, log);
  const scheduler = new Scheduler(config, handle, log);
  await scheduler.reconcile();
  if (!opts.queues || opts.queues.includes(COLLECT_QUEUE)) await reconcileCollectors(config, handle, log);
  // An audience from a version that did not keep the unsubscribed and opt-out sets is indexed once, in
  // the background, by the processes that plan (the ones that read the sets); until then planning reads
  // every member's hash (correct, only slower).
  if (!opts.queues || opts.queues.includes(CAMPAIGN_QUEUE)) void indexExclusions(handle.redis, config.redis_prefix, (read) => log.info({ read }, 'indexing unsubscribes for planning'))
    .then((read) => (read > 0 ? log.info({ read }, 'unsubscribes indexed for planning') : undefined))
    .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'indexing unsubscribes failed: planning reads each member until it is done'));
  let reconcileRunning = false;
  const reconciling = setInterval(() => {
    if (reconcileRunning) return; // still waiting (Redis away?): one run at a time
    reconcileRunning = true;
    scheduler
      .reconcile()
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reconcile failed'))
      .finally(() => (reconcileRunning = false));
  }, config.reconcile_ms);
  const pool = startWorkers({ config, handle, log, queues: opts.queues });
  // Loaded only here: the dashboard's modules would slow every other command's start.
  const server = opts.server ? await (await import('../server/index.js')).buildServer(config, handle, log) : undefined;
  if (server) {
    try {
      await server.listen({ port: config.port, host: config.host });
    } catch (err) {
      await pool.close();
      await scheduler.close();
      await handle.close();
      throw new UserError(`cannot listen on port ${config.port}: ${(err as Error).message} (set PORT to another port)`, 'CRIER_ERR_CONFIG', { field: 'PORT' });
    }
  }
  const dry: string[] = [];
  for (const name of channelNames()) {
    const adapter = channelDefinition(name)!.create(config);
    if (adapter.dryRun) dry.push(name);
    await adapter.close();
  }
  const redisWhere = config.redisUrl ? 'REDIS_URL' : `embedded (${config.dataDir}/redis)`;
  const bound = server?.server.address();
  const listening = typeof bound === 'object' && bound ? bound : undefined;
  log.info({ redis: redisWhere, host: listening?.address, port: listening?.port, dryRun: dry, outbox: dry.length ? config.outboxDir : undefined, queues: opts.queues ?? 'all' }, 'crier is running');
  // A plain summary for the person at the terminal; the JSON logs go to stderr.
  const loopback = config.host === '127.0.0.1' || config.host === 'localhost' || config.host === '::1';
  const lines = [
    server
      ? `Crier is running on http://localhost:${listening?.port ?? config.port} (dashboard: /dashboard, sign-in accounts: crier users add; press room: /press; health: /healthz)${loopback ? '; this machine only (set HOST=0.0.0.0 to listen on every interface)' : `; listening on ${config.host}`}`
      : `Crier worker is running (queues: ${(opts.queues ?? known).join(', ')})`,
    `Redis: ${config.redisUrl ? 'REDIS_URL' : `embedded, data in ${config.dataDir}/redis (set REDIS_URL to use your own)`}`,
    dry.length ? `Dry-run channels (no credentials): ${dry.join(', ')}: output goes to ${config.outboxDir}` : 'All channels have credentials: messages are really sent',
    'Stop with Ctrl-C (jobs in flight finish first).',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping: draining in-flight jobs');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  clearInterval(reconciling);
  await server?.close();
  await pool.close();
  await scheduler.close();
  await handle.close();
  log.info('stopped');
}

export function registerRunCommands(program: Command): void {
  program
    .command('start')
    .description('run everything: HTTP server, scheduler and all workers')
    .action(() => run({ server: true }));
  program
    .command('worker')
    .description('run workers only (add machines against the same Redis)')
    .option('--queues <names>', `comma-separated queues (default all: ${allQueueNames().join(',')})`)
    .action((opts: { queues?: string }) => run({ server: false, queues: opts.queues?.split(',').map((s) => s.trim()).filter(Boolean) }));
}
