import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

/** A private redis-server for tests: random free port, its own temp dir, AOF on. Never a shared Redis. */
export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Kills the server (SIGKILL: no goodbye to clients) and waits for it to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (so from its AOF). */
  start(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return;
    } catch {
      r.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-test-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--logfile', path.join(dir, 'redis.log')];
  const handle: PrivateRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    process: spawn('redis-server', args, { stdio: 'ignore' }),
    async stop() {
      await stopProcess(handle.process);
    },
    async restart() {
      await stopProcess(handle.process);
      handle.process = spawn('redis-server', args, { stdio: 'ignore' });
      await waitReady(port);
    },
    async kill() {
      await stopProcess(handle.process, 'SIGKILL');
    },
    async start() {
      handle.process = spawn('redis-server', args, { stdio: 'ignore' });
      await waitReady(port);
    },
  };
  await waitReady(port);
  return handle;
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
