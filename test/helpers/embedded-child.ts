import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const root = path.resolve(import.meta.dirname, '../..');

/**
 * Compiles only src/redis/embedded.ts (and what it imports) into a temp dir,
 * so other processes can run it without a full build of the project, whose
 * other parts may be half-edited. Returns the dir; remove it when done.
 */
export function compileEmbedded(): string {
  const out = mkdtempSync(path.join(os.tmpdir(), 'crier-emb-js-'));
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, 'src/redis/embedded.ts', 'src/log.ts', '--outDir', out, '--rootDir', '.', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--esModuleInterop'];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  if (!existsSync(path.join(out, 'src/redis/embedded.js'))) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
  writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n');
  symlinkSync(path.join(root, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  return out;
}

/** Another Crier process using the embedded Redis: it connects, then releases when told. */
export interface EmbeddedChild {
  process: ChildProcess;
  /** Resolves with the redis-server pid the child sees once it has connected. */
  ready: Promise<number>;
  /** Tells the child to release the embedded Redis; resolves once it has. */
  release(): Promise<void>;
}

const childScript = `
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { ensureEmbeddedRedis } from './src/redis/embedded.js';
import { createLogger } from './src/log.js';
const [dataDir] = process.argv.slice(1);
try {
  const e = await ensureEmbeddedRedis(dataDir, createLogger('silent'));
  const r = new Redis({ path: e.socketPath, maxRetriesPerRequest: 0 });
  await r.ping();
  const pid = Number(readFileSync(dataDir + '/redis/redis.pid', 'utf8').trim());
  console.log(JSON.stringify({ ready: pid }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'release') {
      await e.release(r);
      console.log(JSON.stringify({ released: true }));
      process.exit(0);
    }
  }
} catch (err) {
  console.log(JSON.stringify({ error: String(err && err.message || err) }));
  process.exit(1);
}
`;

export function spawnEmbeddedChild(compiledDir: string, dataDir: string): EmbeddedChild {
  const child = spawn(process.execPath, ['--input-type=module', '-e', childScript, dataDir], { cwd: compiledDir, stdio: ['pipe', 'pipe', 'inherit'] });
  const waiters: Array<(msg: Record<string, unknown>) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    waiters.shift()?.(msg);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push(resolve);
      child.once('exit', (code) => reject(new Error(`child exited (${code})`)));
    });
  const ready = next().then((m) => {
    if (typeof m.ready !== 'number') throw new Error(`child failed: ${String(m.error)}`);
    return m.ready;
  });
  return {
    process: child,
    ready,
    async release() {
      const done = next();
      child.stdin!.write('release\n');
      const m = await done;
      if (m.released !== true) throw new Error(`child release failed: ${String(m.error)}`);
    },
  };
}

/** Pids of every redis-server serving this data dir (by its socket path in the process title). */
export function embeddedServerPids(dataDir: string): number[] {
  const sock = path.join(dataDir, 'redis', 'redis.sock');
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('redis-server') && l.includes(sock))
    .map((l) => Number.parseInt(l.trim(), 10));
}

/** Kills whatever embedded server a test left behind in `dataDir`, then removes the dir. */
export function killEmbeddedAndRemove(dataDir: string): void {
  for (const pid of embeddedServerPids(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
}

/** A short temp dir, so `<dir>/redis/redis.sock` stays well inside the unix socket path limit. */
export function shortTempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ce-'));
  mkdirSync(dir, { recursive: true });
  return dir;
}
