import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { campaignView } from '../src/cli/campaign.js';
import { importSubscribers } from '../src/domain/audience.js';
import { readAudit } from '../src/domain/audit.js';
import { UserError } from '../src/errors.js';
import { testConfig, silentLogger } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';

/**
 * Approval (kinds that need a second person) and the pre-election period
 * (purdah windows hold campaigns; an approver can release an essential one),
 * through the real scheduler, queue and workers; every step in the audit log.
 */

let crier: TestCrier | undefined;
afterEach(async () => {
  await crier?.close();
  crier = undefined;
});

const FINAL = ['sent', 'partially_failed', 'failed'];
const HOUR = 3600_000;

async function start(yaml: string): Promise<TestCrier> {
  crier = await startCrier(testConfig({ yaml }));
  const csv = path.join(crier.config.dataDir, 'media.csv');
  writeFileSync(csv, 'email,name,area,topics\ndesk@newsroom.example,News Desk,,\n');
  await importSubscribers(crier.handle.redis, crier.config.redis_prefix, csv, 'media', { rejectsDir: crier.config.dataDir });
  return crier;
}

const pressYaml = (title: string) =>
  `title: ${title}\nkind: press\nsend_at: ${londonIn(1000)}\nchannels:\n  press: { headline: "${title}", body: "Details to follow.", list: media }\n`;
const socialYaml = (title: string, essential = false) =>
  `title: ${title}\nkind: social\nsend_at: ${londonIn(1000)}\n${essential ? 'essential: true\n' : ''}channels:\n  twitter: { text: "${title}" }\n`;

/** What the dry-run channels have written so far. */
const outbox = (c: TestCrier): string[] => (existsSync(c.config.outboxDir) ? readdirSync(c.config.outboxDir) : []);

/** `campaign show --json` as the CLI builds it. */
function show(c: TestCrier, id: string) {
  return c.show(id).then((campaign) => campaignView({ config: c.config, log: silentLogger(), redis: c.handle, out: () => undefined }, campaign));
}

async function refused(p: Promise<unknown>): Promise<UserError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

describe('approval', () => {
  it('a kind that needs approval waits; the author cannot approve; another user can, and it sends', async () => {
    const c = await start('approval: { kinds: [press] }\n');
    const created = await c.create(pressYaml('Funding announcement'), { actor: 'alice' });
    expect(created.status).toBe('awaiting_approval');
    expect(created.author).toBe('alice');

    // Past its send time it still waits, and no job exists to fire.
    await new Promise((r) => setTimeout(r, Math.max(0, created.sendAt.getTime() + 500 - Date.now())));
    expect((await show(c, created.id)).status).toBe('awaiting_approval');
    const jobs = await c.scheduler.queue('campaigns').getJobCounts('wait', 'delayed', 'active', 'completed', 'prioritized');
    expect(Object.values(jobs).reduce((a, b) => a + b, 0)).toBe(0);
    expect(outbox(c)).toEqual([]);

    const own = await refused(c.scheduler.approve(created.id, 'alice'));
    expect(own.code).toBe('CRIER_ERR_FORBIDDEN');
    expect(own.message).toMatch(/written by alice/);
    expect((await show(c, created.id)).status).toBe('awaiting_approval');

    const approved = await c.scheduler.approve(created.id, 'bob');
    expect(approved).toMatchObject({ status: 'scheduled', approvedBy: 'bob' });
    const done = await c.waitForStatus(created.id, FINAL);
    expect(done.status).toBe('sent');
    expect(done.counts.press).toMatchObject({ failed: 0, pending: 0 });
    expect(outbox(c).filter((f) => f.endsWith('.eml'))).toHaveLength(1);
    expect((await show(c, created.id)).approved_by).toBe('bob');
  });

  it('with approval.approvers only those users may approve, and an author cannot self-approve at create', async () => {
    const c = await start('approval: { kinds: [press], approvers: [carol] }\n');
    await refused(c.create(pressYaml('Self approved'), { actor: 'alice', approve: true }));
    const created = await c.create(pressYaml('Needs carol'), { actor: 'alice' });
    expect(created.status).toBe('awaiting_approval');
    const bob = await refused(c.scheduler.approve(created.id, 'bob'));
    expect(bob.code).toBe('CRIER_ERR_FORBIDDEN');
    expect(bob.message).toMatch(/bob is not an approver/);
    expect((await c.scheduler.approve(created.id, 'carol')).status).toBe('scheduled');
    expect((await c.waitForStatus(created.id, FINAL)).status).toBe('sent');
  });

  it('kinds not listed go straight to scheduled', async () => {
    const c = await start('approval: { kinds: [press] }\n');
    const social = await c.create(socialYaml('Not reviewed'), { actor: 'alice' });
    expect(social.status).toBe('scheduled');
    expect((await c.waitForStatus(social.id, FINAL)).status).toBe('sent');
  });
});

describe('pre-election period (purdah)', () => {
  const purdah = () => `purdah:\n  - { from: "${londonIn(-HOUR)}", to: "${londonIn(HOUR)}", reason: "PCC election" }\n`;

  it('holds a non-essential campaign with the reason on show; approval is refused; rescheduling after the window schedules it', async () => {
    const c = await start(purdah());
    const created = await c.create(socialYaml('Routine update'), { actor: 'alice' });
    expect(created.status).toBe('scheduled');
    const held = await c.waitForStatus(created.id, ['held', ...FINAL]);
    expect(held.status).toBe('held');
    const view = await show(c, created.id);
    expect(view.reason).toMatch(/PCC election/);
    expect(view.channels.twitter).toMatchObject({ sent: 0, failed: 0 });

    const err = await refused(c.scheduler.approve(created.id, 'bob'));
    expect(err.code).toBe('CRIER_ERR_STATE');
    expect(err.message).toMatch(/held by the pre-election period/);
    const notEssential = await refused(c.scheduler.release(created.id, 'bob'));
    expect(notEssential.code).toBe('CRIER_ERR_STATE');
    expect(notEssential.message).toMatch(/not marked essential/);
    expect((await show(c, created.id)).status).toBe('held');

    const after = c.config.purdah[0]!.to.getTime() + HOUR;
    const moved = await c.scheduler.reschedule(created.id, new Date(after), 'alice');
    expect(moved.status).toBe('scheduled');
    expect(moved.sendAt.getTime()).toBe(after);
    expect((await show(c, created.id)).reason).toBeUndefined();
    const job = await c.scheduler.queue('campaigns').getJob(`${created.id}:plan:v${moved.version}`);
    expect(await job?.getState()).toBe('delayed');
    expect(outbox(c)).toEqual([]);
  });

  it('an essential campaign is held, then released by an approver other than the author, and sends; the audit log has every step', async () => {
    const c = await start(purdah());
    const since = new Date(Date.now() - 1000);
    const created = await c.create(socialYaml('Road closure after incident', true), { actor: 'alice' });
    expect(created.essential).toBe(true);
    expect((await c.waitForStatus(created.id, ['held', ...FINAL])).status).toBe('held');
    expect((await show(c, created.id)).reason).toMatch(/PCC election/);

    expect((await refused(c.scheduler.release(created.id, 'alice'))).code).toBe('CRIER_ERR_FORBIDDEN');
    expect((await refused(c.scheduler.approve(created.id, 'bob'))).code).toBe('CRIER_ERR_STATE');
    expect((await c.scheduler.release(created.id, 'bob')).status).toBe('scheduled');
    const done = await c.waitForStatus(created.id, FINAL);
    expect(done.status).toBe('sent');
    expect(done.counts.twitter).toEqual({ sent: 1, failed: 0, pending: 0, skipped: 0 });

    const audit = (await readAudit(c.handle.redis, c.config.redis_prefix, { since })).filter((e) => e.subject === created.id);
    const steps = audit.map((e) => [e.action, e.actor]);
    expect(steps).toEqual([
      ['campaign.create', 'alice'],
      ['campaign.hold', 'scheduler'],
      ['campaign.release', 'bob'],
      ['campaign.send', 'worker'],
    ]);
    expect(String(audit[1]!.detail.reason)).toMatch(/PCC election/);
    expect(String(audit[2]!.detail.windows)).toBe(`${c.config.purdah[0]!.from.toISOString()}/${c.config.purdah[0]!.to.toISOString()}`);
    expect((await show(c, created.id)).released_by).toBe('bob');
    expect(audit[3]!.detail.status).toBe('sent');
    expect(audit.every((e, i) => i === 0 || e.at >= audit[i - 1]!.at)).toBe(true);
  });

  it('an approval given before the window does not bypass the hold: only a release during the window does', async () => {
    const c = await start(`approval: { kinds: [social] }\n${purdah()}`);
    const created = await c.create(socialYaml('Essential but approved long ago', true), { actor: 'alice' });
    expect(created.status).toBe('awaiting_approval');
    // Approved (as if weeks ago) by an approver: that approval is for the content, not for the pre-election period.
    expect((await c.scheduler.approve(created.id, 'bob')).status).toBe('scheduled');
    const held = await c.waitForStatus(created.id, ['held', ...FINAL]);
    expect(held.status).toBe('held');
    expect(outbox(c)).toEqual([]);
    expect((await c.scheduler.release(created.id, 'carol')).status).toBe('scheduled');
    expect((await c.waitForStatus(created.id, FINAL)).status).toBe('sent');
    expect(outbox(c)).toEqual([`${created.id}-twitter.json`]);
  });
});
