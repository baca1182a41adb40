import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { unsubscribeUrl } from '../channels/email/message.js';
import { campaignView } from '../src/cli/campaign.js';
import { forgetSubscriber, getSubscriber, importSubscribers, listOptOutField, subscriberId } from '../src/domain/audience.js';
import { getCampaign } from '../src/domain/campaigns.js';
import { createLogger } from '../src/log.js';
import { londonIn } from './helpers/crier.js';
import { startRig, type Rig } from './helpers/rig.js';
import type { SinkMessage } from './helpers/smtp-sink.js';

/**
 * The newsletter from CSV to inbox and back out through one-click
 * unsubscribe: real Redis, real BullMQ workers, real SMTP (smtp-server in this
 * process), the real HTTP server on 127.0.0.1.
 */


let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const FANCY = `<b>O'Brien & "Co"</b>`;

function people(n: number, tag: string): Array<{ email: string; name: string }> {
  return Array.from({ length: n }, (_, i) => ({ email: `${tag}${i}@example.org`, name: i === 7 ? FANCY : `Reader ${i}` }));
}

function writeCsv(config: Config, rows: Array<{ email: string; name: string }>, file = 'people.csv'): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const body = rows.map((r) => `${r.email},${q(r.name)},Rugby,burglary;roads`).join('\r\n');
  const out = path.join(config.dataDir, file);
  writeFileSync(out, `email,name,area,topics\r\n${body}\r\n`);
  return out;
}

async function importList(r: Rig, list: string, rows: Array<{ email: string; name: string }>) {
  const { config, handle } = r.crier;
  return importSubscribers(handle.redis, config.redis_prefix, writeCsv(config, rows, `${list}.csv`), list, { rejectsDir: config.dataDir });
}

function newsletter(list: string, sendInMs = 1000): string {
  return [
    'title: Monthly newsletter',
    'kind: newsletter',
    `send_at: ${londonIn(sendInMs)}`,
    'channels:',
    '  email:',
    `    list: ${list}`,
    '    subject: "News for {{name}}"',
    '    body: "# Hello {{name}}\\n\\nThis month: **new patrols** in [Rugby](https://example.org/rugby)."',
  ].join('\n');
}

const byRecipient = (messages: SinkMessage[]) => {
  const m = new Map<string, SinkMessage[]>();
  for (const msg of messages) for (const to of msg.to) m.set(to, [...(m.get(to) ?? []), msg]);
  return m;
};

function header(msg: SinkMessage, name: string): string | undefined {
  const line = msg.parsed?.headerLines.find((h) => h.key === name.toLowerCase())?.line;
  return line?.slice(line.indexOf(':') + 1).trim();
}

function unsubscribeLink(r: Rig, msg: SinkMessage): string {
  const value = header(msg, 'List-Unsubscribe') ?? '';
  const m = /^<([^>]+)>$/.exec(value);
  expect(m, `List-Unsubscribe: ${value}`).not.toBeNull();
  const url = m![1]!;
  expect(url.startsWith(`${r.baseUrl}/u/`)).toBe(true);
  return url;
}

const oneClick = (url: string) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });

async function optedOutOf(r: Rig, email: string, list: string): Promise<boolean> {
  return (await r.crier.handle.redis.hexists(`${r.crier.config.redis_prefix}:sub:${subscriberId(email)}`, listOptOutField(list))) === 1;
}

async function statusOf(r: Rig, email: string) {
  return (await getSubscriber(r.crier.handle.redis, r.crier.config.redis_prefix, subscriberId(email)))?.status;
}

describe('email newsletter end to end', () => {
  it('mails every subscriber once, with list headers and both parts; one-click unsubscribe sticks across re-import', async () => {
    rig = await startRig('channels:\n  email: { concurrency: 5 }\n');
    const r = rig;
    const rows = people(50, 'n');
    expect(await importList(r, 'newsletter', rows)).toMatchObject({ imported: 50, updated: 0, rejected: 0 });

    const c = await r.crier.create(newsletter('newsletter'));
    const done = await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 50, failed: 0, pending: 0, skipped: 0 });

    const got = byRecipient(r.sink.messages);
    expect(r.sink.messages).toHaveLength(50);
    for (const p of rows) expect(got.get(p.email), p.email).toHaveLength(1);

    for (const msg of r.sink.messages) {
      unsubscribeLink(r, msg);
      expect(header(msg, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
      expect(msg.parsed?.html).toBeTruthy();
      expect(msg.parsed?.text).toBeTruthy();
      expect(msg.parsed?.headers.get('content-type')).toMatchObject({ value: 'multipart/alternative' });
    }
    const fancy = got.get('n7@example.org')![0]!;
    const html = fancy.parsed!.html as string;
    expect(html).toContain('&lt;b&gt;O&#39;Brien &amp; &quot;Co&quot;&lt;/b&gt;');
    expect(html).not.toContain(FANCY);
    expect(fancy.parsed!.text).toContain(FANCY);
    expect(got.get('n3@example.org')![0]!.parsed!.subject).toBe('News for Reader 3');
    expect(html).toContain('<strong>new patrols</strong>');

    // GET is a confirmation page (mail scanners follow links): nobody is unsubscribed by it.
    const who = 'n30@example.org';
    const link = unsubscribeLink(r, got.get(who)![0]!);
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<form method="post"/);
    expect(await statusOf(r, who)).toBe('subscribed');

    // A forged or altered token changes nothing.
    const token = link.slice(link.lastIndexOf('/') + 1);
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    for (const bad of [`${r.baseUrl}/u/${flipped}`, `${r.baseUrl}/u/${token.slice(0, 10)}`, `${r.baseUrl}/u/not-a-token`]) {
      expect((await oneClick(bad)).status, bad).toBe(400);
    }
    expect(await statusOf(r, who)).toBe('subscribed');

    // One-click takes them off the list the message came from (and only that list).
    const res = await oneClick(link);
    expect(res.status).toBe(200);
    expect(await optedOutOf(r, who, 'newsletter')).toBe(true);
    expect((await oneClick(link)).status).toBe(200); // idempotent

    // Re-importing the same file never re-subscribes them to that list.
    expect(await importList(r, 'newsletter', rows)).toMatchObject({ imported: 0, updated: 49, suppressed: 1 });
    expect(await optedOutOf(r, who, 'newsletter')).toBe(true);

    const before = r.sink.count;
    const c2 = await r.crier.create(newsletter('newsletter', 500));
    const done2 = await r.crier.waitForStatus(c2.id, ['sent', 'partially_failed', 'failed']);
    expect(done2.status).toBe('sent');
    expect(done2.counts.email).toMatchObject({ sent: 49, failed: 0, pending: 0 });
    const second = r.sink.messages.slice(before);
    expect(second).toHaveLength(49);
    expect(second.some((m) => m.to.includes(who))).toBe(false);
  });

  it('stops mailing someone who unsubscribes while the campaign is sending; counts are live', async () => {
    rig = await startRig('channels:\n  email: { rate_per_second: 5, concurrency: 2 }\n');
    const r = rig;
    const rows = people(20, 's');
    await importList(r, 'slow', rows);
    const c = await r.crier.create(newsletter('slow', 300));
    const late = rows[rows.length - 1]!.email;

    await r.sink.waitFor(3, 10_000);
    const { config, handle } = r.crier;
    // They have no message yet: their link is the one the next message would carry.
    expect((await oneClick(unsubscribeUrl(config, subscriberId(late)))).status).toBe(200);

    // `campaign show` (the CLI's view) while sending: pending goes down, live.
    const ctx = { config, log: createLogger('silent'), redis: handle, out: () => undefined };
    const pendings: number[] = [];
    for (;;) {
      const v = await campaignView(ctx, await getCampaign(handle.redis, config.redis_prefix, c.id));
      if (v.status !== 'sending') break;
      pendings.push(v.channels.email!.pending);
      await new Promise((res) => setTimeout(res, 150));
    }
    // The rate is kept per calendar second, so pending drops in steps of up to 5.
    expect(new Set(pendings).size).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < pendings.length; i++) expect(pendings[i]!).toBeLessThanOrEqual(pendings[i - 1]!);

    const done = await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 19, skipped: 1, failed: 0, pending: 0 });
    expect(r.sink.messages.some((m) => m.to.includes(late))).toBe(false);
    expect(r.sink.messages).toHaveLength(19);
  });

  it('retries SMTP 4xx with backoff until accepted: one message, campaign sent', async () => {
    rig = await startRig('channels:\n  email: { backoff_ms: 150, attempts: 6 }\n');
    const r = rig;
    const rows = people(6, 'd');
    await importList(r, 'deferred', rows);
    const victim = 'd2@example.org';
    r.sink.rejectRecipient(victim, 451, '4.7.1 Greylisted, please try again later');
    const c = await r.crier.create(newsletter('deferred', 300));
    // The sink defers the first two tries only.
    const deadline = Date.now() + 10_000;
    while (r.sink.refused < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    r.sink.clearRejections();
    expect(r.sink.refused).toBe(2);

    const done = await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 6, failed: 0, pending: 0 });
    const got = byRecipient(r.sink.messages);
    for (const p of rows) expect(got.get(p.email), p.email).toHaveLength(1);
  });

  it('records a 5xx refusal as failed with the server reply: partially_failed', async () => {
    rig = await startRig('channels:\n  email: { backoff_ms: 100 }\n');
    const r = rig;
    const rows = people(6, 'f');
    await importList(r, 'bounce', rows);
    const victim = 'f4@example.org';
    r.sink.rejectRecipient(victim, 550, '5.1.1 No such mailbox here');
    const c = await r.crier.create(newsletter('bounce', 300));
    const done = await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('partially_failed');
    expect(r.sink.refused).toBe(1); // permanent: not retried

    const { config, handle } = r.crier;
    const view = await campaignView({ config, log: createLogger('silent'), redis: handle, out: () => undefined }, await getCampaign(handle.redis, config.redis_prefix, c.id));
    expect(view.status).toBe('partially_failed');
    expect(view.channels.email).toMatchObject({ sent: 5, failed: 1, pending: 0 });
    expect(view.channels.email!.error).toContain('5.1.1 No such mailbox here');
    expect(r.sink.messages.map((m) => m.to[0]).sort()).toEqual(rows.map((p) => p.email).filter((e) => e !== victim).sort());
  });

  it('campaign retry sends the failed deliveries again once the cause is fixed, and nobody twice', async () => {
    rig = await startRig('channels:\n  email: { backoff_ms: 100 }\nbatch_size: 4\n');
    const r = rig;
    const rows = people(10, 'r');
    await importList(r, 'retry', rows);
    const victims = ['r2@example.org', 'r9@example.org'];
    for (const v of victims) r.sink.rejectRecipient(v, 550, '5.7.1 Relay access denied');
    const c = await r.crier.create(newsletter('retry', 300));
    expect((await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'])).status).toBe('partially_failed');
    expect(r.sink.count).toBe(8);
    // Only a failed or partially failed campaign can be retried.
    const other = await r.crier.create(newsletter('retry', 60 * 60 * 1000));
    await expect(r.crier.scheduler.retry(other.id, 'tester')).rejects.toThrow(/is scheduled; only a failed or partially failed/);

    r.sink.clearRejections();
    const { deliveries, channels } = await r.crier.scheduler.retry(c.id, 'tester');
    expect({ deliveries, channels }).toEqual({ deliveries: 2, channels: ['email'] });
    const done = await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 10, failed: 0, pending: 0 });
    expect(done.counts.email!.error).toBeUndefined();
    const got = byRecipient(r.sink.messages);
    expect([...got.keys()].sort()).toEqual(rows.map((p) => p.email).sort());
    for (const [to, msgs] of got) expect(msgs, to).toHaveLength(1);
    await expect(r.crier.scheduler.retry(c.id, 'tester')).rejects.toThrow(/is sent/);
  });

  it('never mails a forgotten address again, even after it is re-imported', async () => {
    rig = await startRig();
    const r = rig;
    const rows = people(5, 'g');
    await importList(r, 'gdpr', rows);
    const gone = 'g1@example.org';
    expect(await forgetSubscriber(r.crier.handle.redis, r.crier.config.redis_prefix, gone)).toBe(true);
    expect(await getSubscriber(r.crier.handle.redis, r.crier.config.redis_prefix, subscriberId(gone))).toBeNull();
    expect(await importList(r, 'gdpr', rows)).toMatchObject({ imported: 0, updated: 4, suppressed: 1 });

    const c = await r.crier.create(newsletter('gdpr', 300));
    const done = await r.crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
    expect(done.counts.email).toMatchObject({ sent: 4, failed: 0, pending: 0 });
    expect(r.sink.messages.map((m) => m.to[0]).sort()).toEqual(rows.map((p) => p.email).filter((e) => e !== gone).sort());
  });
});
