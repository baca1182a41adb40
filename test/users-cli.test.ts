import { spawn } from 'node:child_process';
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../src/config.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { buildServer } from '../src/server/index.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { CLI_JS } from './helpers/dist.js';

/**
 * `crier users add|list|remove`, `crier tokens create`, `crier calendar url`:
 * the built command, with what it prints on its last line used for real
 * against the server (PUBLIC_URL https, so the session cookie is Secure).
 */

let config: Config;
let handle: RedisHandle;
let app: FastifyInstance;

function crier(...args: string[]): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH, REDIS_URL: inject('redisUrl'), CRIER_CONFIG: config.configFile, CRIER_DATA_DIR: config.dataDir, CRIER_USER: 'operator', PUBLIC_URL: config.publicUrl, LOG_LEVEL: 'warn' };
    const p = spawn(process.execPath, [CLI_JS, ...args], { cwd: os.tmpdir(), env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, lines: stdout.trimEnd().split('\n'), stderr }));
  });
}

beforeAll(async () => {
  config = testConfig({ env: { PUBLIC_URL: 'https://crier.example.org' } });
  handle = await connectRedis(config, silentLogger());
  app = await buildServer(config, handle, silentLogger());
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await handle?.close();
});

describe('users, tokens and the calendar URL from the CLI', () => {
  it('users add prints a one-time password last that signs in (Secure cookie) and must be changed; tokens create prints a working token; remove stops both', async () => {
    const added = await crier('users', 'add', 'Ed@Example.org', '--role', 'editor');
    expect(added.code, added.stderr).toBe(0);
    const password = added.lines.at(-1)!;
    expect(password).toMatch(/^[A-Za-z0-9]{20}$/);

    const loginPage = await app.inject({ url: '/login' });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(loginPage.body)![1]!;
    const cookie = String([loginPage.headers['set-cookie']].flat()[0]).split(';')[0]!;
    const login = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: csrf, email: 'ed@example.org', password }).toString(),
    });
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/dashboard/password');
    const set = String([login.headers['set-cookie']].flat()[0]);
    expect(set).toMatch(/; Secure/);
    expect(set).toMatch(/; HttpOnly/);
    expect(set).toMatch(/; SameSite=Lax/);

    const listed = await crier('users', 'list');
    expect(listed.lines.join('\n')).toMatch(/ed@example\.org\s+editor\s+\(has not signed in yet\)/);

    const created = await crier('tokens', 'create', 'ed@example.org', '--name', 'newsroom script');
    expect(created.code, created.stderr).toBe(0);
    const token = created.lines.at(-1)!;
    expect(token).toMatch(/^crier_[A-Za-z0-9_-]{43}$/);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await app.inject({ url: '/api/v1/campaigns', headers: bearer })).statusCode).toBe(200);
    // Stored hashed: the token itself is nowhere in Redis.
    const keys = await handle.redis.keys(`${config.redis_prefix}:*`);
    for (const k of keys) {
      const type = await handle.redis.type(k);
      const dump = type === 'hash' ? JSON.stringify(await handle.redis.hgetall(k)) : type === 'string' ? String(await handle.redis.get(k)) : type === 'set' ? (await handle.redis.smembers(k)).join(' ') : '';
      expect(dump.includes(token.slice(6)), k).toBe(false);
      expect(dump.includes(password), k).toBe(false);
    }

    const audit = await app.inject({ url: '/api/v1/audit', headers: bearer });
    expect(audit.json<Array<{ actor: string; action: string }>>().map((e) => [e.actor, e.action])).toEqual([
      ['operator', 'account.add'],
      ['operator', 'token.create'],
    ]);

    expect((await crier('users', 'remove', 'ed@example.org')).code).toBe(0);
    expect((await app.inject({ url: '/api/v1/campaigns', headers: bearer })).statusCode).toBe(401);
    const again = await crier('users', 'remove', 'ed@example.org');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^crier: no account for ed@example.org/);
  });

  it('bad input exits 1 with one line', async () => {
    const badRole = await crier('users', 'add', 'x@example.org', '--role', 'boss');
    expect(badRole.code).toBe(1);
    expect(badRole.stderr.trim()).toBe('crier: field "--role": unknown role "boss" (one of viewer, editor, approver, admin)');
    const badEmail = await crier('users', 'add', 'not-an-email', '--role', 'viewer');
    expect(badEmail.code).toBe(1);
    const noUser = await crier('tokens', 'create', 'ghost@example.org');
    expect(noUser.code).toBe(1);
    expect(noUser.stderr).toMatch(/no account for ghost@example.org/);
  });

  it('calendar url prints the feed URL last; --rotate makes a new one and the old one stops', async () => {
    const first = (await crier('calendar', 'url')).lines.at(-1)!;
    expect(first).toMatch(/^https:\/\/crier\.example\.org\/calendar\/[A-Za-z0-9_-]{32}\.ics$/);
    expect((await crier('calendar', 'url')).lines.at(-1)).toBe(first);
    const path = (url: string) => new URL(url).pathname;
    expect((await app.inject({ url: path(first) })).statusCode).toBe(200);
    const rotated = await crier('calendar', 'url', '--rotate');
    const second = rotated.lines.at(-1)!;
    expect(second).not.toBe(first);
    expect((await app.inject({ url: path(first) })).statusCode).toBe(404);
    expect((await app.inject({ url: path(second) })).statusCode).toBe(200);
  });
});
