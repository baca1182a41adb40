import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { composeEmail } from '../channels/email/message.js';
import { neutraliseCell } from '../src/domain/csv.js';
import { importSubscribers, subscriberId, unsubscribe } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { CLI_JS, ROOT } from './helpers/dist.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * Issue 9, what a new user tripped on in the first week, through the built
 * `crier` command on a real Redis and a real SMTP server: campaigns to lists
 * that do not exist, what `campaign show` says before and after sending,
 * `campaign failures`, approval of a campaign that needs none, the campaign
 * list, the audit log's zone and numbers, the default listening address and
 * duplicate keys in log lines.
 */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let config: Config;
let local: TestCrier;
let sink: SmtpSink;
let env: NodeJS.ProcessEnv;

function crier(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI_JS, ...args], { cwd: os.tmpdir(), env: { ...env, ...extra } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function file(name: string, text: string): string {
  const f = path.join(config.dataDir, name);
  writeFileSync(f, text);
  return f;
}

async function importList(list: string, rows: string[]): Promise<void> {
  const f = file(`${list}-${Date.now()}.csv`, `email,name,area,topics\n${rows.join('\n')}\n`);
  await importSubscribers(local.handle.redis, config.redis_prefix, f, list, { rejectsDir: config.dataDir });
}

const newsletter = (list: string, sendAt = londonIn(7 * 24 * 3600_000)) =>
  `title: To ${list}\nkind: newsletter\nsend_at: ${sendAt}\nchannels:\n  email:\n    list: ${list}\n    subject: "Hello"\n    body: "Hi {{name}}"\n`;

beforeAll(async () => {
  sink = await startSmtpSink();
  config = testConfig({ env: { SMTP_URL: sink.url }, yaml: 'channels:\n  email: { attempts: 1, backoff_ms: 10 }\n' });
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: inject('redisUrl'),
    CRIER_CONFIG: config.configFile,
    CRIER_DATA_DIR: config.dataDir,
    CRIER_SECRET: config.secret,
    SMTP_URL: sink.url,
    CRIER_USER: 'alice',
    LOG_LEVEL: 'warn',
  };
  local = await startCrier(config);
  await importList('news', ['ann@example.org,Ann,,', 'bob@example.org,Bob,,', 'cat@example.org,Cat,,', 'dan@example.org,=HYPERLINK("http://evil"),,']);
  await importList('hollow', ['gone@example.org,Gone,,']);
  // An existing list with nobody subscribed: its only member unsubscribed.
  await unsubscribe(local.handle.redis, config.redis_prefix, subscriberId('gone@example.org'), 'test');
}, 60_000);

afterAll(async () => {
  await local?.close();
  await sink?.close();
});

describe('campaign create checks the lists it names', () => {
  it('a list that does not exist: exit 1, naming the file, line, field and the lists that exist; nothing is created', async () => {
    const before = (await crier(['campaign', 'list', '--json'])).stdout;
    const f = file('typo.yaml', newsletter('newsleter'));
    const r = await crier(['campaign', 'create', f]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`crier: ${f}:6, field "channels.email.list": no list named "newsleter"`);
    expect(r.stderr).toMatch(/the lists that exist: hollow, news\b/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
    expect((await crier(['campaign', 'list', '--json'])).stdout).toBe(before);
  });

  it('an existing list that would reach nobody: created, with a warning on stderr; the id stays the last line of stdout', async () => {
    const r = await crier(['campaign', 'create', file('hollow.yaml', newsletter('hollow'))]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^crier: warning: .*hollow\.yaml:6, field "channels\.email\.list": list "hollow" has no subscribed members today/m);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^c[a-z0-9]+$/);
  });
});

describe('campaign show', () => {
  it('before planning: the audience it will reach, not "pending 1"; a posting channel says it is not planned yet', async () => {
    const f = file('mixed.yaml', `${newsletter('news')}  mastodon: { text: "hello" }\n`);
    const id = (await crier(['campaign', 'create', f])).stdout.trim().split('\n').at(-1)!;
    const [human, json] = await Promise.all([crier(['campaign', 'show', id]), crier(['campaign', 'show', id, '--json'])]);
    expect(human.stdout).toMatch(/email\s+sent 0, failed 0, pending 4 {2}\(not planned yet: the audience today; counted again at send time\)/);
    expect(human.stdout).toMatch(/mastodon\s+sent 0, failed 0, pending 1 {2}\(not planned yet\)/);
    const v = JSON.parse(json.stdout) as { channels: Record<string, { pending: number; planned: boolean; audience?: number }>; failures: unknown[] };
    expect(v.channels.email).toMatchObject({ sent: 0, failed: 0, pending: 4, planned: false, audience: 4 });
    expect(v.channels.mastodon).toMatchObject({ pending: 1, planned: false });
    expect(v.failures).toEqual([]);
  });

  it('a cancelled campaign does not say "no recipients"', async () => {
    const c = await local.create(newsletter('news'));
    await local.scheduler.cancel(c.id, 'alice');
    const r = await crier(['campaign', 'show', c.id]);
    expect(r.stdout).toContain('status:  cancelled');
    expect(r.stdout).toMatch(/email\s+sent 0, failed 0, pending 0 {2}\(cancelled before it was sent\)/);
    expect(r.stdout).not.toContain('no recipients');
  });

  it('failures grouped by reason with counts; `campaign failures` lists who and why; --csv cannot start a formula', async () => {
    sink.rejectRecipient('bob@example.org', 550, '5.1.1 mailbox unavailable');
    sink.rejectRecipient('dan@example.org', 550, '5.1.1 mailbox unavailable');
    sink.rejectRecipient('cat@example.org', 552, '5.2.2 mailbox full');
    try {
      const c = await local.create(newsletter('news', londonIn(500)));
      expect((await local.waitForStatus(c.id, ['partially_failed', 'failed', 'sent'])).status).toBe('partially_failed');
      const [show, json, list, csv] = await Promise.all([
        crier(['campaign', 'show', c.id]),
        crier(['campaign', 'show', c.id, '--json']),
        crier(['campaign', 'failures', c.id]),
        crier(['campaign', 'failures', c.id, '--csv']),
      ]);
      expect(show.stdout).toMatch(/email\s+sent 1, failed 3, pending 0\n/);
      expect(show.stdout).toContain(`failures: 3 (\`crier campaign failures ${c.id}\` lists who)`);
      expect(show.stdout).toMatch(/email\s+2 × SMTP server refused the message: .*mailbox unavailable/);
      expect(show.stdout).toMatch(/email\s+1 × SMTP server refused the message: .*mailbox full/);
      const v = JSON.parse(json.stdout) as { failures: Array<{ channel: string; reason: string; count: number }> };
      expect(v.failures.map((g) => [g.channel, g.count])).toEqual([['email', 2], ['email', 1]]);

      expect(list.code, list.stderr).toBe(0);
      const rows = list.stdout.trim().split('\n');
      expect(rows).toHaveLength(4);
      for (const who of ['bob@example.org', 'cat@example.org', 'dan@example.org']) expect(list.stdout).toMatch(new RegExp(`email\\s+${who.replace('.', '\\.')}\\s+SMTP server refused`));
      expect(rows.at(-1)).toBe(`3 failed deliveries; \`crier campaign retry ${c.id}\` sends them again once the cause is fixed`);

      const lines = csv.stdout.trim().split('\n');
      expect(lines[0]).toBe('channel,email,name,reason');
      expect(lines).toHaveLength(4);
      const dan = lines.find((l) => l.includes('dan@example.org'))!;
      // The name was =HYPERLINK(…): quoted and made text with a leading apostrophe.
      expect(dan).toContain(`"'=HYPERLINK(""http://evil"")"`);
      expect(lines.slice(1).every((l) => !/(^|,)[=+\-@]/.test(l))).toBe(true);
    } finally {
      sink.clearRejections();
    }
  });

  it('a press release: the publication is reported on its own, not counted as a message', async () => {
    await importList('media', ['desk@example-news.org,Desk,,', 'editor@example-radio.org,Editor,,']);
    const yaml = `title: Release\nkind: press\nsend_at: ${londonIn(300)}\nchannels:\n  press:\n    list: media\n    headline: "Show me"\n    body: "Body"\n    embargo_until: ${londonIn(3000)}\n`;
    const c = await local.create(yaml);
    for (const deadline = Date.now() + 15_000; (await local.show(c.id)).counts.press!.sent < 2; await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error('the release was never emailed');
    }
    const before = await crier(['campaign', 'show', c.id]);
    if (!before.stdout.includes('published')) {
      expect(before.stdout).toMatch(/press\s+sent 2, failed 0, pending 0 {2}\(publishes to the press room at \d{4}-\d{2}-\d{2} \d{2}:\d{2}/);
    }
    expect((await local.waitForStatus(c.id, ['sent', 'failed', 'partially_failed'])).status).toBe('sent');
    const [after, json] = await Promise.all([crier(['campaign', 'show', c.id]), crier(['campaign', 'show', c.id, '--json'])]);
    expect(after.stdout).toMatch(/press\s+sent 2, failed 0, pending 0 {2}\(published \d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? at \/press\/\d{4}-\d{2}-\d{2}-show-me\)/);
    const v = JSON.parse(json.stdout) as { channels: { press: { sent: number; publication: { published: boolean; path: string } } } };
    expect(v.channels.press).toMatchObject({ sent: 2, pending: 0, publication: { published: true, failed: false, path: expect.stringMatching(/^\/press\/.*-show-me$/) } });
  });

  it('neutraliseCell: = + - @ tab and CR get an apostrophe; anything else is left alone', () => {
    expect(['=1+1', '+44 1926', '-2', '@SUM(A1)', '\tx', '\rx', 'ann', '', ' =x'].map(neutraliseCell)).toEqual([
      "'=1+1",
      "'+44 1926",
      "'-2",
      "'@SUM(A1)",
      "'\tx",
      "'\rx",
      'ann',
      '',
      ' =x',
    ]);
  });
});

describe('campaign approve checks the status first', () => {
  it('one that needs no approval, or is cancelled, says so (not "the author cannot approve it")', async () => {
    const scheduled = await local.create(newsletter('news'), { actor: 'alice' });
    const cancelled = await local.create(newsletter('news'), { actor: 'alice' });
    await local.scheduler.cancel(cancelled.id, 'alice');
    const [a, b] = await Promise.all([crier(['campaign', 'approve', scheduled.id]), crier(['campaign', 'approve', cancelled.id])]);
    expect(a.code).toBe(1);
    expect(a.stderr.trim()).toBe(`crier: campaign ${scheduled.id} cannot be approved: it is scheduled and needs no approval (its kind is not in approval.kinds)`);
    expect(b.code).toBe(1);
    expect(b.stderr.trim()).toBe(`crier: campaign ${cancelled.id} cannot be approved: it is cancelled`);
  });
});

describe('campaign list', () => {
  it('sorted by send time, the soonest first, under a header with aligned columns', async () => {
    const cfg = testConfig();
    const other = await startCrier(cfg, { workers: false });
    try {
      const social = (title: string, days: number) => `title: ${title}\nkind: social\nsend_at: ${londonIn(days * 24 * 3600_000)}\nchannels:\n  mastodon: { text: "x" }\n`;
      await other.create(social('Later', 9));
      await other.create(social('A much longer title than the others', 2));
      await other.create(social('Soonest', 1));
      const r = await crier(['campaign', 'list'], { CRIER_CONFIG: cfg.configFile!, CRIER_DATA_DIR: cfg.dataDir });
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^ID\s+STATUS\s+SEND AT \(Europe\/London\)\s+KIND\s+TITLE$/);
      expect(lines.slice(1).map((l) => l.slice(l.indexOf('social') + 6).trim())).toEqual(['Soonest', 'A much longer title than the others', 'Later']);
      // Every column starts at the same offset on every line.
      for (const col of ['STATUS', 'SEND AT', 'KIND', 'TITLE']) {
        const at = lines[0]!.indexOf(col);
        for (const l of lines.slice(1)) expect(l[at - 1], `${col} in ${l}`).toBe(' ');
        for (const l of lines.slice(1)) expect(l[at], `${col} in ${l}`).not.toBe(' ');
      }
    } finally {
      await other.close();
    }
  });
});

describe('audit log', () => {
  it('times carry their zone; counts in --json are numbers', async () => {
    const imported = await crier(['subscribers', 'import', file('audit.csv', 'email,name,area,topics\naud@example.org,Aud,,\n'), '--list', 'audited']);
    expect(imported.code, imported.stderr).toBe(0);
    const [human, json] = await Promise.all([crier(['audit', '--since', '2000-01-01']), crier(['audit', '--json', '--since', '2000-01-01'])]);
    expect(human.stdout.split('\n')[0]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (GMT|BST) /);
    const rows = JSON.parse(json.stdout) as Array<{ action: string; detail: Record<string, unknown> }>;
    const imports = rows.filter((r) => r.action === 'subscriber.import');
    expect(imports.length).toBeGreaterThan(0);
    for (const r of imports) for (const k of ['imported', 'updated', 'rejected', 'suppressed']) expect(typeof r.detail[k], k).toBe('number');
  });
});

describe('the HTTP server and the logs', () => {
  it('HOST defaults to 127.0.0.1; HOST=0.0.0.0 is honoured; docker-compose sets it; PUBLIC_URL follows PORT', () => {
    expect(loadConfig({ CRIER_DATA_DIR: os.tmpdir() }, os.tmpdir()).host).toBe('127.0.0.1');
    expect(loadConfig({ CRIER_DATA_DIR: os.tmpdir(), HOST: '0.0.0.0' }, os.tmpdir()).host).toBe('0.0.0.0');
    expect(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')).toMatch(/^\s+HOST: 0\.0\.0\.0\b/m);
    // Links in emails and pages follow a changed PORT unless PUBLIC_URL is set.
    expect(loadConfig({ CRIER_DATA_DIR: os.tmpdir() }, os.tmpdir()).publicUrl).toBe('http://localhost:8080');
    expect(loadConfig({ CRIER_DATA_DIR: os.tmpdir(), PORT: '18080' }, os.tmpdir()).publicUrl).toBe('http://localhost:18080');
    expect(loadConfig({ CRIER_DATA_DIR: os.tmpdir(), PORT: '18080', PUBLIC_URL: 'https://crier.example.org/' }, os.tmpdir()).publicUrl).toBe('https://crier.example.org');
  });

  it('crier start listens on 127.0.0.1 without HOST, and no log line repeats a key', async () => {
    const cfg = testConfig();
    const child = spawn(process.execPath, [CLI_JS, 'start'], {
      cwd: cfg.dataDir,
      env: { ...env, CRIER_CONFIG: cfg.configFile, CRIER_DATA_DIR: cfg.dataDir, PORT: '0', LOG_LEVEL: 'debug', SMTP_URL: sink.url },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    try {
      // The summary (stdout) and the JSON log line (stderr) may arrive in either order.
      for (const deadline = Date.now() + 30_000; !(out.includes('Stop with Ctrl-C') && out.includes('"crier is running"')); await new Promise((r) => setTimeout(r, 25))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`crier start did not come up: ${out}`);
      }
      const running = out.split('\n').find((l) => l.includes('"crier is running"'))!;
      expect(JSON.parse(running)).toMatchObject({ host: '127.0.0.1' });
      expect(out).toContain('this machine only (set HOST=0.0.0.0 to listen on every interface)');
      const port = (JSON.parse(running) as { port: number }).port;
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      // A campaign through every layer (plan, deliver, adapter), with debug logs on.
      const other = await startCrier(cfg, { workers: false });
      try {
        await importSubscribers(other.handle.redis, cfg.redis_prefix, file('logs.csv', 'email,name,area,topics\nlog@example.org,Log,,\n'), 'news', { rejectsDir: cfg.dataDir });
        const c = await other.create(newsletter('news', londonIn(300)));
        expect((await other.waitForStatus(c.id, ['sent', 'failed', 'partially_failed'])).status).toBe('sent');
      } finally {
        await other.close();
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const lines = out.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.some((l) => l.includes('"email sent"'))).toBe(true);
    for (const l of lines) expect(duplicateKeys(l), l).toEqual([]);
  }, 60_000);
});

/** Keys that appear more than once in one JSON object of a log line (JSON.parse would hide them). */
function duplicateKeys(json: string): string[] {
  const dups: string[] = [];
  const stack: Array<Set<string> | 'array'> = [];
  let i = 0;
  let expectKey = false;
  while (i < json.length) {
    const ch = json[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const str = json.slice(i + 1, j);
      i = j + 1;
      while (json[i] === ' ') i++;
      if (expectKey && json[i] === ':') {
        const seen = stack.at(-1);
        if (seen instanceof Set) {
          if (seen.has(str)) dups.push(str);
          seen.add(str);
        }
      }
      expectKey = false;
      continue;
    }
    if (ch === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === '[') stack.push('array');
    else if (ch === '}' || ch === ']') stack.pop();
    else if (ch === ',') expectKey = stack.at(-1) instanceof Set;
    i++;
  }
  return dups;
}

describe('the organisation config key', () => {
  const load = (yaml: string) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crier-org-'));
    const f = path.join(dir, 'crier.config.yaml');
    writeFileSync(f, yaml);
    return () => loadConfig({ CRIER_CONFIG: f, CRIER_DATA_DIR: dir }, dir);
  };

  it('a name alone (the older form) still works; config.organisation stays the name', () => {
    const c = load('organisation: Office of the PCC\n')();
    expect(c.organisation).toBe('Office of the PCC');
    expect(c.org).toEqual({ name: 'Office of the PCC', address: [] });
  });

  it('the details: address lines, website, logo file, press contact', () => {
    const c = load(`organisation:\n  name: OPCC\n  address: "1 Example Street, Warwick\\nCV34 0AA"\n  website: https://www.example.org\n  logo: ${path.join(ROOT, 'config/examples/logo.png')}\n  press_contact: { email: press@example.org }\n`)();
    expect(c.organisation).toBe('OPCC');
    expect(c.org).toEqual({
      name: 'OPCC',
      address: ['1 Example Street', 'Warwick', 'CV34 0AA'],
      website: 'https://www.example.org',
      logoFile: path.join(ROOT, 'config/examples/logo.png'),
      pressContact: { email: 'press@example.org' },
    });
  });

  it('mistakes name the field: a missing logo file, an unknown image type, an unknown key', () => {
    const error = (yaml: string) => {
      try {
        load(yaml)();
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(error('organisation:\n  name: X\n  logo: nowhere.png\n')).toMatch(/field "organisation\.logo": logo file not found \(looked for .*nowhere\.png/);
    expect(error('organisation:\n  name: X\n  logo: logo.svg\n')).toMatch(/field "organisation\.logo": the logo must be a PNG, JPEG, GIF or WebP file/);
    expect(error('organisation:\n  name: X\n  twitter: "@x"\n')).toContain('organisation');
  });

  it('the example configuration loads, in place or copied to ./crier.config.yaml', () => {
    const example = path.join(ROOT, 'config', 'crier.example.yaml');
    expect(loadConfig({ CRIER_CONFIG: example, CRIER_DATA_DIR: os.tmpdir() }, ROOT).org?.logoFile).toBe(path.join(ROOT, 'config/examples/logo.png'));
    const copy = path.join(mkdtempSync(path.join(os.tmpdir(), 'crier-copy-')), 'crier.config.yaml');
    writeFileSync(copy, readFileSync(example));
    expect(loadConfig({ CRIER_CONFIG: copy, CRIER_DATA_DIR: os.tmpdir() }, ROOT).org?.logoFile).toBe(path.join(ROOT, 'config/examples/logo.png'));
  });
});

describe('every email carries the organisation', () => {
  it('composeEmail: masthead with the name and what the message is, footer with name and address, in both parts', () => {
    const cfg = testConfig({ yaml: 'organisation: { name: "Office of the PCC", address: "1 Example Street, Warwick" }\n' });
    const mail = composeEmail(cfg, {
      subject: 'Burglaries near Clifton Road',
      markdown: 'Lock doors.',
      list: 'community',
      campaignId: 'c1',
      key: 'c1:community:x',
      recipient: { id: 'x', email: 'ann@example.org', name: 'Ann', area: 'Rugby', topics: [] },
      now: new Date(),
      label: 'Community alert',
    });
    expect(String(mail.html)).toMatch(/>Office of the PCC<\/div><div[^>]*>Community alert<\/div>/);
    expect(String(mail.html)).toContain('<strong style="color:#333333;">Office of the PCC</strong><br>1 Example Street, Warwick');
    expect(String(mail.text)).toContain('--\nOffice of the PCC\n1 Example Street, Warwick\n\nYou are receiving this');
    expect(mail.from).toBe('"Office of the PCC" <crier@localhost>');
  });
});
