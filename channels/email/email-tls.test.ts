import { afterEach, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../../test/fakes/tls.js';
import { sendInChild } from '../../test/helpers/adapter-child.js';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../../test/helpers/smtp-sink.js';
import type { Delivery } from '../adapter.js';

/**
 * SMTP over TLS, as every real relay speaks it: STARTTLS on 587 (through the
 * channel's own TCP_NODELAY socket) and implicit TLS (smtps://), each with a
 * login. The relay's certificate is trusted the documented way,
 * NODE_EXTRA_CA_CERTS, which Node reads only at start: so the real adapter
 * runs in a child process (sendInChild).
 */

const delivery: Delivery = {
  campaignId: 'c1',
  campaignTitle: 'News',
  kind: 'newsletter',
  channel: 'email',
  key: 'c1:email:s1',
  content: { list: 'newsletter', subject: 'Hello {{name}}', body: 'Hello **{{name}}**' },
  recipient: { id: 's1', email: 'ann@example.org', name: 'Ann', area: '', topics: [] },
};

const sendFromChild = (smtpUrl: string, trustCert: boolean) =>
  sendInChild({
    module: 'channels/email/index.js',
    factory: 'createEmailAdapter',
    env: { SMTP_URL: smtpUrl, MAIL_FROM: 'PCC <news@example.org>' },
    delivery,
    extraCa: trustCert ? selfSignedCert().certFile : undefined,
  });

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
