import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitReady } from '../helpers/redis-server.js';

/**
 * A private redis-server that the reliability suite can kill with SIGKILL (no
 * clean shutdown, no final fsync) and start again on the same port and AOF.
 * `appendfsync always`: every acknowledged write is on disk, so what is
 * measured is Crier's recovery, not the fsync window (see the README on
 * `everysec`).
 */
export interface KillableRedis {
  url: string;
  crash(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startKillableRedis(): Promise<KillableRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-rel-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--logfile', path.join(dir, 'redis.log')];
  let child: ChildProcess | undefined;
  const kill = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  const start = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitReady(port);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    crash: () => kill('SIGKILL'),
    start,
    async stop() {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
