import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { campaignView } from '../src/cli/campaign.js';
import { importSubscribers } from '../src/domain/audience.js';
import { readAudit } from '../src/domain/audit.js';
import { parseCampaign } from '../src/domain/campaign-file.js';
import { campaignEmbargo, channelStartsAt } from '../src/domain/embargo.js';
import { ROOT } from './helpers/dist.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * An embargo binds the whole campaign: only the media list's EMBARGOED email
 * goes at send_at; X, Mastodon, webhook, newsletter and community email (and
 * the release's publication) wait for the embargo instant. A pre-election
 * window covering the embargo holds the campaign. Real queue, real SMTP, dry-run
 * posts; the boundary is polled, never slept over.
 */

let crier: TestCrier | undefined;
let sink: SmtpSink | undefined;
afterEach(async () => {
  await crier?.close();
  await sink?.close();
  crier = undefined;
  sink = undefined;
});

async function importList(c: TestCrier, list: string, rows: string[]): Promise<void> {
  const csv = path.join(c.config.dataDir, `${list}.csv`);
  writeFileSync(csv, `email,name,area,topics\n${rows.join('\n')}\n`);
  await importSubscribers(c.handle.redis, c.config.redis_prefix, csv, list, { rejectsDir: c.config.dataDir });
}

const view = (c: TestCrier, id: string) => c.show(id).then((x) => campaignView({ config: c.config, log: silentLogger(), redis: c.handle, out: () => undefined }, x));

describe('an embargo binds the whole campaign', () => {
  it('the shipped press example posts to X at its embargo, not at send_at', () => {
    const file = path.join(ROOT, 'config/examples/press-release.yaml');
    const config = testConfig();
    const draft = parseCampaign(readFileSync(file, 'utf8'), file, config, { now: new Date('2026-01-01T00:00:00Z') });
    const c = { ...draft, channels: draft.channels };
    const embargo = campaignEmbargo(c)!;
    expect(embargo.toISOString()).toBe('2026-12-01T00:01:00.000Z');
    expect(draft.sendAt.getTime()).toBeLessThan(embargo.getTime());
    expect(channelStartsAt(c, 'press')).toEqual(draft.sendAt);
    for (const ch of Object.keys(draft.channels).filter((x) => x !== 'press')) expect(channelStartsAt(c, ch), ch).toEqual(embargo);
    expect(Object.keys(draft.channels)).toContain('twitter');
  });

  it('media email at send_at marked EMBARGOED; X, Mastodon, webhook, newsletter and community email from the embargo second', async () => {
    sink = await startSmtpSink();
    crier = await startCrier(testConfig({ env: { SMTP_URL: sink.url } }));
    await importList(crier, 'media', ['desk@newsroom.example,News Desk,,']);
    await importList(crier, 'newsletter', ['reader@example.org,Reader,,']);
    await importList(crier, 'community', ['neighbour@example.org,Neighbour,Rugby,burglary']);
    const headline = 'Commissioner announces rural crime team';
    const yaml = [
      'title: Rural crime team',
      'kind: press',
      `send_at: ${londonIn(1000)}`,
      'channels:',
      '  press:',
      `    headline: "${headline}"`,
      '    body: "Six officers from January."',
      `    embargo_until: "${londonIn(5000)}"`,
      '    list: media',
      '  twitter: { text: "New rural crime team" }',
      '  mastodon: { text: "New rural crime team" }',
      '  webhook: { text: "New rural crime team" }',
      '  email: { list: newsletter, subject: "Rural crime team", body: "Six officers." }',
      '  community: { areas: [Rugby], subject: "Rural crime team", body: "Six officers." }',
      '',
    ].join('\n');
    const c = await crier.create(yaml);
    const embargo = campaignEmbargo(c)!;
    expect(embargo.getTime()).toBeGreaterThan(Date.now() + 2500);

    const v = await view(crier, c.id);
    expect(v.embargo_until).toBe(embargo.toISOString());
    expect(Object.keys(v.waits_until ?? {}).sort()).toEqual(['community', 'email', 'mastodon', 'press (publication)', 'twitter', 'webhook']);
    expect(v.waits_until?.press).toBeUndefined();

    // When each channel's output first appeared.
    const outbox = crier.config.outboxDir;
    const seen = new Map<string, number>();
    const look = () => {
      const now = Date.now();
      const files = existsSync(outbox) ? readdirSync(outbox) : [];
      for (const ch of ['twitter', 'mastodon', 'webhook']) if (!seen.has(ch) && files.includes(`${c.id}-${ch}.json`)) seen.set(ch, now);
      for (const m of sink!.messages) {
        const to = m.to[0]!;
        if (!seen.has(to)) seen.set(to, now);
      }
    };
    const deadline = embargo.getTime() + 10_000;
    while (seen.size < 6 && Date.now() < deadline) {
      look();
      await new Promise((r) => setTimeout(r, 40));
    }
    expect([...seen.keys()].sort()).toEqual(['desk@newsroom.example', 'mastodon', 'neighbour@example.org', 'reader@example.org', 'twitter', 'webhook']);
    expect(seen.get('desk@newsroom.example')!).toBeLessThan(embargo.getTime());
    const media = sink.messages.find((m) => m.to[0] === 'desk@newsroom.example')!;
    expect(media.parsed?.subject).toMatch(/^EMBARGOED UNTIL /);
    for (const who of ['twitter', 'mastodon', 'webhook', 'reader@example.org', 'neighbour@example.org']) {
      // Seen by a poll after the send; the send itself cannot have been before the embargo instant.
      expect(seen.get(who)!, who).toBeGreaterThanOrEqual(embargo.getTime());
    }
    const x = JSON.parse(readFileSync(path.join(outbox, `${c.id}-twitter.json`), 'utf8')) as { at: string };
    expect(new Date(x.at).getTime()).toBeGreaterThanOrEqual(embargo.getTime());

    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
  });

  it('a pre-election window covering the embargo instant holds the publication (and nothing goes at send_at)', async () => {
    sink = await startSmtpSink();
    const purdah = `purdah:\n  - { from: "${londonIn(3000)}", to: "${londonIn(3600_000)}", reason: "PCC election" }\n`;
    crier = await startCrier(testConfig({ env: { SMTP_URL: sink.url }, yaml: purdah }));
    await importList(crier, 'media', ['desk@newsroom.example,News Desk,,']);
    const since = new Date(Date.now() - 1000);
    const c = await crier.create(
      [
        'title: Held release',
        'kind: press',
        `send_at: ${londonIn(1000)}`,
        'channels:',
        `  press: { headline: "Held release", body: "Text.", embargo_until: "${londonIn(6000)}", list: media }`,
        '  twitter: { text: "Held release" }',
        '',
      ].join('\n'),
    );
    const held = await crier.waitForStatus(c.id, ['held', 'sent', 'sending', 'failed']);
    expect(held.status).toBe('held');
    expect(held.reason).toMatch(/embargo .* falls in the PCC election/);
    const audit = (await readAudit(crier.handle.redis, crier.config.redis_prefix, { since })).filter((e) => e.subject === c.id);
    expect(audit.map((e) => e.action)).toEqual(['campaign.create', 'campaign.hold']);
    expect(sink.count).toBe(0);
    expect(existsSync(crier.config.outboxDir) ? readdirSync(crier.config.outboxDir) : []).toEqual([]);
  });
});
