import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, linkSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { DependencyError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The embedded default: with REDIS_URL unset, Crier runs its own redis-server
 * (AOF on) in `<dataDir>/redis/`, reachable only through a unix socket there.
 * Whichever Crier process needs it first starts it, detached, so it outlives a
 * short CLI command; the last one to let go shuts it down (see release()).
 *
 * Every process that uses the server holds a "claim" connection from
 * ensureEmbeddedRedis() until release(). Claiming and the shut-down decision
 * both happen under the start lock, so the server can never be shut down
 * between one process finding it alive and that process connecting.
 */
export interface EmbeddedRedis {
  socketPath: string;
  /** Quits `conn`; shuts the server down (AOF flushed) when no other client remains. */
  release(conn: Redis): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
/** A starter may spend START_TIMEOUT_MS waiting for PING; give waiters a little more. */
const LOCK_TIMEOUT_MS = 12_000;
/** No holder keeps the lock this long (start or shutdown ≤ ~10 s): older means the holder is gone. */
const LOCK_MAX_AGE_MS = 60_000;
/** sun_path is 108 bytes on Linux, 104 on macOS, each including the trailing NUL. */
const MAX_SOCKET_BYTES = process.platform === 'darwin' ? 103 : 107;

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

export type PingResult = 'ok' | 'loading' | 'down';

/** A raw PING on the socket: no client library, no reconnect loops, no error events to swallow. */
export function ping(socketPath: string, timeoutMs = 1000): Promise<PingResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: socketPath });
    let buf = '';
    const done = (r: PingResult) => {
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => done('down'));
    sock.on('error', () => done('down'));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (!buf.includes('\r\n')) return;
      done(buf.startsWith('+PONG') ? 'ok' : buf.startsWith('-LOADING') ? 'loading' : 'down');
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim().split(/\s+/)[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** After a reboot the pid in a stale pidfile may belong to anything, even another redis: only ours counts. */
function isOurServer(pid: number, dir: string, socketPath: string): boolean {
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(socketPath)) return true;
    return readlinkSync(`/proc/${pid}/cwd`) === dir;
  } catch {
    const ps = spawnSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' });
    return ps.status === 0 && ps.stdout.includes(socketPath);
  }
}

function missing(detail: string): DependencyError {
  return new DependencyError(
    `${detail}. Crier needs Redis 6.2 or newer: install it (sudo apt-get install redis-server, or brew install redis) ` +
      `so that redis-server is on your PATH and Crier runs its own copy in the data dir, or point Crier at a running Redis ` +
      `with REDIS_URL=redis://host:6379.`,
    'CRIER_ERR_REDIS_MISSING',
  );
}

/** Finds the binary and checks it is Redis ≥ 6.2 (`--version` also proves it can run). */
function resolveServer(bin: string): string {
  let found: string | undefined;
  const candidates = bin.includes('/') ? [path.resolve(bin)] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      found = c;
      break;
    } catch {
      // not here; keep looking
    }
  }
  if (!found) throw missing(`REDIS_URL is not set and ${bin} was not found${bin.includes('/') ? '' : ' on PATH'}`);
  const v = spawnSync(found, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const m = /v=(\d+)\.(\d+)/.exec(v.stdout ?? '');
  if (v.status !== 0 || !m) throw missing(`REDIS_URL is not set and ${found} does not run as redis-server`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < 6 || (major === 6 && minor < 2)) throw missing(`REDIS_URL is not set and ${found} is Redis ${major}.${minor}`);
  return found;
}

function logTail(logFile: string, lines = 12): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

/** Pidfile-style lock: O_EXCL create holding "<pid> <token>"; the token tells apart callers in one process. */
async function acquireLock(lockPath: string, log: Logger): Promise<() => void> {
  const mine = `${process.pid} ${randomBytes(6).toString('hex')}`;
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, mine);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(lockPath, 'utf8') === mine) rmSync(lockPath, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readPid(lockPath);
    let age = 0;
    try {
      age = Date.now() - statSync(lockPath).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // An empty lock is a holder between create and write, unless it has stayed empty.
    const stale = holder === undefined ? age > 5000 : !pidAlive(holder) || age > LOCK_MAX_AGE_MS;
    if (stale) {
      log.warn({ lockPath, holder }, 'removing stale embedded redis start lock');
      removeStaleLock(lockPath, holder);
      continue;
    }
    if (Date.now() > deadline) {
      throw new DependencyError(
        `another Crier process (pid ${holder ?? '?'}) has held ${lockPath} for over ${LOCK_TIMEOUT_MS / 1000} s while starting or stopping the embedded Redis; if no Crier process is running, delete that file`,
      );
    }
    await sleep(50);
  }
}

/** Move the lock aside first, so a waiter racing us cannot delete a lock someone has just taken afresh. */
function removeStaleLock(lockPath: string, stalePid: number | undefined): void {
  const aside = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lockPath, aside);
  } catch {
    return;
  }
  if (readPid(aside) !== stalePid) {
    try {
      linkSync(aside, lockPath);
    } catch {
      // someone holds a newer lock; nothing to restore
    }
  }
  rmSync(aside, { force: true });
}

type Paths = Record<'dir' | 'socketPath' | 'pidFile' | 'logFile' | 'lockPath', string>;

/** Waits for PING; a live server of ours that is still loading its AOF counts as starting. */
async function waitReady(p: Paths, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if ((await ping(p.socketPath)) === 'ok') return;
    const gone = exited();
    if (gone || Date.now() > deadline) {
      const why = gone ?? `did not answer PING within ${START_TIMEOUT_MS / 1000} s`;
      throw new DependencyError(`the embedded redis-server (${p.dir}) ${why}. Last lines of ${p.logFile}:\n${logTail(p.logFile)}`);
    }
    await sleep(50);
  }
}

async function startServer(bin: string, p: Paths, log: Logger): Promise<void> {
  const pid = readPid(p.pidFile);
  if (pid !== undefined && pidAlive(pid) && isOurServer(pid, p.dir, p.socketPath)) {
    log.info({ redisPid: pid }, 'embedded redis-server is running but not answering yet; waiting');
    await waitReady(p, () => (pidAlive(pid) ? undefined : 'exited while starting'));
    return;
  }
  // Killed (-9) or rebooted: the socket and pidfile are leftovers. The AOF stays and is loaded on start.
  rmSync(p.socketPath, { force: true });
  rmSync(p.pidFile, { force: true });
  const args = ['--port', '0', '--unixsocket', p.socketPath, '--unixsocketperm', '700', '--dir', p.dir, '--daemonize', 'no'];
  args.push('--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--pidfile', p.pidFile, '--logfile', p.logFile);
  // Own process group and no stdio: the server must outlive a short CLI command and its terminal.
  const child = spawn(bin, args, { cwd: p.dir, detached: true, stdio: 'ignore' });
  let exitedHow: string | undefined;
  child.on('error', (err) => (exitedHow = `could not be started: ${err.message}`));
  child.on('exit', (code, signal) => (exitedHow = `exited while starting (${signal ?? `code ${code}`})`));
  child.unref();
  log.info({ redisPid: child.pid, socket: p.socketPath }, 'starting embedded redis-server');
  await waitReady(p, () => exitedHow);
}

function claimConnection(socketPath: string, log: Logger): Redis {
  const r = new Redis({
    path: socketPath,
    connectionName: `crier-claim:${process.pid}`,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', (err) => log.debug({ err: err.message }, 'embedded redis claim connection error'));
  return r;
}

async function quitAndWait(conn: Redis): Promise<void> {
  if (conn.status === 'end') return;
  if (conn.status === 'wait') {
    conn.disconnect();
    return;
  }
  const ended = new Promise<void>((res) => {
    conn.once('end', () => res());
    setTimeout(res, 2000).unref();
  });
  await conn.quit().catch(() => conn.disconnect());
  await ended;
}

async function waitGone(pid: number | undefined, socketPath: string): Promise<boolean> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (pid !== undefined ? !pidAlive(pid) : (await ping(socketPath)) === 'down') return true;
    await sleep(25);
  }
  return false;
}

/**
 * Makes sure the embedded redis-server for `dataDir` runs and returns its socket.
 * The binary is `serverBin`, else env CRIER_REDIS_SERVER (tests point it at a
 * missing file to see the "no Redis" error), else `redis-server` from PATH.
 */
export async function ensureEmbeddedRedis(dataDir: string, log: Logger, serverBin?: string): Promise<EmbeddedRedis> {
  const dir = path.join(path.resolve(dataDir), 'redis');
  const p: Paths = {
    dir,
    socketPath: path.join(dir, 'redis.sock'),
    pidFile: path.join(dir, 'redis.pid'),
    logFile: path.join(dir, 'redis.log'),
    lockPath: path.join(dir, 'start.lock'),
  };
  if (Buffer.byteLength(p.socketPath) > MAX_SOCKET_BYTES) {
    throw new DependencyError(
      `the embedded Redis socket path ${p.socketPath} is longer than the ${MAX_SOCKET_BYTES} bytes a unix socket allows; set CRIER_DATA_DIR to a shorter path (or set REDIS_URL)`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const bin = serverBin ?? process.env.CRIER_REDIS_SERVER ?? 'redis-server';

  const unlock = await acquireLock(p.lockPath, log);
  const claim = claimConnection(p.socketPath, log);
  try {
    if ((await ping(p.socketPath)) === 'ok') log.debug({ socket: p.socketPath }, 'reusing embedded redis-server');
    else await startServer(resolveServer(bin), p, log);
    await claim.connect();
    // The claim must not keep a finished CLI command alive; it dies with the process anyway.
    claim.stream.unref();
  } catch (err) {
    claim.disconnect();
    if (err instanceof DependencyError) throw err;
    throw new DependencyError(`cannot reach the embedded Redis at ${p.socketPath}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    unlock();
  }

  return {
    socketPath: p.socketPath,
    async release(conn: Redis) {
      const unlockRelease = await acquireLock(p.lockPath, log);
      try {
        await quitAndWait(claim);
        await quitAndWait(conn);
        await shutdownIfUnused(p, log);
      } finally {
        unlockRelease();
      }
    },
  };
}

/**
 * Runs under the lock with the caller's connections already closed. A fresh
 * control connection that never reconnects and never resends: ioredis would
 * otherwise replay SHUTDOWN at whatever answers on the socket next.
 */
async function shutdownIfUnused(p: Paths, log: Logger): Promise<void> {
  const ctl = new Redis({
    path: p.socketPath,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: false,
  });
  ctl.on('error', () => undefined);
  try {
    await ctl.connect();
  } catch {
    return; // already gone
  }
  const clients = String(await ctl.client('LIST')).trim().split('\n').filter(Boolean);
  if (clients.length > 1) {
    log.debug({ clients: clients.length - 1 }, 'embedded redis-server still in use; leaving it running');
    await quitAndWait(ctl);
    return;
  }
  const pid = readPid(p.pidFile);
  try {
    await ctl.call('SHUTDOWN');
  } catch (err) {
    // The server closing the connection is the success case; a reply error means it refused.
    if (err instanceof Error && err.name === 'ReplyError') {
      log.warn({ err: err.message }, 'embedded redis-server refused to shut down');
      ctl.disconnect();
      return;
    }
  }
  ctl.disconnect();
  if (await waitGone(pid, p.socketPath)) log.info({ redisPid: pid }, 'embedded redis-server shut down');
  else log.warn({ redisPid: pid }, 'embedded redis-server did not exit after SHUTDOWN');
}
