import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { subscriberId } from './audience-keys.js';
import { readCsvRecords } from './csv.js';

/**
 * What `subscribers forget` erases besides the subscriber's keys: every copy
 * of the address that Crier itself wrote to disk (rejects files, campaign
 * previews, dry-run outbox files), and — on the embedded Redis — the old
 * entries in its append-only file, rewritten so they leave the disk.
 */

export interface FileErasure {
  /** Files deleted because they held the address (previews, outbox messages). */
  removed: string[];
  /** Rejects files rewritten without the rows that held it. */
  rewritten: string[];
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function holds(file: string, needle: string): boolean {
  // Outbox and preview files are small (a message, a post); a huge file is not ours to judge whole.
  if (statSync(file).size > 50 * 1024 * 1024) return false;
  return readFileSync(file, 'latin1').toLowerCase().includes(needle);
}

/** Rewrites a rejects CSV without the records that mention the address; deletes it when none is left. */
async function scrubRejects(file: string, needle: string): Promise<boolean> {
  if (!holds(file, needle)) return false;
  const kept: string[] = [];
  let header: string | undefined;
  for await (const rec of readCsvRecords(file)) {
    if (header === undefined) {
      header = rec.raw;
      continue;
    }
    if (!rec.raw.toLowerCase().includes(needle)) kept.push(rec.raw);
  }
  if (kept.length === 0) rmSync(file, { force: true });
  else writeFileSync(`${file}`, `${[header ?? 'line,reason,raw', ...kept].join('\n')}\n`);
  return true;
}

/**
 * Removes the address from files under the data dir: rows of rejects files
 * (`<data>/rejects`), and whole preview (`<data>/preview`) and outbox files
 * that mention it or, for outbox files, are named after the subscriber (a
 * dry-run text holds only the phone number). A preview written with `--out`
 * elsewhere is not found.
 */
export async function eraseFromFiles(dirs: { dataDir: string; outboxDir: string }, email: string): Promise<FileErasure> {
  const needle = email.trim().toLowerCase();
  const result: FileErasure = { removed: [], rewritten: [] };
  if (!needle) return result;
  // Outbox files are named after the subscriber's id: a dry-run text holds only the phone number, not the address.
  const named = `-${subscriberId(needle)}.`; // 20 hex digits: file-safe as it is
  for (const file of filesUnder(path.join(dirs.dataDir, 'rejects'))) {
    if (await scrubRejects(file, needle)) result.rewritten.push(file);
  }
  for (const file of [...filesUnder(path.join(dirs.dataDir, 'preview')), ...filesUnder(dirs.outboxDir)]) {
    if (path.basename(file).includes(named) || holds(file, needle)) {
      rmSync(file, { force: true });
      result.removed.push(file);
    }
  }
  return result;
}

/**
 * Delivery errors stored with past campaigns can quote the address (an SMTP
 * "550 <x@example.org>: no such user"): the erased subscriber's are deleted.
 * Returns how many were.
 */
export async function eraseDeliveryErrors(redis: Redis, prefix: string, subscriberId: string): Promise<number> {
  let erased = 0;
  const ids = await redis.zrange(`${prefix}:campaigns`, 0, -1);
  for (const id of ids) {
    const channels = ((await redis.hget(`${prefix}:campaign:${id}`, 'channels_list')) ?? '').split(',').filter(Boolean);
    if (channels.length === 0) continue;
    erased += await redis.hdel(`${prefix}:campaign:${id}:failures`, ...channels.map((ch) => `${ch}:${subscriberId}`));
  }
  return erased;
}

/**
 * BGREWRITEAOF and wait for it: the rewritten file holds only the data as it
 * is now, so the erased subscriber's old entries leave the disk. For the
 * embedded Redis only; an external Redis is the operator's (see README).
 */
export async function rewriteAppendOnlyFile(redis: Redis, log: Logger, timeoutMs = 60_000): Promise<void> {
  const info = async () => {
    const text = await redis.info('persistence');
    return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));
  };
  try {
    await redis.bgrewriteaof();
  } catch (err) {
    // "already in progress": that rewrite started before our erase; schedule ours after it.
    if (!/in progress|scheduled/i.test((err as Error).message)) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const i = await info();
    if (i.aof_rewrite_in_progress === '0' && i.aof_rewrite_scheduled === '0') {
      if (i.aof_last_bgrewrite_status !== 'ok') throw new Error(`Redis could not rewrite its append-only file (${i.aof_last_bgrewrite_status})`);
      return;
    }
    if (Date.now() > deadline) {
      log.warn('the append-only file rewrite is still running; old entries leave the disk when it finishes');
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
