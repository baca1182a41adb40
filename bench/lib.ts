import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { SMTPServer } from 'smtp-server';
import { loadConfig, type Config } from '../src/config.js';
import { statFields } from './procs.js';

/**
 * What every benchmark needs: a private redis-server (never a shared one), a
 * local SMTP sink that accepts and counts, a Crier config pointing at both,
 * and an RSS sampler. Loopback only.
 */

/** The processes this one started (Linux: their /proc/<pid>/stat names this pid as the parent). */
function childPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(entry)[1]) === process.pid) pids.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return pids;
}

/**
 * A benchmark stopped midway (Ctrl-C, `timeout`, a crash) takes its sink, baselines, workers and
 * redis-server with it: one worker left running once ate a core for 40 minutes and skewed every
 * measurement after it.
 */
function stopChildrenOnExit(): void {
  const kill = () => {
    for (const pid of childPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  };
  process.once('exit', kill);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      kill();
      process.exit(code);
    });
  }
}
// Only in the benchmark itself: a forked baseline (it has an IPC channel) handles its own SIGTERM.
if (!process.send) stopChildrenOnExit();

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface BenchRedis {
  url: string;
  dir: string;
  stop(): Promise<void>;
}

/** redis-server on a free port with AOF (everysec), as production runs it. */
export async function startRedis(): Promise<BenchRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--logfile', path.join(dir, 'redis.log')];
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      break;
    } catch {
      r.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start (is it on PATH?)`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CountingSink {
  url: string;
  readonly count: number;
  readonly bytes: number;
  /** Resolves once `n` messages have been accepted. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}

/** An SMTP server that accepts every message, reads it to the end, and only counts it. */
export async function startCountingSink(): Promise<CountingSink> {
  let count = 0;
  let bytes = 0;
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
    onData(stream, _session, callback) {
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      stream.on('end', () => {
        count++;
        callback();
        if (waiters.length > 0) {
          const ready = waiters.filter((w) => w.n <= count);
          waiters = waiters.filter((w) => w.n > count);
          for (const w of ready) w.resolve();
        }
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    get count() {
      return count;
    },
    get bytes() {
      return bytes;
    },
    waitFor(n) {
      if (count >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A frozen Crier config for the benchmark: its own data dir, prefix and YAML. */
export function benchConfig(env: Record<string, string>, yaml = ''): Config {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crier-bench-data-'));
  const file = path.join(dataDir, 'crier.config.yaml');
  writeFileSync(file, `redis_prefix: bench\n${yaml}\n`);
  return loadConfig({
    CRIER_DATA_DIR: dataDir,
    CRIER_CONFIG: file,
    CRIER_SECRET: 'bench-secret-0123456789abcdef',
    LOG_LEVEL: 'silent',
    PUBLIC_URL: 'http://127.0.0.1:8080',
    ...env,
  });
}

/** Writes an N-row subscribers CSV (email,name,area,topics) and returns its path. */
export function writeAudienceCsv(dir: string, n: number): string {
  const file = path.join(dir, `audience-${n}.csv`);
  const rows: string[] = ['email,name,area,topics'];
  for (let i = 0; i < n; i++) rows.push(`reader${i}@example.org,Reader ${i},Rugby,roads;burglary`);
  writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

/** Samples RSS every `everyMs`; stop() returns the peak in bytes. */
export function sampleRss(everyMs = 100): { stop(): number; readonly peak: number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, everyMs);
  return {
    get peak() {
      return peak;
    },
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return peak;
    },
  };
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = raw === undefined ? fallback : Number(raw.replace(/_/g, ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

/**
 * Turns Nagle's algorithm off on every TCP socket this process opens.
 * nodemailer 8 does not set TCP_NODELAY (Crier's email channel does, itself), so the small final
 * "." of each message waits for the server's delayed ACK (~40 ms on Linux):
 * that caps every SMTP connection at ~25 messages/s and hides what Crier's own
 * machinery costs. Applied to the baseline and to Crier alike.
 */
export function forceNoDelay(): void {
  const proto = net.Socket.prototype as unknown as { connect: (...args: unknown[]) => net.Socket };
  const connect = proto.connect;
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    this.setNoDelay(true);
    return connect.apply(this, args);
  };
}
