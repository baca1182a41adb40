import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeXApi, twitterEnv, type FakeXApi } from '../../test/fakes/x-api.js';
import { sendInChild } from '../../test/helpers/adapter-child.js';

/**
 * The documented way to trust a private TWITTER_API_BASE certificate is
 * NODE_EXTRA_CA_CERTS, which Node reads only at start: so this runs the real
 * adapter in a child process (sendInChild), with and without it.
 */

const creds = { appKey: 'k', appSecret: 's', accessToken: 't', accessSecret: 'x' };

describe('X channel trusting the API certificate through NODE_EXTRA_CA_CERTS', () => {
  let fake: FakeXApi;

  beforeAll(async () => {
    fake = await startFakeXApi({ credentials: creds });
  });
  afterAll(async () => {
    await fake.close();
  });

  const child = (text: string, extraCa?: string) =>
    sendInChild({
      module: 'channels/twitter/index.js',
      factory: 'createTwitterAdapter',
      env: twitterEnv(fake.url, creds),
      delivery: { campaignId: 'c', campaignTitle: 't', kind: 'social', channel: 'twitter', content: { text }, key: 'k' },
      extraCa,
    });

  it('posts when the certificate is trusted, and is a transient failure when it is not', async () => {
    const trusted = await child('posted over TLS to a private certificate', fake.certFile);
    expect(trusted).toEqual({ ok: true, id: fake.tweets[0]?.id });
    const untrusted = await child('never arrives');
    expect(untrusted).toMatchObject({ ok: false, name: 'TransientError' });
    expect(untrusted.message).toMatch(/certificate/i);
    expect(fake.tweets).toHaveLength(1);
  }, 60_000);
});
