import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { webhookKey } from '../channels/webhook/index.js';
import { deriveKey } from '../src/keys.js';
import { CLI_JS } from './helpers/dist.js';
import { londonIn } from './helpers/crier.js';
import { freePort } from './helpers/redis-server.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * Secrets stay out of logs and stored errors. A real `crier start` (debug
 * logs) sends a newsletter and three webhooks whose URLs carry secrets in the
 * path and query (as Slack and Teams do): one receiver fails with 500, one
 * with 404, one succeeds. Every unsubscribe link is then opened and posted.
 * Afterwards the process's logs, every Redis key of this Crier and the
 * output of `campaign show` are searched for the secret, the derived keys,
 * every token and every URL secret: none may appear.
 */

const dirs: string[] = [];
let sink: SmtpSink | undefined;
let receiver: Server | undefined;
afterAll(async () => {
  await sink?.close();
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function redisDump(url: string, prefix: string): Promise<string> {
  const r = new Redis(url);
  const out: string[] = [];
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await r.type(key);
        out.push(key);
        if (type === 'string') out.push((await r.getBuffer(key))?.toString('latin1') ?? '');
        else if (type === 'hash') out.push(JSON.stringify(await r.hgetall(key)));
        else if (type === 'list') out.push(JSON.stringify(await r.lrange(key, 0, -1)));
        else if (type === 'set') out.push(JSON.stringify(await r.smembers(key)));
        else if (type === 'zset') out.push(JSON.stringify(await r.zrange(key, 0, -1)));
        else if (type === 'stream') out.push(JSON.stringify(await r.xrange(key, '-', '+')));
      }
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return out.join('\n');
}

describe('secrets out of logs, Redis and campaign show', () => {
  it('no secret, derived key, unsubscribe token or webhook URL secret appears after a run', async () => {
    const secret = `s-${randomBytes(16).toString('hex')}`;
    const hookSecrets = [`h1${randomBytes(8).toString('hex')}`, `h2${randomBytes(8).toString('hex')}`, `h3${randomBytes(8).toString('hex')}`];
    const querySecret = `q${randomBytes(8).toString('hex')}`;
    const hits: string[] = [];
    receiver = createServer((req, res) => {
      hits.push(req.url ?? '');
      req.resume();
      req.on('end', () => {
        if (req.url?.includes(hookSecrets[0]!)) res.writeHead(500).end('boom');
        else if (req.url?.includes(hookSecrets[1]!)) res.writeHead(404).end('no such hook');
        else res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const hookUrls = [`${hookBase}/services/T01/B02/${hookSecrets[0]}`, `${hookBase}/services/T01/B02/${hookSecrets[1]}`, `${hookBase}/hooks/${hookSecrets[2]}?sig=${querySecret}`];

    sink = await startSmtpSink();
    const port = await freePort();
    const prefix = `k${randomBytes(5).toString('hex')}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-secrets-'));
    dirs.push(dir);
    writeFileSync(
      path.join(dir, 'crier.config.yaml'),
      `redis_prefix: ${prefix}\nwebhook: { url: "${hookUrls[0]}", timeout_ms: 5000 }\nchannels:\n  webhook: { attempts: 2, backoff_ms: 50 }\n`,
    );
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REDIS_URL: inject('redisUrl'),
      CRIER_SECRET: secret,
      SMTP_URL: sink.url,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
    };
    const outputs: string[] = [];
    const cli = (args: string[]) => {
      const r = spawnSync(process.execPath, [CLI_JS, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
      outputs.push(r.stdout, r.stderr);
      return r;
    };

    const child = spawn(process.execPath, [CLI_JS, 'start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const logs: string[] = [];
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`crier start did not start:\n${logs.join('\n')}`)), 30_000);
      const onLine = (line: string) => {
        logs.push(line);
        if (/is running/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
    });

    try {
      writeFileSync(path.join(dir, 'news.csv'), 'email,name,area,topics\nann@example.org,Ann,,\nbob@example.org,Bob,,\n');
      expect(cli(['subscribers', 'import', 'news.csv', '--list', 'news']).status).toBe(0);
      const files = {
        'a.yaml': () => `title: News and hook\nkind: newsletter\nsend_at: ${londonIn(10_000)}\nchannels:\n  email: { list: news, subject: "News", body: "Hello." }\n  webhook: { text: "to the configured hook" }\n`,
        'b.yaml': () => `title: Hook 404\nkind: social\nsend_at: ${londonIn(10_000)}\nchannels:\n  webhook: { text: "x", url: "${hookUrls[1]}" }\n`,
        'c.yaml': () => `title: Hook ok\nkind: social\nsend_at: ${londonIn(10_000)}\nchannels:\n  webhook: { text: "y", url: "${hookUrls[2]}" }\n`,
      };
      const ids: string[] = [];
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(path.join(dir, name), text());
        const r = cli(['campaign', 'create', name]);
        expect(r.status, r.stderr).toBe(0);
        ids.push(r.stdout.trim().split('\n').at(-1)!);
      }
      const deadline = Date.now() + 60_000;
      const final = ['sent', 'failed', 'partially_failed'];
      const watcher = new Redis(env.REDIS_URL!);
      const statuses = () => Promise.all(ids.map(async (id) => (await watcher.hget(`${prefix}:campaign:${id}`, 'status')) ?? ''));
      try {
        while (!(await statuses()).every((x) => final.includes(x))) {
          if (Date.now() > deadline) throw new Error(`campaigns did not finish:\n${logs.join('\n')}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        watcher.disconnect();
      }
      const status = (id: string) => (JSON.parse(cli(['campaign', 'show', id, '--json']).stdout) as { status: string }).status;
      expect(ids.map(status)).toEqual(['partially_failed', 'failed', 'sent']);
      expect(hits.filter((h) => h.includes(hookSecrets[0]!))).toHaveLength(2);

      // Every unsubscribe link: opened (GET) and one-clicked (POST) on the running server.
      const tokens = sink.messages.map((m) => /\/u\/([A-Za-z0-9_.-]+)/.exec(String(m.parsed?.text))![1]!);
      expect(tokens).toHaveLength(2);
      for (const t of tokens) {
        expect((await fetch(`${env.PUBLIC_URL}/u/${t}`)).status).toBe(200);
        const res = await fetch(`${env.PUBLIC_URL}/u/${t}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
        expect(res.status).toBe(200);
      }
      for (const id of ids) cli(['campaign', 'show', id]);
      const shown = outputs.join('\n');
      // campaign show names the failing receiver by origin only.
      expect(shown).toContain(`webhook ${hookBase}/… answered 500`);
      expect(shown).toContain(`webhook ${hookBase}/… answered 404`);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }

    const log = logs.join('\n');
    expect(log).toMatch(/"url":"\/u\/…"/); // the requests were logged, masked
    const where = { logs: log, redis: await redisDump(env.REDIS_URL!, prefix), cli: outputs.join('\n') };
    const tokens = sink.messages.map((m) => /\/u\/([A-Za-z0-9_.-]+)/.exec(String(m.parsed?.text))![1]!);
    const needles: Record<string, string> = {
      CRIER_SECRET: secret,
      'webhook key': webhookKey(secret),
      'unsubscribe key': deriveKey(secret, 'unsubscribe').toString('hex'),
      'suppression key': deriveKey(secret, 'suppression').toString('hex'),
      'query secret': querySecret,
      ...Object.fromEntries(hookSecrets.map((h, i) => [`webhook path secret ${i + 1}`, h])),
      ...Object.fromEntries(tokens.flatMap((t, i) => [[`token ${i + 1}`, t], [`token ${i + 1} MAC`, t.split('.').at(-1)!]])),
    };
    const found: string[] = [];
    for (const [place, text] of Object.entries(where)) {
      for (const [what, needle] of Object.entries(needles)) if (text.includes(needle)) found.push(`${what} in ${place}`);
    }
    expect(found).toEqual([]);
  }, 120_000);
});
