import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { MAX_BODY_BYTES, parseCampaign, readCampaignFile } from '../src/domain/campaign-file.js';
import { UserError } from '../src/errors.js';
import { markdownToHtml } from '../channels/email/markdown.js';
import { testConfig } from './helpers/context.js';
import { CLI_JS } from './helpers/dist.js';

/** Campaign files built to break things (test/corpus/): each is refused with file, line and field, never a stack trace. */

const corpus = (name: string): string => path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus', name);
const config = testConfig();
const now = new Date('2026-06-01T12:00:00Z');

function refusal(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected the campaign file to be refused');
}

const read = (name: string) => () => readCampaignFile(corpus(name), config, { now });

describe('hostile campaign files', () => {
  it('a YAML alias bomb: a clear error, not a stack trace or a hang', () => {
    const u = refusal(read('alias-bomb.yaml'));
    expect(u.exitCode).toBe(1);
    expect(u.message).toBe(`${corpus('alias-bomb.yaml')}:1: too many YAML aliases (*name): more than 100 expansions; write the values out`);
  });

  it('crier campaign create with the alias bomb: exit 1, one line, no stack trace', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI_JS, 'campaign', 'create', corpus('alias-bomb.yaml')], {
        cwd: os.tmpdir(),
        env: { PATH: process.env.PATH, REDIS_URL: inject('redisUrl'), CRIER_CONFIG: config.configFile, CRIER_DATA_DIR: config.dataDir, LOG_LEVEL: 'warn' },
      });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^crier: .*alias-bomb\.yaml:1: too many YAML aliases/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('a title with CR LF (a forged header) is refused at its line', () => {
    const u = refusal(read('title-line-break.yaml'));
    expect(u.where).toMatchObject({ line: 1, field: 'title' });
    expect(u.plain).toBe('the title must be one line (it holds a line break or control character)');
  });

  it('a title written as a YAML block with two lines is refused too', () => {
    const u = refusal(() => parseCampaign('title: |\n  Line one\n  Line two\nkind: social\nsend_at: 2099-07-01 09:00\nchannels:\n  mastodon: { text: hi }\n', '/c.yaml', config, { now }));
    expect(u.where.field).toBe('title');
  });

  it('a binary body_file (an image) is refused, naming the file', () => {
    const u = refusal(read('binary-body.yaml'));
    expect(u.where).toMatchObject({ line: 5, field: 'channels.email.body_file' });
    expect(u.plain).toBe(`${corpus('not-text.png')} is not a text file (a NUL byte at offset 8): give a Markdown or plain-text file`);
  });

  it('a body_file that is not UTF-8 is refused with what to do', () => {
    const file = path.join(config.dataDir, 'cp1252.yaml');
    writeFileSync(file, `title: T\nkind: newsletter\nsend_at: 2099-07-01 09:00\nchannels:\n  email: { list: n, subject: S, body_file: ${corpus('body-windows-1252.md')} }\n`);
    const u = refusal(() => readCampaignFile(file, config, { now }));
    expect(u.plain).toMatch(/body-windows-1252\.md is not UTF-8 text: save it as UTF-8$/);
  });

  it('a body over 1 MB is refused at create (an 8 MB one used to overflow the renderer at send)', () => {
    const file = path.join(config.dataDir, 'huge.yaml');
    writeFileSync(path.join(config.dataDir, 'huge.md'), 'line\n'.repeat(1_700_000));
    writeFileSync(file, 'title: T\nkind: newsletter\nsend_at: 2099-07-01 09:00\nchannels:\n  email: { list: n, subject: S, body_file: huge.md }\n');
    const u = refusal(() => readCampaignFile(file, config, { now }));
    expect(u.where).toMatchObject({ line: 5, field: 'channels.email.body_file' });
    expect(u.plain).toMatch(/huge\.md is 8\.1 MB; the most a campaign body may be is 1 MB$/);
    // inline, too
    const inline = refusal(() =>
      parseCampaign(`title: T\nkind: social\nsend_at: 2099-07-01 09:00\nchannels:\n  webhook:\n    body: "${'x'.repeat(MAX_BODY_BYTES + 1)}"\n    text: t\n`, '/c.yaml', config, { now }),
    );
    expect(inline.message).toContain('the body is 1.0 MB; the most a campaign body may be is 1 MB');
  });

  it('a body just under the limit is accepted and renders', () => {
    const body = 'line\n'.repeat(Math.floor(MAX_BODY_BYTES / 5));
    const d = parseCampaign(`title: T\nkind: newsletter\nsend_at: 2099-07-01 09:00\nchannels:\n  email: { list: n, subject: S, body: ${JSON.stringify(body)} }\n`, '/c.yaml', config, { now });
    expect(String(d.channels.email?.body).length).toBe(body.length);
    expect(markdownToHtml(body, 'Ada').length).toBeGreaterThan(body.length);
  });
});

describe('every mistake in a campaign file at once', () => {
  it('a bad kind and an unknown top-level key do not hide the channel mistakes; all in line order', () => {
    const f = corpus('many-mistakes.yaml');
    const u = refusal(read('many-mistakes.yaml'));
    expect(u.message.split('\n')).toEqual([
      `${f}:2, field "kind": kind must be one of newsletter, community, social, press`,
      `${f}:4, field "subjct": unknown field subjct`,
      `${f}:6, field "channels.email.list": required (string)`,
      `${f}:6, field "channels.email.subject": required (string)`,
      `${f}:6, field "channels.email.lst": unknown field lst`,
      expect.stringMatching(new RegExp(`^${f}:7, field "channels.fax": unknown channel "fax"`)),
    ]);
  });

  it('an unknown time zone does not hide a channel mistake', () => {
    const u = refusal(() => parseCampaign('title: T\nkind: social\nsend_at: 2099-07-01 09:00\ntimezone: Mars/Olympus\nchannels:\n  mastodon: {}\n', '/c.yaml', config, { now }));
    expect(u.message.split('\n').map((l) => /field "([^"]+)"/.exec(l)?.[1])).toEqual(['timezone', 'channels.mastodon.text']);
  });
});
