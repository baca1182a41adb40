import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Config } from '../../src/config.js';
import { CLI_JS, ROOT } from './dist.js';

/**
 * `crier worker` as a real child process (the built CLI, which the global
 * setup builds), so a test can kill -9 it the way an operator's machine dies,
 * and start another.
 */

/** The environment that gives a child process the same Crier as `config` (same Redis, prefix, secret, SMTP). */
export function childEnv(config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CRIER_CONFIG: config.configFile,
    CRIER_DATA_DIR: config.dataDir,
    CRIER_SECRET: config.secret,
    PUBLIC_URL: config.publicUrl,
    LOG_LEVEL: 'info',
    ...extra,
  };
  if (config.redisUrl) env.REDIS_URL = config.redisUrl;
  if (config.smtpUrl) env.SMTP_URL = config.smtpUrl;
  return env;
}

export interface WorkerChild {
  process: ChildProcess;
  /** Resolves once the child logs that its workers are running. */
  ready: Promise<void>;
  /** Resolves with the exit code or signal. */
  exited: Promise<string>;
  /** Log lines the child printed (pino JSON), for diagnosis. */
  lines: string[];
  kill(signal: NodeJS.Signals): Promise<string>;
}

export function spawnWorker(config: Config, opts: { queues?: string[]; env?: Record<string, string> } = {}): WorkerChild {
  const args = [CLI_JS, 'worker', ...(opts.queues ? ['--queues', opts.queues.join(',')] : [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: childEnv(config, opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${lines.join('\n')}`)), 20_000);
    // Logs go to stderr (pino fd 2); stdout is for command output.
    const onLine = (line: string) => {
      lines.push(line);
      // startWorkers() logs "workers started"; the CLI then prints its own banner (wording may change).
      if (line.includes('"msg":"workers started"') || /is running/i.test(line)) {
        clearTimeout(timer);
        resolve();
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${how}) before it was ready:\n${lines.join('\n')}`));
    });
  });
  ready.catch(() => undefined);
  return {
    process: child,
    ready,
    exited,
    lines,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
