import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../../test/fakes/tls.js';
import { ROOT } from '../../test/helpers/dist.js';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../../test/helpers/smtp-sink.js';

/**
 * SMTP over TLS, as every real relay speaks it: STARTTLS on 587 (through the
 * channel's own TCP_NODELAY socket) and implicit TLS (smtps://), each with a
 * login. The relay's certificate is trusted the documented way,
 * NODE_EXTRA_CA_CERTS, which Node reads only at start: so the real adapter
 * (the built dist/) runs in a child process.
 */

const run = promisify(execFile);
const dist = (p: string) => pathToFileURL(path.join(ROOT, 'dist', p)).href;

const CHILD = `
const { loadConfig } = await import(${JSON.stringify(dist('src/config.js'))});
const { createEmailAdapter } = await import(${JSON.stringify(dist('channels/email/index.js'))});
const config = loadConfig({
  SMTP_URL: process.env.CHILD_SMTP_URL,
  CRIER_DATA_DIR: process.env.CHILD_DATA_DIR,
  CRIER_SECRET: 'test-secret-0123456789abcdef',
  MAIL_FROM: 'PCC <news@example.org>',
  LOG_LEVEL: 'silent',
});
const adapter = createEmailAdapter(config);
const log = { info() {}, warn() {}, debug() {}, error() {} };
try {
  const result = await adapter.send(
    {
      campaignId: 'c1', campaignTitle: 'News', kind: 'newsletter', channel: 'email', key: 'c1:email:s1',
      content: { list: 'newsletter', subject: 'Hello {{name}}', body: 'Hello **{{name}}**' },
      recipient: { id: 's1', email: 'ann@example.org', name: 'Ann', area: '', topics: [] },
    },
    { log, now: () => new Date() },
  );
  console.log(JSON.stringify({ ok: true, id: result.id }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message }));
} finally {
  await adapter.close();
}
`;

interface ChildResult {
  ok: boolean;
  id?: string;
  name?: string;
  message?: string;
}

async function sendFromChild(smtpUrl: string, trustCert: boolean): Promise<ChildResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crier-tls-data-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CHILD_SMTP_URL: smtpUrl, CHILD_DATA_DIR: dataDir };
  if (trustCert) env.NODE_EXTRA_CA_CERTS = selfSignedCert().certFile;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: dataDir, env, timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

describe('email over TLS with a login', () => {
  let sink: SmtpSink | undefined;
  afterEach(async () => {
    await sink?.close();
    sink = undefined;
  });

  const start = (mode: 'starttls' | 'implicit') => {
    const { key, cert } = selfSignedCert();
    const opts: SmtpSinkOptions = { tls: { mode, key, cert }, auth: { user: 'crier', pass: 's3cret:with@odd/chars' } };
    return startSmtpSink(opts);
  };

  it('STARTTLS on a plain port: upgrades, logs in, delivers', async () => {
    sink = await start('starttls');
    expect(sink.url).toMatch(/^smtp:\/\/crier:/);
    const result = await sendFromChild(sink.url, true);
    expect(result).toMatchObject({ ok: true });
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]).toMatchObject({ secure: true, user: 'crier', to: ['ann@example.org'] });
    expect(sink.messages[0]!.parsed?.subject).toBe('Hello Ann');
  });

  it('smtps:// (implicit TLS): logs in and delivers', async () => {
    sink = await start('implicit');
    expect(sink.url).toMatch(/^smtps:\/\//);
    const result = await sendFromChild(sink.url, true);
    expect(result).toMatchObject({ ok: true });
    expect(sink.messages[0]).toMatchObject({ secure: true, user: 'crier' });
  });

  it('an untrusted certificate is refused: nothing sent, the error says why', async () => {
    sink = await start('starttls');
    const result = await sendFromChild(sink.url, false);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/self-signed certificate.*NODE_EXTRA_CA_CERTS/);
    expect(sink.messages).toHaveLength(0);
  });
});
