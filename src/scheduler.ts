import { Queue, type JobsOptions } from 'bullmq';
import type { ChannelSettings, Config } from './config.js';
import { UserError } from './errors.js';
import type { Logger } from './log.js';
import type { RedisHandle } from './redis/connection.js';
import { reconcileSending, whileReconcileLocked } from './reconcile.js';
import { appendAudit, type AuditDetail } from './domain/audit.js';
import type { CampaignDraft } from './domain/campaign-file.js';
import { holdingWindows, windowKey } from './domain/purdah.js';
import {
  approveCampaign,
  campaignKeys,
  cancelCampaign,
  getCampaign,
  listCampaignsIn,
  releaseCampaign,
  rescheduleCampaign,
  retryFailed,
  saveNewCampaign,
  type Campaign,
  type NewCampaignOptions,
} from './domain/campaigns.js';

export const CAMPAIGN_QUEUE = 'campaigns';

/** Why a campaign in this state cannot be approved (APPROVE checks again, atomically). */
function refuseApprovalFor(c: Campaign): void {
  if (c.status === 'awaiting_approval' || (c.status === 'held' && c.essential)) return;
  const why: Partial<Record<Campaign['status'], string>> = {
    scheduled: c.approvedBy ? `it was already approved by ${c.approvedBy} and is scheduled` : 'it is scheduled and needs no approval (its kind is not in approval.kinds)',
    held: 'it is held by the pre-election period and not marked essential: true; reschedule it after the period instead',
    cancelled: 'it is cancelled',
    draft: 'it is a draft',
    sending: 'it is being sent',
    sent: 'it has been sent',
    partially_failed: 'it has been sent (some deliveries failed: `crier campaign failures ID`)',
    failed: 'it has been sent and failed (`crier campaign failures ID`)',
  };
  throw new UserError(`campaign ${c.id} cannot be approved: ${(why[c.status] ?? `it is ${c.status}`).replace('ID', c.id)}`, 'CRIER_ERR_STATE');
}
export const deliverQueueName = (channel: string): string => `deliver-${channel}`;
export const planJobId = (id: string, version: number): string => `${id}:plan:v${version}`;

export interface CampaignJobData {
  id: string;
  version: number;
}

/** A delivery job: one batch of one channel of one campaign. */
export interface DeliverJobData {
  campaignId: string;
  channel: string;
  /** Field in the campaign's batches hash holding the recipient ids (',' joined). */
  batch: string;
}

/** Retries with exponential backoff from the channel's settings; finished jobs are kept a while for inspection. */
export function deliverJobOptions(settings: ChannelSettings, jobId: string, delay = 0): JobsOptions {
  return {
    jobId,
    delay,
    attempts: settings.attempts,
    backoff: { type: 'exponential', delay: settings.backoff_ms },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

/**
 * Turns decisions about campaigns (create, approve, cancel, reschedule) into
 * state in Redis and delayed jobs in BullMQ. The state change is atomic (Lua);
 * the job is derived from it (job id = campaign + version), so a stale job
 * finds a newer version and does nothing, and a lost job is re-added by
 * reconcile().
 */
export class Scheduler {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly config: Config,
    private readonly handle: RedisHandle,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.handle.options, prefix: this.config.redis_prefix });
      q.on('error', (err) => this.log.warn({ err: err.message, queue: name }, 'queue error'));
      this.queues.set(name, q);
    }
    return q;
  }

  private get redis() {
    return this.handle.redis;
  }

  private audit(actor: string, action: string, subject: string, detail?: AuditDetail): Promise<string> {
    return appendAudit(this.redis, this.config.redis_prefix, { actor, action, subject, detail });
  }

  needsApproval(kind: string): boolean {
    return (this.config.approval.kinds as string[]).includes(kind);
  }

  private checkApprover(actor: string, author: string, id: string): void {
    if (actor === author) throw new UserError(`campaign ${id} was written by ${author}; it needs approval by someone else`, 'CRIER_ERR_FORBIDDEN');
    const approvers = this.config.approval.approvers;
    if (approvers.length > 0 && !approvers.includes(actor)) {
      throw new UserError(`${actor} is not an approver (approval.approvers: ${approvers.join(', ')})`, 'CRIER_ERR_FORBIDDEN');
    }
  }

  async create(draft: CampaignDraft, opts: { actor: string; approve?: boolean; requireApproval?: boolean } & NewCampaignOptions): Promise<Campaign> {
    // The author is whoever creates it (CRIER_USER), never a field of the file: no approving your own work.
    const author = opts.actor;
    const needs = opts.requireApproval ?? this.needsApproval(draft.kind);
    if (opts.approve && needs) {
      throw new UserError(
        `a ${draft.kind} campaign needs approval by someone other than its author (you, ${author}): create it without --approve, then another approver runs \`crier campaign approve ID\``,
        'CRIER_ERR_FORBIDDEN',
      );
    }
    const status = needs ? 'awaiting_approval' : 'scheduled';
    const now = this.now();
    const c = await saveNewCampaign(this.redis, this.config.redis_prefix, draft, status, author, now, { id: opts.id, series: opts.series, note: opts.note });
    await this.audit(opts.actor, 'campaign.create', c.id, { title: c.title, kind: c.kind, status, send_at: c.sendAt.toISOString() });
    if (status === 'scheduled') await this.enqueue(c.id, c.version, c.sendAt);
    this.log.info({ campaignId: c.id, status }, 'campaign created');
    return c;
  }

  async approve(id: string, actor: string): Promise<Campaign> {
    const c = await getCampaign(this.redis, this.config.redis_prefix, id);
    // The state first: "you cannot approve your own campaign" is wrong news about one that needs no approval.
    refuseApprovalFor(c);
    this.checkApprover(actor, c.author, id);
    const { version } = await approveCampaign(this.redis, this.config.redis_prefix, id, actor, this.now());
    await this.audit(actor, 'campaign.approve', id, { was: c.status });
    // Read send_at after the state change: a reschedule between our first read and APPROVE moved it.
    // (A reschedule after APPROVE bumps the version again and adds its own job; ours is then stale.)
    const after = await getCampaign(this.redis, this.config.redis_prefix, id);
    await this.enqueue(id, version, after.sendAt);
    return after;
  }

  /**
   * Releases an essential campaign held by the pre-election period, for the
   * windows that hold it now (a later window holds it again). Same rules as
   * approval: an approver, not the author.
   */
  async release(id: string, actor: string): Promise<Campaign> {
    const prefix = this.config.redis_prefix;
    const c = await getCampaign(this.redis, prefix, id);
    this.checkApprover(actor, c.author, id);
    const windows = holdingWindows(this.config, c, this.now()).map((h) => windowKey(h.window));
    const { version } = await releaseCampaign(this.redis, prefix, id, actor, windows, this.now());
    await this.audit(actor, 'campaign.release', id, { was: c.status, windows: windows.join(', ') });
    const after = await getCampaign(this.redis, prefix, id);
    await this.enqueue(id, version, after.sendAt);
    return after;
  }

  async cancel(id: string, actor: string): Promise<void> {
    const c = await getCampaign(this.redis, this.config.redis_prefix, id);
    await cancelCampaign(this.redis, this.config.redis_prefix, id, this.now());
    await this.audit(actor, 'campaign.cancel', id, { was: c.status });
    await this.removeJob(planJobId(id, c.version));
  }

  async reschedule(id: string, sendAt: Date, actor: string): Promise<Campaign> {
    if (sendAt.getTime() < this.now().getTime() - 1000) throw new UserError('the new time is in the past', 'CRIER_ERR_INPUT', { field: '--at' });
    const before = await getCampaign(this.redis, this.config.redis_prefix, id);
    const { status, version } = await rescheduleCampaign(this.redis, this.config.redis_prefix, id, sendAt, this.now());
    await this.audit(actor, 'campaign.reschedule', id, { from: before.sendAt.toISOString(), to: sendAt.toISOString() });
    if (status === 'scheduled') await this.enqueue(id, version, sendAt);
    await this.removeJob(planJobId(id, before.version));
    return getCampaign(this.redis, this.config.redis_prefix, id);
  }

  /**
   * Sends a failed or partially failed campaign's failed deliveries again (say, after
   * fixing SMTP credentials): they go back to pending and every batch of their
   * channels is queued once more; a batch sends only what is not done, so nobody
   * who already had the message gets it twice.
   */
  async retry(id: string, actor: string): Promise<{ deliveries: number; channels: string[] }> {
    const prefix = this.config.redis_prefix;
    // Under the reconcile lock: a reconcile run between the status change and the new jobs would add its own.
    return whileReconcileLocked(this.redis, prefix, () => this.retryLocked(id, actor));
  }

  private async retryLocked(id: string, actor: string): Promise<{ deliveries: number; channels: string[] }> {
    const prefix = this.config.redis_prefix;
    const c = await getCampaign(this.redis, prefix, id);
    const { deliveries, retry, channels, replan } = await retryFailed(this.redis, prefix, c, this.now());
    await this.audit(actor, 'campaign.retry', id, { was: c.status, deliveries });
    const k = campaignKeys(prefix, id);
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(k.batches, cursor, 'COUNT', 500);
      cursor = next;
      const byChannel = new Map<string, Array<{ name: string; data: DeliverJobData; opts: JobsOptions }>>();
      for (let i = 0; i < flat.length; i += 2) {
        const field = flat[i]!;
        const channel = field.slice(0, field.indexOf(':'));
        if (!channels.includes(channel)) continue;
        const data: DeliverJobData = { campaignId: id, channel, batch: field };
        // BullMQ allows ':' in a job id only as exactly three parts: <campaign>:<channel>:<batch>-retry<n>.
        const opts = deliverJobOptions(this.config.channelSettings(channel), `${id}:${field}-retry${retry}`);
        const jobs = byChannel.get(channel) ?? [];
        jobs.push({ name: 'deliver', data, opts });
        byChannel.set(channel, jobs);
      }
      for (const [channel, jobs] of byChannel) {
        await this.queue(deliverQueueName(channel)).addBulk(jobs);
        // The batch's current job, for reconcile() to look at.
        await this.redis.hset(k.jobs, Object.fromEntries(jobs.map((j) => [j.data.batch, j.opts.jobId!])));
      }
    } while (cursor !== '0');
    if (replan) await this.replan(c);
    return { deliveries, channels };
  }

  /** Adds the campaign's delayed job; the same version twice is one job. */
  async enqueue(id: string, version: number, sendAt: Date): Promise<void> {
    const delay = Math.max(0, sendAt.getTime() - this.now().getTime());
    // BullMQ counts the delay from the job's timestamp; stamped here, right after reading the clock, the job
    // falls due at send_at, not at send_at plus however long add() took to build it.
    const timestamp = Date.now();
    await this.queue(CAMPAIGN_QUEUE).add('campaign', { id, version } satisfies CampaignJobData, {
      jobId: planJobId(id, version),
      delay,
      timestamp,
      attempts: 10,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 30 * 24 * 3600 },
    });
  }

  private async removeJob(jobId: string): Promise<void> {
    try {
      await this.queue(CAMPAIGN_QUEUE).remove(jobId);
    } catch (err) {
      // An active or locked job cannot be removed; its version check makes it a no-op anyway.
      this.log.debug({ jobId, err: (err as Error).message }, 'old campaign job left to expire');
    }
  }

  /** Runs the campaign's plan job again now (planning is idempotent): a failed one is retried, a lost one re-added. */
  private async replan(c: Campaign): Promise<void> {
    const job = await this.queue(CAMPAIGN_QUEUE).getJob(planJobId(c.id, c.version));
    if (job && (await job.isFailed())) await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    else if (!job) await this.enqueue(c.id, c.version, this.now());
  }

  /**
   * After a crash between a state change and its job (or a lost Redis write),
   * every scheduled campaign gets its job back, and every sending campaign's
   * lost or failed jobs are put right (reconcileSending). Idempotent; run at
   * start and periodically.
   */
  async reconcile(): Promise<number> {
    let added = 0;
    // Only these two states need anything: finished campaigns (most of them, in time) are not read in full.
    const campaigns = await listCampaignsIn(this.redis, this.config.redis_prefix, ['scheduled', 'sending'], 10_000);
    await reconcileSending(
      {
        config: this.config,
        redis: this.redis,
        log: this.log,
        queue: (name) => this.queue(name),
        deliverQueueName,
        campaignQueue: CAMPAIGN_QUEUE,
        planJobId,
        replan: (c) => this.replan(c),
        deliverJobOptions: (channel, jobId) => deliverJobOptions(this.config.channelSettings(channel), jobId),
        now: this.now,
      },
      campaigns,
    );
    // The jobs are looked up a few hundred at a time (one round trip each group, not one per campaign).
    const scheduled = campaigns.filter((c) => c.status === 'scheduled');
    for (let i = 0; i < scheduled.length; i += 500) {
      const group = scheduled.slice(i, i + 500);
      const jobs = await Promise.all(group.map((c) => this.queue(CAMPAIGN_QUEUE).getJob(planJobId(c.id, c.version))));
      for (const [j, c] of group.entries()) {
        if (jobs[j]) continue;
        await this.enqueue(c.id, c.version, c.sendAt);
        added++;
      }
    }
    if (added > 0) this.log.warn({ added }, 'reconciled scheduled campaigns with no job');
    return added;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
