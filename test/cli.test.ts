import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../src/config.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { testConfig } from './helpers/context.js';
import { CLI_JS, ROOT } from './helpers/dist.js';
import { spawnCli } from './helpers/cli-run.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';

/** The built `crier` command: exit codes, one-line errors, --json shapes, SIGTERM draining. */

const root = ROOT;
const mainJs = CLI_JS;
const fixtures = path.join(root, 'test', 'fixtures', 'campaigns');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function envFor(config: Config | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: inject('redisUrl'),
    ...(config ? { CRIER_CONFIG: config.configFile, CRIER_DATA_DIR: config.dataDir } : {}),
    CRIER_USER: 'tester',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

async function crier(args: string[], env: NodeJS.ProcessEnv, cwd = os.tmpdir()): Promise<Run> {
  const { code, out, err } = await spawnCli(args, env, cwd);
  return { code, stdout: out, stderr: err };
}

/** A user error: exit 1, exactly one line on stderr starting "crier: ", no stack trace. */
function expectUserError(r: Run, ...contains: string[]): string {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^crier: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  for (const c of contains) expect(lines[0]).toContain(c);
  return lines[0]!;
}

let config: Config;
let local: TestCrier;
let env: NodeJS.ProcessEnv;
let createdId: string;
let createRun: Run;
const farAway = londonIn(30 * 24 * 3600_000);
const social = (title: string, sendAt = farAway) => `title: ${title}\nkind: social\nsend_at: ${sendAt}\nchannels:\n  mastodon: { text: "${title}" }\n`;

beforeAll(async () => {
  config = testConfig();
  env = envFor(config);
  // In-process Crier on the same prefix (no workers) makes extra campaigns without paying for a CLI start each.
  local = await startCrier(config, { workers: false });
  writeFileSync(path.join(config.dataDir, 'cli.yaml'), social('CLI made'));
  createRun = await crier(['campaign', 'create', path.join(config.dataDir, 'cli.yaml')], env);
  createdId = createRun.stdout.trim().split('\n').at(-1) ?? '';
}, 120_000);

afterAll(async () => {
  await local?.close();
});

describe.concurrent('crier CLI', () => {
  it('campaign create prints the id as its last line', ({ expect }) => {
    expect(createRun.code, createRun.stderr).toBe(0);
    expect(createRun.stdout).toContain('scheduled "CLI made"');
    expect(createdId).toMatch(/^c[a-z0-9]+$/);
  });

  it('a bad CRIER_CONFIG: exit 1, one line naming the file (and line or key), no stack trace', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-cli-badconfig-'));
    const badYaml = path.join(dir, 'bad.yaml');
    writeFileSync(badYaml, 'redis_prefix: ok\nchannels:\n  email: { concurrency: 3\n');
    const unknown = path.join(dir, 'unknown.yaml');
    writeFileSync(unknown, 'redis_prefix: ok\nbatchsize: 3\n');
    const [a, b, c] = await Promise.all([
      crier(['campaign', 'list'], envFor(undefined, { CRIER_CONFIG: badYaml, CRIER_DATA_DIR: dir })),
      crier(['campaign', 'list'], envFor(undefined, { CRIER_CONFIG: unknown, CRIER_DATA_DIR: dir })),
      crier(['start'], envFor(undefined, { CRIER_CONFIG: unknown, CRIER_DATA_DIR: dir, PORT: 'abc' })),
    ]);
    expect(expectUserError(a, 'not valid YAML')).toMatch(new RegExp(`^crier: ${badYaml}:\\d+: `));
    expect(expectUserError(b, 'field "batchsize"')).toMatch(new RegExp(`^crier: ${unknown}, `));
    expectUserError(c, 'environment', 'field "PORT"');
  });

  it('campaign create with a bad file: exit 1 naming file, line and field', async () => {
    const file = path.join(config.dataDir, 'gap.yaml');
    writeFileSync(file, social('Gap', '2027-03-28 01:30'));
    const [gap, missing] = await Promise.all([crier(['campaign', 'create', file], env), crier(['campaign', 'create', path.join(fixtures, 'missing-body.yaml')], env)]);
    expectUserError(gap, `${file}:3`, 'field "send_at"', '00:30 GMT', '02:30 BST');
    expectUserError(missing, 'missing-body.yaml:8', 'field "channels.email.body_file"');
  });

  it('campaign list --json and show --json give the documented shape', async () => {
    const [list, show, human] = await Promise.all([crier(['campaign', 'list', '--json'], env), crier(['campaign', 'show', createdId, '--json'], env), crier(['campaign', 'show', createdId], env)]);
    expect(list.code, list.stderr).toBe(0);
    const all = JSON.parse(list.stdout) as { id: string }[];
    expect(Array.isArray(all)).toBe(true);
    const mine = all.find((c) => c.id === createdId);
    const expected = {
      id: createdId,
      title: 'CLI made',
      kind: 'social',
      status: 'scheduled',
      send_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      channels: { mastodon: { sent: 0, failed: 0, pending: 1 } },
    };
    expect(mine).toMatchObject(expected);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(show.stdout)).toMatchObject(expected);
    expect(JSON.parse(show.stdout)).toEqual(mine);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('status:  scheduled');
    expect(human.stdout).toMatch(/mastodon\s+sent 0, failed 0, pending 1/);
  });

  it('show of an unknown id: exit 1 with a clear message', async () => {
    expectUserError(await crier(['campaign', 'show', 'cnosuchthing', '--json'], env), 'no campaign with id "cnosuchthing"');
  });

  it('reschedule --at: a bad time or a DST gap exits 1; a good one moves it', async () => {
    const c = await local.create(social('Move me'));
    const [bad, gap, good] = await Promise.all([
      crier(['campaign', 'reschedule', c.id, '--at', 'next tuesday'], env),
      crier(['campaign', 'reschedule', c.id, '--at', '2027-03-28 01:30'], env),
      crier(['campaign', 'reschedule', c.id, '--at', '2027-06-01 09:00'], env),
    ]);
    expectUserError(bad, 'field "--at"', 'next tuesday');
    expectUserError(gap, 'field "--at"', '00:30 GMT', '02:30 BST');
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('2027-06-01 09:00');
    const after = await local.show(c.id);
    expect(after.sendAt.toISOString()).toBe('2027-06-01T08:00:00.000Z');
    expect(after.version).toBe(2);
    const past = await crier(['campaign', 'reschedule', c.id, '--at', '2020-01-01 09:00'], env);
    expectUserError(past, 'in the past');
  });

  it('cancel twice: the second exits 1 and says the campaign is cancelled', async () => {
    const c = await local.create(social('Cancel me'));
    const first = await crier(['campaign', 'cancel', c.id], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`cancelled ${c.id}`);
    expectUserError(await crier(['campaign', 'cancel', c.id], env), `campaign ${c.id} is cancelled`);
    expect((await local.show(c.id)).status).toBe('cancelled');
  });

  it('campaign release: refused unless held; an approver other than the author releases a held essential campaign', async () => {
    const c = await local.create(social('Essential notice').replace('kind: social\n', 'kind: social\nessential: true\n'));
    expectUserError(await crier(['campaign', 'release', c.id], { ...env, CRIER_USER: 'bob' }), 'only a campaign held by the pre-election period can be released');
    // As the planner leaves it when a pre-election window holds it.
    await local.handle.redis.hset(`${config.redis_prefix}:campaign:${c.id}`, 'status', 'held', 'reason', 'PCC election');
    expectUserError(await crier(['campaign', 'release', c.id], env), 'needs approval by someone else');
    const r = await crier(['campaign', 'release', c.id], { ...env, CRIER_USER: 'bob' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`released ${c.id} by bob: scheduled`);
    expect(await local.show(c.id)).toMatchObject({ status: 'scheduled', releasedBy: 'bob' });
  });
});

describe('crier --help', () => {
  it('lists every command, and each loads its own module (main.ts imports only the one named)', async () => {
    const help = await crier(['--help'], envFor(undefined));
    expect(help.code).toBe(0);
    const names = help.stdout.slice(help.stdout.indexOf('Commands:')).split('\n').flatMap((l) => /^ {2}([a-z]+)/.exec(l)?.[1] ?? []).filter((n) => n !== 'help');
    expect(names).toEqual(expect.arrayContaining(['start', 'worker', 'campaign', 'subscribers', 'audit', 'users', 'tokens', 'calendar', 'metrics', 'newsletter', 'digest']));
    // Twelve CLI processes: side by side, with room for a machine busy with two other test files (each
    // one alone starts in about 0.5 s, but in turn under that load they once took over 30 s together).
    const runs = await Promise.all(names.map(async (name) => ({ name, r: await crier([name, '--help'], envFor(undefined)) })));
    for (const { name, r } of runs) {
      expect({ name, code: r.code, usage: r.stdout.split('\n')[0] }).toEqual({ name, code: 0, usage: expect.stringMatching(new RegExp(`^Usage: crier ${name}\\b`)) });
    }
  }, 120_000);
});

describe('crier start', () => {
  let receiver: Server | undefined;
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await new Promise((r) => (receiver ? receiver.close(r) : r(undefined)));
  });

  it('SIGTERM drains the delivery in flight, then exits 0', async () => {
    let arrived = 0;
    let answered = 0;
    receiver = createServer((req, res) => {
      arrived = Date.now();
      req.resume();
      // Hold the answer so the delivery is still in flight when SIGTERM comes.
      setTimeout(() => {
        answered = Date.now();
        res.writeHead(200).end('ok');
      }, 1500);
    });
    await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', r));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const cfg = testConfig();
    child = spawn(process.execPath, [mainJs, 'start'], { cwd: cfg.dataDir, env: envFor(cfg, { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', CRIER_SECRET: cfg.secret }) });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
    for (const deadline = Date.now() + 30_000; !log.includes('crier is running'); await sleep(25)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`crier start did not come up: ${log}`);
    }
    // The same Crier as the child: same secret (a campaign's webhook url is stored sealed with it).
    const other = await startCrier(cfg, { workers: false });
    try {
      const yaml = `title: Drain\nkind: social\nsend_at: ${londonIn(3_600_000)}\nchannels:\n  webhook: { text: "drain", url: "${hook}" }\n`;
      const draft = { ...parseCampaign(yaml, path.join(cfg.dataDir, 'd.yaml'), cfg, { now: new Date() }), sendAt: new Date(Date.now() + 200) };
      const c = await other.scheduler.create(draft, { actor: 'tester' });
      for (const deadline = Date.now() + 10_000; !arrived; await sleep(10)) if (Date.now() > deadline) throw new Error('the webhook never arrived');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const exitedAt = Date.now();
      expect(answered).toBeGreaterThan(0);
      expect(exitedAt).toBeGreaterThanOrEqual(answered);
      expect(log).toContain('draining');
      const done = await other.show(c.id);
      expect(done.status).toBe('sent');
      expect(done.counts.webhook).toMatchObject({ sent: 1, failed: 0, pending: 0 });
    } finally {
      await other.close();
    }
  }, 60_000);
});
