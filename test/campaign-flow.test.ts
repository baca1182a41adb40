import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';

let crier: TestCrier | undefined;
afterEach(async () => {
  await crier?.close();
  crier = undefined;
});

describe('a due campaign (dry-run channels)', () => {
  it('writes to the outbox and goes scheduled → sending → sent', async () => {
    crier = await startCrier(testConfig());
    const c = await crier.create(`title: Hello\nkind: social\nsend_at: ${londonIn(1500)}\nchannels:\n  twitter: { text: "hello world" }\n  mastodon: { text: "hello world" }\n`);
    expect(c.status).toBe('scheduled');
    const done = await crier.waitForStatus(c.id, ['sent', 'failed', 'partially_failed']);
    expect(done.status).toBe('sent');
    expect(done.counts.twitter).toMatchObject({ sent: 1, failed: 0, pending: 0 });
    expect(readdirSync(crier.config.outboxDir).sort()).toEqual([`${c.id}-mastodon.json`, `${c.id}-twitter.json`]);
  });
});
