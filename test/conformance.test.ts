import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ChannelError, NeedsReauthError, PermanentError, TransientError, type ChannelAdapter, type ChannelErrorKind, type Delivery, type Recipient } from '../channels/adapter.js';
import { channelDefinition, channelNames } from '../channels/registry.js';
import { createTwitterAdapter } from '../channels/twitter/index.js';
import type { Config } from '../src/config.js';
import { facebookEnv, startFakeGraphApi } from './fakes/graph-api.js';
import { startFakeMastodonApi } from './fakes/mastodon-api.js';
import { notifyEnv, startFakeNotifyApi } from './fakes/notify-api.js';
import { startFakeXApi, twitterEnv } from './fakes/x-api.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { startSmtpSink } from './helpers/smtp-sink.js';

/**
 * The channel conformance suite: every adapter in channels/registry.ts passes
 * the same checks — dry-run output without credentials, transient vs permanent
 * (vs needs-reauth) errors from a live endpoint speaking the real protocol,
 * verify() against that endpoint, and a close() that is safe twice.
 * A channel added to the registry without a fixture below fails the suite.
 */

/** A live endpoint for one channel, scripted to fail the next send in a given way. */
interface LiveEndpoint {
  env?: Record<string, string>;
  yaml?: string;
  /** How to make the adapter for this endpoint (default: the registry's factory). */
  create?(config: Config): ChannelAdapter;
  failTransient(): void;
  failPermanent(): void;
  /** HTTP channels: the next send is refused for its credentials (401). */
  failAuth?(): void;
  /** Messages/posts the endpoint accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

interface Fixture {
  content: Record<string, unknown>;
  /** Audience channels send one message per recipient. */
  audience: boolean;
  /** Text the dry-run outbox file must contain. */
  marker: string;
  live(): Promise<LiveEndpoint>;
}

async function smtpEndpoint(): Promise<LiveEndpoint> {
  const sink = await startSmtpSink();
  return {
    env: { SMTP_URL: sink.url },
    failTransient: () => sink.failNext(1, 451, 'Requested action aborted: local error in processing'),
    failPermanent: () => sink.failNext(1, 550, 'Requested action not taken: mailbox unavailable'),
    accepted: () => sink.count,
    close: () => sink.close(),
  };
}

/** A team's webhook receiver: answers 204, or the statuses it was told to answer next. */
async function webhookEndpoint(): Promise<LiveEndpoint> {
  const script: number[] = [];
  let accepted = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = script.shift() ?? 204;
      if (status < 300) accepted += 1;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? '' : `status ${status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    yaml: `webhook:\n  url: ${url}\n  secret: conformance-secret\n  timeout_ms: 2000\n`,
    failTransient: () => script.push(503),
    failPermanent: () => script.push(422),
    failAuth: () => script.push(401),
    accepted: () => accepted,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const creds = { appKey: 'conf-app-key', appSecret: 'conf-app-secret', accessToken: 'conf-access-token', accessSecret: 'conf-access-secret' };

const fixtures: Record<string, Fixture> = {
  email: {
    content: { list: 'news', subject: 'Conformance newsletter', body: 'Hello **there**.' },
    audience: true,
    marker: 'Conformance newsletter',
    live: smtpEndpoint,
  },
  community: {
    content: { areas: ['Rugby'], topics: ['burglary'], subject: 'Conformance alert', body: 'Lock your sheds.' },
    audience: true,
    marker: 'Conformance alert',
    live: smtpEndpoint,
  },
  press: {
    content: { headline: 'Conformance release', body: 'The commissioner said.' },
    audience: true,
    marker: 'Conformance release',
    live: smtpEndpoint,
  },
  twitter: {
    content: { text: 'Conformance post on X' },
    audience: false,
    marker: 'Conformance post on X',
    async live() {
      const fake = await startFakeXApi({ credentials: creds });
      return {
        env: twitterEnv(fake.url, creds),
        // NODE_EXTRA_CA_CERTS is read at process start; the adapter's documented test route is `ca`.
        create: (config) => createTwitterAdapter(config, { ca: fake.ca }),
        failTransient: () => fake.failNext(503, { path: '/2/tweets' }),
        failPermanent: () => fake.failNext(403, { path: '/2/tweets' }),
        failAuth: () => fake.failNext(401, { path: '/2/tweets' }),
        accepted: () => fake.tweets.length,
        close: () => fake.close(),
      };
    },
  },
  mastodon: {
    content: { text: 'Conformance post on Mastodon' },
    audience: false,
    marker: 'Conformance post on Mastodon',
    async live() {
      const fake = await startFakeMastodonApi();
      return {
        env: { MASTODON_URL: fake.url, MASTODON_TOKEN: fake.token },
        failTransient: () => fake.failNext(503, { path: '/api/v1/statuses' }),
        failPermanent: () => fake.failNext(422, { path: '/api/v1/statuses', error: "Validation failed: Text can't be blank" }),
        failAuth: () => fake.failNext(401, { path: '/api/v1/statuses' }),
        accepted: () => fake.statuses.length,
        close: () => fake.close(),
      };
    },
  },
  webhook: {
    content: { text: 'Conformance webhook text' },
    audience: false,
    marker: 'Conformance webhook text',
    live: webhookEndpoint,
  },
  facebook: {
    content: { text: 'Conformance post on Facebook', link: 'https://example.org/news' },
    audience: false,
    marker: 'Conformance post on Facebook',
    async live() {
      const fake = await startFakeGraphApi();
      return {
        env: facebookEnv(fake),
        failTransient: () => fake.failNext(2, { path: '/feed', status: 500, message: 'An unexpected error has occurred. Please retry your request later.' }),
        failPermanent: () => fake.failNext(368, { path: '/feed', message: 'The action attempted has been deemed abusive or is otherwise disallowed' }),
        failAuth: () => fake.failNext(190, { path: '/feed' }),
        accepted: () => fake.posts.length,
        close: () => fake.close(),
      };
    },
  },
  sms: {
    content: { list: 'texts', text: 'Conformance text message' },
    audience: true,
    marker: 'Conformance text message',
    async live() {
      const fake = await startFakeNotifyApi();
      return {
        env: notifyEnv(fake),
        failTransient: () => fake.failNext(500),
        failPermanent: () => fake.failNext(400, { error: 'ValidationError', message: 'phone_number Not a UK mobile number' }),
        failAuth: () => fake.failNext(403),
        accepted: () => fake.texts.length,
        close: () => fake.close(),
      };
    },
  },
};

const recipient: Recipient = { id: 'sub1', email: 'reader@example.org', name: 'Sam Reader', area: 'Rugby', topics: ['burglary'], phone: '+447911123456' };
const ctx = { log: silentLogger(), now: () => new Date() };
let sends = 0;

function delivery(channel: string, fixture: Fixture): Delivery {
  sends += 1;
  return {
    campaignId: `cconf${sends}`,
    campaignTitle: 'Conformance',
    kind: 'newsletter',
    channel,
    content: fixture.content,
    ...(fixture.audience ? { recipient } : {}),
    key: `cconf${sends}:${channel}:${fixture.audience ? recipient.id : '-'}`,
  };
}

async function sendError(adapter: ChannelAdapter, d: Delivery): Promise<unknown> {
  try {
    await adapter.send(d, ctx);
  } catch (err) {
    return err;
  }
  throw new Error(`${d.channel}: send succeeded, expected it to fail`);
}

function expectKind(err: unknown, cls: typeof TransientError | typeof PermanentError | typeof NeedsReauthError, kind: ChannelErrorKind): void {
  expect(err).toBeInstanceOf(ChannelError);
  expect(err).toBeInstanceOf(cls);
  expect((err as ChannelError).kind).toBe(kind);
  expect((err as ChannelError).message.length).toBeGreaterThan(0);
}

describe('channel conformance', () => {
  it('every fixture names a registered channel', () => {
    expect(Object.keys(fixtures).filter((name) => !channelNames().includes(name))).toEqual([]);
  });

  for (const name of channelNames()) {
    describe(name, () => {
      const fixture = fixtures[name];
      if (!fixture) {
        it('has a conformance fixture (every adapter must pass the suite)', () => {
          expect.fail(`channel "${name}" is in channels/registry.ts but has no fixture in test/conformance.test.ts`);
        });
        return;
      }
      const def = channelDefinition(name)!;

      it('accepts its fixture content with its own schema', () => {
        expect(def.contentSchema.safeParse(fixture.content).success).toBe(true);
      });

      it('without credentials is a dry run writing the outbox', async () => {
        const config = testConfig();
        const adapter = def.create(config);
        try {
          expect(adapter.name).toBe(name);
          expect(adapter.dryRun).toBe(true);
          await expect(adapter.verify()).resolves.toBeUndefined();
          const result = await adapter.send(delivery(name, fixture), ctx);
          expect(result.outboxFile).toBeTypeOf('string');
          expect(result.outboxFile!.startsWith(config.outboxDir)).toBe(true);
          expect(existsSync(result.outboxFile!)).toBe(true);
          expect(readFileSync(result.outboxFile!, 'utf8')).toContain(fixture.marker);
        } finally {
          await adapter.close();
        }
        await expect(adapter.close()).resolves.toBeUndefined();
      });

      it('against a live endpoint: sends, verifies, and classifies failures', async () => {
        const live = await fixture.live();
        const config = testConfig({ env: live.env, yaml: live.yaml });
        const adapter = live.create ? live.create(config) : def.create(config);
        try {
          expect(adapter.dryRun).toBe(false);
          await expect(adapter.verify()).resolves.toBeUndefined();

          const result = await adapter.send(delivery(name, fixture), ctx);
          expect(result.outboxFile).toBeUndefined();
          expect(live.accepted()).toBe(1);

          live.failTransient();
          expectKind(await sendError(adapter, delivery(name, fixture)), TransientError, 'transient');
          live.failPermanent();
          expectKind(await sendError(adapter, delivery(name, fixture)), PermanentError, 'permanent');
          if (live.failAuth) {
            live.failAuth();
            const err = await sendError(adapter, delivery(name, fixture));
            expectKind(err, NeedsReauthError, 'needs_reauth');
            expect((err as Error).message).toMatch(/reconnect account/);
          }
          expect(live.accepted()).toBe(1);
        } finally {
          await adapter.close();
          await expect(adapter.close()).resolves.toBeUndefined();
          await live.close();
        }
      });
    });
  }
});
