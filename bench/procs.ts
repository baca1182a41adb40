import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import { NODE_FLAGS } from '../src/node-flags.js';

/**
 * Processes for fair benchmarks: the SMTP sink, the baseline and Crier each
 * run in a process of their own, and the CPU of every one of them (redis-server
 * included) is counted.
 */

const here = import.meta.dirname;
export const CLI = path.resolve(here, '../src/cli/main.js');

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ: 100 on every Linux the kernel ABI allows). */
const USER_HZ = 100;

/** The fields of /proc/<pid>/stat after the ")" that closes the command name: [0] is field 3 (state), [1] field 4 (ppid). */
export function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time (user + system) a live process has used so far, in microseconds (Linux /proc). */
export function cpuOfPid(pid: number): number {
  // utime is field 14, stime 15.
  const fields = statFields(pid);
  return ((Number(fields[11]) + Number(fields[12])) / USER_HZ) * 1e6;
}

/** VmRSS and VmHWM (the kernel's own peak) of a process, in bytes (Linux /proc); zeros once it has exited. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { rss: 0, hwm: 0 };
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** redis-server's own CPU so far (INFO cpu, main and background threads), in microseconds. */
export async function cpuOfRedis(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const read = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1e6;
}

export interface SinkStats {
  count: number;
  bytes: number;
  firstAt: number;
  lastAt: number;
}

export interface SinkProcess {
  url: string;
  pid: number;
  stats(): Promise<SinkStats>;
  arrivals(): Promise<Array<[number, string]>>;
  reset(): Promise<void>;
  /** Polls until `n` messages have arrived (or throws after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<SinkStats>;
  stop(): Promise<void>;
}

/** Forks bench/sink-main.js; `delayMs` makes it answer each message that much later. */
export async function startSinkProcess(opts: { delayMs?: number; record?: boolean } = {}): Promise<SinkProcess> {
  const child = fork(path.join(here, 'sink-main.js'), [], {
    env: { PATH: process.env.PATH, SINK_DELAY_MS: String(opts.delayMs ?? 0), SINK_RECORD: opts.record ? '1' : '0' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = <T>(type: string): Promise<T> =>
    new Promise((resolve) => {
      const on = (msg: { type: string }) => {
        if (msg.type !== type) return;
        child.off('message', on);
        resolve(msg as T);
      };
      child.on('message', on);
      child.send({ type });
    });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sink exited (${code})`)));
    child.once('message', (msg: { type: string; port: number }) => resolve(msg.port));
  });
  child.removeAllListeners('exit');
  const stats = () => ask<SinkStats>('stats');
  return {
    url: `smtp://127.0.0.1:${port}`,
    pid: child.pid!,
    stats,
    arrivals: async () => (await ask<{ arrivals: Array<[number, string]> }>('arrivals')).arrivals,
    reset: async () => {
      await ask('reset');
    },
    async waitFor(n, timeoutMs = 600_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await stats();
        if (s.count >= n) return s;
        if (Date.now() > deadline) throw new Error(`sink: ${s.count} of ${n} messages after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Extra node flags for the measured processes: BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles them. */
export const nodeArgs = (): string[] => (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** The environment a `crier` child process gets: only what it needs, as on another machine. */
export function crierEnv(config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: config.redisUrl,
    CRIER_CONFIG: config.configFile,
    CRIER_DATA_DIR: config.dataDir,
    CRIER_SECRET: config.secret,
    PUBLIC_URL: config.publicUrl,
    LOG_LEVEL: 'info',
    ...(config.smtpUrl ? { SMTP_URL: config.smtpUrl } : {}),
    ...extra,
  };
}

/** `crier worker --queues …` as its own process, started as `npm start` and the Dockerfile start Crier (NODE_FLAGS); resolves once its workers have started. */
export function spawnWorker(config: Config, queues: string[], extra: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...nodeArgs(), CLI, 'worker', '--queues', queues.join(',')], { env: crierEnv(config, extra), stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    child.once('exit', (code) => reject(new Error(`worker exited (${code}):\n${lines.slice(-20).join('\n')}`)));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (lines.length < 200) lines.push(line);
      if (line.includes('"msg":"workers started"')) {
        child.removeAllListeners('exit');
        resolve(child);
      }
    });
  });
}

/** SIGTERM and wait (jobs in flight finish first); SIGKILL after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "median (min–max)" of a sample, formatted by `f`. */
export function spread(xs: number[], f: (x: number) => string): string {
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
