import { afterAll, beforeAll, describe, expect, it, inject, vi } from 'vitest';
import { Command } from 'commander';
import { appendAudit, readAudit } from '../src/domain/audit.js';
import { formatAuditLine, parseSince, registerAuditCommand, runAudit } from '../src/cli/audit.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { UserError } from '../src/errors.js';
import type { Config } from '../src/config.js';
import { silentLogger, testConfig } from './helpers/context.js';

let config: Config;
let handle: RedisHandle;

beforeAll(async () => {
  config = testConfig();
  handle = await connectRedis(config, silentLogger());
});

afterAll(async () => {
  await handle.close();
});

function freshPrefix(): string {
  return `${config.redis_prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

describe('audit log', () => {
  it('appends and reads back entries oldest first with their detail types', async () => {
    const prefix = freshPrefix();
    await appendAudit(handle.redis, prefix, {
      actor: 'alice',
      action: 'campaign.create',
      subject: 'c_abc123',
      detail: { title: 'March newsletter', channels: 2, essential: false },
    });
    await appendAudit(handle.redis, prefix, { actor: 'bob', action: 'campaign.approve', subject: 'c_abc123' });
    const entries = await readAudit(handle.redis, prefix);
    expect(entries.map((e) => [e.actor, e.action, e.subject])).toEqual([
      ['alice', 'campaign.create', 'c_abc123'],
      ['bob', 'campaign.approve', 'c_abc123'],
    ]);
    expect(entries[0]!.detail).toEqual({ title: 'March newsletter', channels: 2, essential: false });
    expect(entries[1]!.detail).toEqual({});
    expect(entries[0]!.at.getTime()).toBeLessThanOrEqual(entries[1]!.at.getTime());
    expect(Math.abs(entries[0]!.at.getTime() - Date.now())).toBeLessThan(60_000);
    expect(await handle.redis.exists(`${prefix}:audit`)).toBe(1);
  });

  it('reads since an instant, by the stream id time', async () => {
    const prefix = freshPrefix();
    const key = `${prefix}:audit`;
    // Explicit ids stand in for entries written on earlier days.
    const day1 = Date.UTC(2026, 10, 20, 9, 0, 0);
    const day2 = Date.UTC(2026, 10, 23, 10, 31, 5);
    await handle.redis.xadd(key, `${day1}-0`, 'actor', 'old', 'action', 'campaign.create', 'subject', 'c_1', 'detail', '{}');
    await handle.redis.xadd(key, `${day2}-0`, 'actor', 'alice', 'action', 'campaign.cancel', 'subject', 'c_2', 'detail', '{}');
    await appendAudit(handle.redis, prefix, { actor: 'carol', action: 'subscriber.forget', subject: 'h_99' });

    const since = await readAudit(handle.redis, prefix, { since: new Date(day2) });
    expect(since.map((e) => e.actor)).toEqual(['alice', 'carol']);
    expect(since[0]!.at.toISOString()).toBe('2026-11-23T10:31:05.000Z');
    const all = await readAudit(handle.redis, prefix, { since: new Date(0) });
    expect(all.map((e) => e.actor)).toEqual(['old', 'alice', 'carol']);
  });

  it('limits: the first N since an instant, or the most recent N without one', async () => {
    const prefix = freshPrefix();
    for (let i = 1; i <= 5; i++) {
      await appendAudit(handle.redis, prefix, { actor: 'a', action: 'subscriber.import', subject: `list${i}` });
    }
    const recent = await readAudit(handle.redis, prefix, { limit: 2 });
    expect(recent.map((e) => e.subject)).toEqual(['list4', 'list5']);
    const first = await readAudit(handle.redis, prefix, { since: new Date(0), limit: 2 });
    expect(first.map((e) => e.subject)).toEqual(['list1', 'list2']);
    await expect(readAudit(handle.redis, prefix, { limit: 0 })).rejects.toThrow(RangeError);
  });
});

describe('crier audit', () => {
  it('parses --since in local time (Europe/London, BST and GMT) and ISO', () => {
    expect(parseSince('2026-11-23', 'Europe/London').toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(parseSince('2026-07-01', 'Europe/London').toISOString()).toBe('2026-06-30T23:00:00.000Z');
    expect(parseSince('2026-07-01 09:30', 'Europe/London').toISOString()).toBe('2026-07-01T08:30:00.000Z');
    expect(parseSince('2026-07-01T09:30:00Z', 'Europe/London').toISOString()).toBe('2026-07-01T09:30:00.000Z');
    expect(parseSince('2026-07-01T09:30:00+02:00', 'Europe/London').toISOString()).toBe('2026-07-01T07:30:00.000Z');
  });

  it('rejects a bad --since with a UserError naming the option', () => {
    for (const bad of ['yesterday', '2026-13-01', '2026-11-23 25:00', '23/11/2026', '']) {
      let err: unknown;
      try {
        parseSince(bad, 'Europe/London');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(1);
      expect((err as UserError).message).toContain('--since');
    }
  });

  it('the registered command refuses a bad --since before connecting', async () => {
    const program = new Command().exitOverride();
    registerAuditCommand(program);
    await expect(program.parseAsync(['node', 'crier', 'audit', '--since', 'last tuesday'])).rejects.toThrow(/--since/);
    await expect(program.parseAsync(['node', 'crier', 'audit', '--limit', 'ten'])).rejects.toThrow(/--limit/);
  });

  it('prints one line per entry in local time', async () => {
    const prefix = freshPrefix();
    const at = Date.UTC(2026, 10, 23, 10, 31, 5);
    await handle.redis.xadd(`${prefix}:audit`, `${at}-0`, 'actor', 'alice', 'action', 'campaign.create', 'subject', 'c_abc123', 'detail', JSON.stringify({ title: 'March newsletter' }));
    const summer = Date.UTC(2026, 6, 1, 8, 0, 0);
    const entry = { id: `${summer}-0`, at: new Date(summer), actor: 'bob smith', action: 'campaign.send', subject: 'c_x', detail: { sent: 3, note: 'line1\nline2' } };
    expect(formatAuditLine(entry, 'Europe/London')).toBe('2026-07-01 09:00:00 BST  "bob smith"  campaign.send  c_x  sent=3 note="line1\\nline2"');

    const lines: string[] = [];
    const redis = { ...handle, prefix };
    const n = await runAudit({ config, redis, out: (l) => lines.push(l) }, { since: '2026-11-23' });
    expect(n).toBe(1);
    expect(lines).toEqual(['2026-11-23 10:31:05 GMT  alice  campaign.create  c_abc123  title="March newsletter"']);

    const json: string[] = [];
    await runAudit({ config, redis, out: (l) => json.push(l) }, { json: true, limit: '5' });
    expect(JSON.parse(json.join('\n'))).toEqual([
      { id: `${at}-0`, at: '2026-11-23T10:31:05.000Z', actor: 'alice', action: 'campaign.create', subject: 'c_abc123', detail: { title: 'March newsletter' } },
    ]);
  });

  it('runs end to end through commander and withContext', async () => {
    await appendAudit(handle.redis, config.redis_prefix, { actor: 'dave', action: 'campaign.reschedule', subject: 'c_9', detail: { at: '2026-12-01 09:00' } });
    const saved = { ...process.env };
    Object.assign(process.env, {
      REDIS_URL: inject('redisUrl'),
      CRIER_CONFIG: config.configFile,
      CRIER_DATA_DIR: config.dataDir,
      CRIER_SECRET: config.secret,
      LOG_LEVEL: 'silent',
    });
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const program = new Command().exitOverride();
      registerAuditCommand(program);
      await program.parseAsync(['node', 'crier', 'audit', '--since', '2000-01-01 00:00']);
    } finally {
      spy.mockRestore();
      process.env = saved;
    }
    const out = written.join('');
    expect(out).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (GMT|BST) /);
    expect(out.slice(23)).toBe('  dave  campaign.reschedule  c_9  at="2026-12-01 09:00"\n');
  });
});
