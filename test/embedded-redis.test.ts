import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { DependencyError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { ensureEmbeddedRedis } from '../src/redis/embedded.js';
import { compileEmbedded, embeddedServerPids, killEmbeddedAndRemove, shortTempDir, spawnEmbeddedChild } from './helpers/embedded-child.js';

const log = createLogger('silent');
const dirs: string[] = [];

function newDataDir(): string {
  const d = shortTempDir();
  dirs.push(d);
  return d;
}

function connect(socketPath: string): Redis {
  const r = new Redis({ path: socketPath, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  return r;
}

function pidOf(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'redis', 'redis.pid'), 'utf8').trim());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A pid that surely belongs to no process: one that has just exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

afterAll(() => {
  for (const d of dirs) killEmbeddedAndRemove(d);
});

describe('embedded redis-server', () => {
  it('starts, persists through release (AOF) and restarts with the data', async () => {
    const dataDir = path.join(newDataDir(), 'nested'); // created if missing
    const e = await ensureEmbeddedRedis(dataDir, log);
    expect(e.socketPath).toBe(path.join(dataDir, 'redis', 'redis.sock'));
    const pid = pidOf(dataDir);
    const r = connect(e.socketPath);
    expect(await r.ping()).toBe('PONG');
    expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await r.config('GET', 'port')).toEqual(['port', '0']);
    await r.set('crier-test:key', 'kept');
    await e.release(r);
    expect(alive(pid)).toBe(false);
    expect(existsSync(e.socketPath)).toBe(false);

    const e2 = await ensureEmbeddedRedis(dataDir, log);
    const r2 = connect(e2.socketPath);
    expect(await r2.get('crier-test:key')).toBe('kept');
    expect(pidOf(dataDir)).not.toBe(pid);
    await e2.release(r2);
    expect(embeddedServerPids(dataDir)).toEqual([]);
  });

  it('reuses a running server and shuts it down only when the last user releases (one process)', async () => {
    const dataDir = newDataDir();
    const [a, b] = await Promise.all([ensureEmbeddedRedis(dataDir, log), ensureEmbeddedRedis(dataDir, log)]);
    const pid = pidOf(dataDir);
    const ra = connect(a.socketPath);
    const rb = connect(b.socketPath);
    await Promise.all([ra.ping(), rb.ping()]);
    await a.release(ra);
    expect(alive(pid)).toBe(true);
    expect(await rb.ping()).toBe('PONG');
    await b.release(rb);
    expect(alive(pid)).toBe(false);
  });

  describe('shared by separate Crier processes', () => {
    let compiled: string;
    beforeAll(() => {
      compiled = compileEmbedded();
    }, 60_000);
    afterAll(() => rmSync(compiled, { recursive: true, force: true }));

    it('concurrent starters on a fresh data dir end up with exactly one redis-server', async () => {
      const dataDir = newDataDir();
      const children = [0, 1, 2].map(() => spawnEmbeddedChild(compiled, dataDir));
      const inProcess = ensureEmbeddedRedis(dataDir, log);
      const pids = await Promise.all(children.map((c) => c.ready));
      const mine = await inProcess;
      expect(new Set(pids).size).toBe(1);
      expect(embeddedServerPids(dataDir)).toEqual([pids[0]]);

      const r = connect(mine.socketPath);
      await r.set('crier-test:shared', '1');
      // The first releasers leave it running for the others.
      await children[0]!.release();
      await children[1]!.release();
      expect(alive(pids[0]!)).toBe(true);
      await mine.release(r);
      expect(alive(pids[0]!)).toBe(true);
      // The last one shuts it down.
      await children[2]!.release();
      expect(alive(pids[0]!)).toBe(false);
      expect(embeddedServerPids(dataDir)).toEqual([]);
    });
  });

  it('cleans up a stale socket, pidfile and start lock and starts fresh', async () => {
    const dataDir = newDataDir();
    const dir = path.join(dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'redis.sock'), '');
    // A live pid that is not a redis-server, as after a reboot.
    writeFileSync(path.join(dir, 'redis.pid'), `${process.pid}\n`);
    writeFileSync(path.join(dir, 'start.lock'), `${deadPid()} abc`);
    const e = await ensureEmbeddedRedis(dataDir, log);
    const r = connect(e.socketPath);
    expect(await r.ping()).toBe('PONG');
    expect(pidOf(dataDir)).not.toBe(process.pid);
    expect(existsSync(path.join(dir, 'start.lock'))).toBe(false);
    await e.release(r);
  });

  it('recovers after the server was killed with SIGKILL, keeping its AOF data', async () => {
    const dataDir = newDataDir();
    const e = await ensureEmbeddedRedis(dataDir, log);
    const r = connect(e.socketPath);
    await r.set('crier-test:survives', 'yes');
    const pid = pidOf(dataDir);
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await new Promise((res) => setTimeout(res, 20));
    r.disconnect();
    expect(existsSync(e.socketPath)).toBe(true);

    const e2 = await ensureEmbeddedRedis(dataDir, log);
    const r2 = connect(e2.socketPath);
    expect(await r2.get('crier-test:survives')).toBe('yes');
    await e2.release(r2);
  });

  it('says how to get Redis when redis-server is missing', async () => {
    const dataDir = newDataDir();
    const err = await ensureEmbeddedRedis(dataDir, log, path.join(dataDir, 'no-such-redis-server')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyError);
    const dep = err as DependencyError;
    expect(dep.code).toBe('CRIER_ERR_REDIS_MISSING');
    expect(dep.exitCode).toBe(2);
    expect(dep.message).toMatch(/6\.2/);
    expect(dep.message).toMatch(/apt-get install redis-server/);
    expect(dep.message).toMatch(/REDIS_URL=redis:\/\//);

    const before = process.env.CRIER_REDIS_SERVER;
    process.env.CRIER_REDIS_SERVER = 'crier-no-such-redis-server';
    try {
      const viaEnv = await ensureEmbeddedRedis(dataDir, log).catch((e: unknown) => e);
      expect((viaEnv as DependencyError).code).toBe('CRIER_ERR_REDIS_MISSING');
    } finally {
      if (before === undefined) delete process.env.CRIER_REDIS_SERVER;
      else process.env.CRIER_REDIS_SERVER = before;
    }
  });

  it('rejects a Redis older than 6.2, and reports the log tail when the server dies on start', async () => {
    const dataDir = newDataDir();
    const fake = (version: string) => {
      const file = path.join(dataDir, `redis-${version}`);
      // cwd is <dataDir>/redis, where the real server would write its log.
      const body = `if [ "$1" = --version ]; then echo "Redis server v=${version} sha=0"; exit 0; fi\necho "FATAL bad config line 3" > redis.log\nexit 1\n`;
      writeFileSync(file, `#!/bin/sh\n${body}`, { mode: 0o755 });
      return file;
    };
    const old = await ensureEmbeddedRedis(dataDir, log, fake('5.0.7')).catch((e: unknown) => e);
    expect((old as DependencyError).code).toBe('CRIER_ERR_REDIS_MISSING');
    expect((old as DependencyError).message).toMatch(/Redis 5\.0/);

    const dies = await ensureEmbeddedRedis(dataDir, log, fake('7.2.4')).catch((e: unknown) => e);
    expect(dies).toBeInstanceOf(DependencyError);
    expect((dies as DependencyError).exitCode).toBe(2);
    expect((dies as DependencyError).message).toMatch(/exited while starting/);
    expect((dies as DependencyError).message).toMatch(/FATAL bad config line 3/);
    expect(existsSync(path.join(dataDir, 'redis', 'start.lock'))).toBe(false);
  });

  it('refuses a data dir whose socket path is too long', async () => {
    const dataDir = path.join(newDataDir(), 'x'.repeat(120));
    const err = await ensureEmbeddedRedis(dataDir, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyError);
    expect((err as DependencyError).message).toMatch(/CRIER_DATA_DIR/);
  });

  it('connectRedis uses it when REDIS_URL is unset, end to end', async () => {
    const dataDir = newDataDir();
    // cwd = the data dir, so no crier.config.yaml from the repo is picked up.
    const config = loadConfig({ CRIER_DATA_DIR: dataDir, LOG_LEVEL: 'silent' }, dataDir);
    expect(config.redisUrl).toBeUndefined();
    const h = await connectRedis(config, log);
    await h.redis.set(`${h.prefix}:e2e`, 'ok');
    const dup = h.duplicate();
    expect(await dup.get(`${h.prefix}:e2e`)).toBe('ok');
    const pid = pidOf(dataDir);
    await h.close();
    expect(alive(pid)).toBe(false);

    const h2 = await connectRedis(config, log);
    expect(await h2.redis.get(`${h2.prefix}:e2e`)).toBe('ok');
    await h2.close();
    expect(embeddedServerPids(dataDir)).toEqual([]);
  });
});

describe('embedded redis-server supervised by a long-running process', () => {
  it('is started again on its AOF when it dies, and the same connections carry on', async () => {
    const dataDir = newDataDir();
    const config = loadConfig({ CRIER_DATA_DIR: dataDir, LOG_LEVEL: 'silent' }, dataDir);
    const h = await connectRedis(config, log, { supervise: true, superviseMs: 200 });
    try {
      await h.redis.set(`${h.prefix}:kept`, 'yes');
      const dup = h.duplicate();
      await new Promise((res) => setTimeout(res, 1500)); // appendfsync everysec
      const pid = pidOf(dataDir);
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 15_000;
      let next = pid;
      while ((next === pid || !alive(next)) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 100));
        try {
          next = pidOf(dataDir);
        } catch {
          // pidfile between servers
        }
      }
      expect(next).not.toBe(pid);
      expect(alive(next)).toBe(true);
      // The handle's own connections reconnect (capped backoff) and see the AOF's data.
      expect(await h.redis.get(`${h.prefix}:kept`)).toBe('yes');
      expect(await dup.get(`${h.prefix}:kept`)).toBe('yes');
    } finally {
      await h.close();
    }
    expect(embeddedServerPids(dataDir)).toEqual([]);
  });
});
