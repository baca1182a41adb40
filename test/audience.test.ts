import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Config } from '../src/config.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import {
  countAudience,
  emailHash,
  suppressionHash,
  exportList,
  findSubscriber,
  forgetSubscriber,
  getRecipients,
  importSubscribers,
  streamAudience,
  subscriberId,
  unsubscribe,
  audienceKeys,
  type AudienceSelector,
} from '../src/domain/audience.js';
import { deriveKey } from '../src/keys.js';
import { readAudit } from '../src/domain/audit.js';
import { registerSubscriberCommands, runForget, runImport } from '../src/cli/subscribers.js';
import { silentLogger, testConfig } from './helpers/context.js';

let config: Config;
let handle: RedisHandle;
let dir: string;

beforeAll(async () => {
  config = testConfig();
  handle = await connectRedis(config, silentLogger());
  dir = mkdtempSync(path.join(os.tmpdir(), 'crier-audience-'));
});
afterAll(async () => {
  await handle.close();
});

function csv(name: string, rows: string[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, ['email,name,area,topics', ...rows].join('\n') + '\n');
  return file;
}

const imp = (file: string, list: string) =>
  importSubscribers(handle.redis, handle.prefix, file, list, { rejectsDir: path.join(dir, 'rejects'), suppressionKey: deriveKey(config.secret, 'suppression') });

async function collect(selector: AudienceSelector, pageSize: number): Promise<string[][]> {
  const pages: string[][] = [];
  for await (const page of streamAudience(handle.redis, handle.prefix, selector, pageSize)) pages.push(page);
  return pages;
}

/** Every value stored under the test's prefix, whatever the key type. */
async function everythingStored(): Promise<string> {
  const r = handle.redis;
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${handle.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      parts.push(key);
      const type = await r.type(key);
      if (type === 'string') parts.push((await r.get(key)) ?? '');
      else if (type === 'hash') parts.push(...Object.entries(await r.hgetall(key)).flat());
      else if (type === 'set') parts.push(...(await r.smembers(key)));
      else if (type === 'zset') parts.push(...(await r.zrange(key, 0, -1)));
      else if (type === 'list') parts.push(...(await r.lrange(key, 0, -1)));
      else if (type === 'stream') parts.push(JSON.stringify(await r.xrange(key, '-', '+')));
      else parts.push(`unchecked ${type}`);
    }
  } while (cursor !== '0');
  return parts.join('\n').toLowerCase();
}

describe('suppression', () => {
  it('an unsubscribed address stays unsubscribed across re-import and is not counted imported', async () => {
    const file = csv('sup.csv', ['eve@example.org,Eve,Rugby,burglary', 'fay@example.org,Fay,Rugby,']);
    expect(await imp(file, 'sup')).toMatchObject({ imported: 2, suppressed: 0 });
    const id = subscriberId('Eve@Example.org ');
    expect(await unsubscribe(handle.redis, handle.prefix, id, 'link')).toEqual({ email: 'eve@example.org' });
    // idempotent: the first unsubscribe time is kept
    const first = await handle.redis.hget(`${handle.prefix}:sub:${id}`, 'unsubscribed_at');
    expect(await unsubscribe(handle.redis, handle.prefix, id, 'again')).toEqual({ email: 'eve@example.org' });
    expect(await handle.redis.hget(`${handle.prefix}:sub:${id}`, 'unsubscribed_at')).toBe(first);
    expect(await handle.redis.sismember(`${handle.prefix}:suppressed`, emailHash('eve@example.org'))).toBe(1);

    expect(await imp(file, 'sup')).toEqual({ imported: 0, updated: 1, rejected: 0, suppressed: 1 });
    expect(await imp(file, 'another')).toMatchObject({ imported: 0, updated: 1, suppressed: 1 });
    expect((await findSubscriber(handle.redis, handle.prefix, 'eve@example.org'))?.status).toBe('unsubscribed');
    expect(await collect({ list: 'sup' }, 10)).toEqual([[subscriberId('fay@example.org')]]);
    expect(await collect({ list: 'another' }, 10)).toEqual([[subscriberId('fay@example.org')]]);
    expect(await getRecipients(handle.redis, handle.prefix, [id, subscriberId('fay@example.org'), 'nope'])).toEqual([
      null,
      { id: subscriberId('fay@example.org'), email: 'fay@example.org', name: 'Fay', area: 'Rugby', topics: [] },
      null,
    ]);
    expect(await unsubscribe(handle.redis, handle.prefix, 'unknown-id', 'link')).toBeNull();
  });

  it('getRecipients drops a subscriber whose address was suppressed after planning', async () => {
    const file = csv('late.csv', ['gus@example.org,Gus,Rugby,']);
    await imp(file, 'late');
    const id = subscriberId('gus@example.org');
    expect((await getRecipients(handle.redis, handle.prefix, [id]))[0]?.email).toBe('gus@example.org');
    await handle.redis.sadd(`${handle.prefix}:suppressed`, emailHash('gus@example.org'));
    expect(await getRecipients(handle.redis, handle.prefix, [id])).toEqual([null]);
  });
});

describe('forget (GDPR erasure)', () => {
  it('erases every trace but the hash, and a re-import is suppressed', async () => {
    const file = csv('forget.csv', ['Zed.Personal@Example.org,Zebedee Uniquename,Rugby,fraud', 'kim@example.org,Kim,Rugby,']);
    const out: string[] = [];
    const ctx = { config, redis: handle, out: (l: string) => out.push(l) };
    await runImport(ctx, file, 'gdpr-a', () => undefined);
    await runImport(ctx, file, 'gdpr-b', () => undefined);
    expect(out).toEqual(['imported 2, updated 0, rejected 0', 'imported 0, updated 2, rejected 0']);
    const before = await everythingStored();
    expect(before).toContain('zed.personal@example.org');

    expect(await runForget(ctx, '  ZED.personal@example.org')).toBe(true);
    expect(out.at(-1)).toBe('forgotten zed.personal@example.org');
    const after = await everythingStored();
    expect(after).not.toContain('zed.personal');
    expect(after).not.toContain('zebedee');
    expect(after).not.toContain('uniquename');
    expect(await handle.redis.exists(`${handle.prefix}:sub:${subscriberId('zed.personal@example.org')}`)).toBe(0);
    // Keyed with the derived suppression key, so a copy of Redis cannot be tested against addresses.
    expect(await handle.redis.sismember(`${handle.prefix}:suppressed`, suppressionHash('zed.personal@example.org', deriveKey(config.secret, 'suppression')))).toBe(1);
    expect(await handle.redis.sismember(`${handle.prefix}:suppressed`, emailHash('zed.personal@example.org'))).toBe(0);
    for (const list of ['gdpr-a', 'gdpr-b']) {
      expect(await collect({ list }, 10)).toEqual([[subscriberId('kim@example.org')]]);
    }
    const audit = await readAudit(handle.redis, handle.prefix, {});
    expect(audit.map((e) => e.action)).toEqual(['subscriber.import', 'subscriber.import', 'subscriber.forget']);
    expect(audit[2]?.subject).toBe(subscriberId('zed.personal@example.org'));

    expect(await imp(file, 'gdpr-a')).toEqual({ imported: 0, updated: 1, rejected: 0, suppressed: 1 });
    expect(await findSubscriber(handle.redis, handle.prefix, 'zed.personal@example.org')).toBeNull();
    expect(await everythingStored()).not.toContain('zebedee');

    // forgetting again, or someone never imported: not found, exit 0, suppressed anyway
    expect(await runForget(ctx, 'zed.personal@example.org')).toBe(false);
    expect(out.at(-1)).toBe('not found: zed.personal@example.org (suppressed so no import can add it)');
    expect(await forgetSubscriber(handle.redis, handle.prefix, 'never@example.org')).toBe(false);
    expect(await handle.redis.sismember(`${handle.prefix}:suppressed`, emailHash('never@example.org'))).toBe(1);
  });

  it('runImport prints suppressed and the rejects path on stderr', async () => {
    const file = csv('mixed.csv', ['zed.personal@example.org,Z,Rugby,', 'bad-email,B,Rugby,', 'liz@example.org,Liz,,']);
    const out: string[] = [];
    const warnings: string[] = [];
    const r = await runImport({ config, redis: handle, out: (l) => out.push(l) }, file, 'mixed', (l) => warnings.push(l));
    expect(out).toEqual(['imported 1, updated 0, rejected 1, suppressed 1']);
    expect(r.rejectsFile?.startsWith(path.join(config.dataDir, 'rejects'))).toBe(true);
    expect(warnings).toEqual([`warning: 1 row(s) rejected; rejects: ${r.rejectsFile}`]);
  });
});

describe('streamAudience', () => {
  const areas = ['Rugby', 'Nuneaton', 'Warwick'];
  const topics = ['burglary', 'fraud;Road Safety', ''];
  beforeAll(async () => {
    const rows = Array.from({ length: 25 }, (_, i) => `p${i}@example.org,P${i},${areas[i % 3]},${topics[i % 3]}`);
    await imp(csv('stream.csv', rows), 'stream');
    await imp(csv('stream-extra.csv', ['outsider@example.org,Out,Rugby,burglary']), 'elsewhere');
    await unsubscribe(handle.redis, handle.prefix, subscriberId('p3@example.org'), 'test');
  });
  const ids = (ns: number[]) => ns.map((n) => subscriberId(`p${n}@example.org`));
  const all = Array.from({ length: 25 }, (_, i) => i).filter((i) => i !== 3);

  it('pages a list in insertion order, skipping the unsubscribed, full pages until the last', async () => {
    const pages = await collect({ list: 'stream' }, 7);
    expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 3]);
    expect(pages.flat()).toEqual(ids(all));
    expect(await countAudience(handle.redis, handle.prefix, { list: 'stream' })).toBe(24);
  });

  it('filters by area and topic, case-insensitively, within a list or across everyone', async () => {
    const rugby = all.filter((i) => i % 3 === 0);
    expect((await collect({ list: 'stream', areas: ['rugby'] }, 100)).flat()).toEqual(ids(rugby));
    const roadSafety = all.filter((i) => i % 3 === 1);
    expect((await collect({ list: 'stream', topics: ['road safety'] }, 100)).flat()).toEqual(ids(roadSafety));
    const both = all.filter((i) => i % 3 === 0);
    expect((await collect({ list: 'stream', areas: ['RUGBY', 'Warwick'], topics: ['Burglary'] }, 2)).flat()).toEqual(ids(both));
    // without a list: every subscriber, including the one only on another list
    const everywhere = (await collect({ areas: ['Rugby'], topics: ['burglary'] }, 3)).flat();
    expect(everywhere).toContain(subscriberId('outsider@example.org'));
    expect(everywhere).toContain(subscriberId('p0@example.org'));
    expect(await collect({ list: 'no-such-list' }, 10)).toEqual([]);
  });

  it('does not skip anyone when subscribers are removed while streaming', async () => {
    const seen: string[] = [];
    let first = true;
    for await (const page of streamAudience(handle.redis, handle.prefix, { list: 'stream' }, 5)) {
      seen.push(...page);
      if (first) {
        first = false;
        await forgetSubscriber(handle.redis, handle.prefix, 'p0@example.org');
        await forgetSubscriber(handle.redis, handle.prefix, 'p1@example.org');
      }
    }
    expect(seen).toEqual(ids(all));
  });
});

describe('exportList', () => {
  it('writes the list as CSV with quoting, unsubscribed members marked', async () => {
    const file = csv('export.csv', ['"Quote, Comma"@example.org,x,,', 'amy@example.org,"Amy ""A"", Jr",Rugby,burglary;fraud', 'ben@example.org,Ben,,']);
    await imp(file, 'export');
    await unsubscribe(handle.redis, handle.prefix, subscriberId('ben@example.org'), 'link');
    const lines: string[] = [];
    const n = await exportList(handle.redis, handle.prefix, 'export', (l) => {
      lines.push(l);
    });
    expect(n).toBe(2);
    expect(lines[0]).toBe('email,name,area,topics,status,consent_source,consent_at');
    expect(lines[1]).toMatch(/^amy@example\.org,"Amy ""A"", Jr",Rugby,burglary;fraud,subscribed,import:export\.csv,\d{4}-/);
    expect(lines[2]).toMatch(/^ben@example\.org,Ben,,,unsubscribed,/);
    await expect(exportList(handle.redis, handle.prefix, 'missing', () => undefined)).rejects.toThrow(/no list named "missing"/);
  });
});

describe('scale', () => {
  it('imports 100,000 rows (timing printed, not asserted)', async () => {
    const file = path.join(dir, 'big.csv');
    const out = createWriteStream(file);
    out.write('email,name,area,topics\n');
    for (let i = 0; i < 100_000; i++) {
      if (!out.write(`person${i}@example.org,Person ${i},${i % 2 ? 'Rugby' : 'Nuneaton'},burglary;fraud\n`)) await once(out, 'drain');
    }
    await new Promise<void>((resolve) => out.end(resolve));
    const t0 = performance.now();
    const r = await imp(file, 'big');
    const importMs = performance.now() - t0;
    expect(r).toEqual({ imported: 100_000, updated: 0, rejected: 0, suppressed: 0 });
    const t1 = performance.now();
    const n = await countAudience(handle.redis, handle.prefix, { list: 'big', areas: ['rugby'] });
    const streamMs = performance.now() - t1;
    expect(n).toBe(50_000);
    console.log(
      `100k import: ${(importMs / 1000).toFixed(2)} s (${Math.round(100_000 / (importMs / 1000))} rows/s); ` +
        `streaming 100k with an area filter: ${(streamMs / 1000).toFixed(2)} s`,
    );
  }, 120_000);
});

describe('crier subscribers (commander wiring)', () => {
  it('import, export and forget through the command line', async () => {
    const file = csv('cli.csv', ['cli@example.org,"Cli, User",Rugby,fraud', 'nope,N,,']);
    const env = { REDIS_URL: config.redisUrl, CRIER_DATA_DIR: config.dataDir, CRIER_CONFIG: config.configFile, CRIER_SECRET: config.secret, LOG_LEVEL: 'silent' };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      stdout.push(String(chunk));
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr.push(String(chunk));
      return true;
    });
    const run = async (...args: string[]): Promise<void> => {
      const program = new Command('crier').exitOverride();
      registerSubscriberCommands(program);
      await program.parseAsync(['node', 'crier', 'subscribers', ...args]);
    };
    try {
      await run('import', file, '--list', 'cli');
      await run('export', '--list', 'cli');
      await run('forget', 'CLI@example.org');
    } finally {
      out.mockRestore();
      err.mockRestore();
      process.env = saved;
    }
    expect(stdout.join('')).toMatch(
      /^imported 1, updated 0, rejected 1\nemail,name,area,topics,status,consent_source,consent_at\ncli@example\.org,"Cli, User",Rugby,fraud,subscribed,import:cli\.csv,[^\n]+\nREDIS_URL: old copies stay [^\n]+\nforgotten cli@example\.org\n$/,
    );
    expect(stderr.join('')).toMatch(/^warning: 1 row\(s\) rejected; rejects: .*cli-\d{8}T\d{9}Z\.rejects\.csv\n$/);
  });
});

describe('the exclusion sets planning reads', () => {
  it('the first import into an empty audience marks them complete; unsubscribes and forget keep them', async () => {
    const fresh = testConfig();
    const h = await connectRedis(fresh, silentLogger());
    try {
      const k = audienceKeys(fresh.redis_prefix);
      const csv = path.join(dir, 'fresh.csv');
      writeFileSync(csv, 'email,name,area,topics\nann@example.org,Ann,,\nbob@example.org,Bob,,\n');
      await importSubscribers(h.redis, fresh.redis_prefix, csv, 'news', { rejectsDir: dir });
      expect(await h.redis.get(k.exclusionsIndexed)).toBe('1');
      await unsubscribe(h.redis, fresh.redis_prefix, subscriberId('ann@example.org'), 'test');
      expect(await h.redis.smembers(k.unsubscribed)).toEqual([subscriberId('ann@example.org')]);
      await forgetSubscriber(h.redis, fresh.redis_prefix, 'ann@example.org');
      expect(await h.redis.scard(k.unsubscribed)).toBe(0);
    } finally {
      await h.close();
    }
  });
});
