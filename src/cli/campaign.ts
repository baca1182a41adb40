import path from 'node:path';
import type { Command } from 'commander';
import { readCampaignFile } from '../domain/campaign-file.js';
import { channelViews, failureGroups, type AudienceCounts, type ChannelView, type FailureGroup } from '../domain/campaign-report.js';
import { getCampaign, listCampaigns, type Campaign } from '../domain/campaigns.js';
import { campaignEmbargo, embargoWaits } from '../domain/embargo.js';
import { Scheduler } from '../scheduler.js';
import { formatLocal, parseLocalTime } from '../time.js';
import { checkCampaignLists, formatCampaignList, printShow } from './campaign-output.js';
import { withContext, type CliContext } from './context.js';
import { registerFailuresCommand } from './failures.js';
import { registerPreviewCommand } from './preview.js';
import { cancelRecurring, createRecurring, printSeriesList, showSeries } from './series.js';

/** `crier campaign …`: create, list, show, approve, cancel, retry, reschedule, preview. */

export interface CampaignView {
  id: string;
  title: string;
  kind: string;
  status: string;
  send_at: string;
  channels: Record<string, ChannelView>;
  /** Failed deliveries grouped by channel and reason, largest first (`campaign failures ID` lists who). */
  failures: FailureGroup[];
  reason?: string;
  author: string;
  approved_by?: string;
  released_by?: string;
  essential: boolean;
  /** The embargo instant, when the campaign carries an embargoed press release. */
  embargo_until?: string;
  /** Channels that wait for the embargo (public channels, and the press release's publication), with when. */
  waits_until?: Record<string, string>;
  /** The recurring campaign this is an occurrence of. */
  series?: string;
  /** What is missing from it (a newsletter run whose feed was down). */
  note?: string;
}

export async function campaignView(ctx: Pick<CliContext, 'redis'> & Partial<CliContext>, c: Campaign, counted?: AudienceCounts): Promise<CampaignView> {
  return {
    id: c.id,
    title: c.title,
    kind: c.kind,
    status: c.status,
    send_at: c.sendAt.toISOString(),
    channels: await channelViews(ctx.redis.redis, ctx.redis.prefix, c, counted),
    failures: await failureGroups(ctx.redis.redis, ctx.redis.prefix, c.id),
    ...(c.reason ? { reason: c.reason } : {}),
    author: c.author,
    ...(c.approvedBy ? { approved_by: c.approvedBy } : {}),
    ...(c.releasedBy ? { released_by: c.releasedBy } : {}),
    essential: c.essential,
    ...(c.series ? { series: c.series } : {}),
    ...(c.note ? { note: c.note } : {}),
    ...embargoView(c),
  };
}

function embargoView(c: Campaign): Pick<CampaignView, 'embargo_until' | 'waits_until'> {
  const embargo = campaignEmbargo(c);
  if (!embargo) return {};
  const waits = embargoWaits(c);
  return { embargo_until: embargo.toISOString(), ...(waits.length ? { waits_until: Object.fromEntries(waits.map((w) => [w.channel, w.until.toISOString()])) } : {}) };
}

export async function withScheduler<T>(fn: (ctx: CliContext, s: Scheduler) => Promise<T>): Promise<T> {
  return withContext(async (ctx) => {
    const s = new Scheduler(ctx.config, ctx.redis, ctx.log);
    try {
      return await fn(ctx, s);
    } finally {
      await s.close();
    }
  });
}

export function registerCampaignCommands(program: Command): void {
  const campaign = program.command('campaign').description('create and manage campaigns');

  campaign
    .command('create')
    .argument('<file>', 'campaign YAML file')
    .option('--approve', 'approve as you create (refused for kinds that need approval: an author cannot approve their own campaign)')
    .description('validate a campaign file and schedule it; prints the id last')
    .action(async (file: string, opts: { approve?: boolean }) => {
      await withScheduler(async (ctx, s) => {
        const draft = readCampaignFile(path.resolve(file), ctx.config, { now: new Date() });
        await checkCampaignLists(ctx, path.resolve(file), draft.channels);
        if (draft.repeat) {
          await createRecurring(ctx, s, { ...draft, repeat: draft.repeat });
          return;
        }
        const c = await s.create(draft, { actor: ctx.config.user, approve: opts.approve });
        const when = `${formatLocal(c.sendAt, c.timezone)} ${c.timezone}`;
        ctx.out(c.status === 'awaiting_approval' ? `created "${c.title}": awaiting approval (send at ${when})` : `scheduled "${c.title}" for ${when}`);
        ctx.out(c.id);
      });
    });

  campaign
    .command('list')
    .option('--json', 'machine-readable output')
    .description('list campaigns by send time, the soonest first')
    .action(async (opts: { json?: boolean }) => {
      await withContext(async (ctx) => {
        // By send time, the soonest first, as a schedule reads (ties: the newest created first).
        const all = (await listCampaigns(ctx.redis.redis, ctx.redis.prefix)).sort((a, b) => a.sendAt.getTime() - b.sendAt.getTime());
        if (opts.json) {
          const counted: AudienceCounts = new Map();
          ctx.out(JSON.stringify(await Promise.all(all.map((c) => campaignView(ctx, c, counted)))));
          return;
        }
        if (all.length === 0) ctx.out('no campaigns yet: crier campaign create FILE.yaml');
        else for (const line of formatCampaignList(all, ctx.config.timezone)) ctx.out(line);
        await printSeriesList(ctx);
      });
    });

  campaign
    .command('show')
    .argument('<id>')
    .option('--json', 'machine-readable output')
    .description('status and per-channel counts (sent, failed, pending)')
    .action(async (id: string, opts: { json?: boolean }) => {
      await withContext(async (ctx) => {
        if (await showSeries(ctx, id, Boolean(opts.json))) return;
        const v = await campaignView(ctx, await getCampaign(ctx.redis.redis, ctx.redis.prefix, id));
        if (opts.json) ctx.out(JSON.stringify(v));
        else printShow(ctx, v, ctx.config.timezone);
      });
    });

  campaign
    .command('approve')
    .argument('<id>')
    .description('approve a campaign awaiting approval')
    .action(async (id: string) => {
      await withScheduler(async (ctx, s) => {
        const c = await s.approve(id, ctx.config.user);
        ctx.out(`approved ${c.id} by ${ctx.config.user}: ${c.status}, send at ${formatLocal(c.sendAt, c.timezone)}`);
      });
    });

  campaign
    .command('release')
    .argument('<id>')
    .description('an approver releases an essential campaign held by the pre-election period (audited)')
    .action(async (id: string) => {
      await withScheduler(async (ctx, s) => {
        const c = await s.release(id, ctx.config.user);
        ctx.out(`released ${c.id} by ${ctx.config.user}: ${c.status}, send at ${formatLocal(c.sendAt, c.timezone)}`);
      });
    });

  campaign
    .command('cancel')
    .argument('<id>')
    .option('--series', 'stop a recurring campaign: no more occurrences, and those not yet sent are cancelled (ID: the series or any occurrence)')
    .description('cancel a campaign; it never starts (or stops sending)')
    .action(async (id: string, opts: { series?: boolean }) => {
      await withScheduler(async (ctx, s) => {
        if (opts.series) {
          await cancelRecurring(ctx, s, id);
          return;
        }
        await s.cancel(id, ctx.config.user);
        ctx.out(`cancelled ${id}`);
      });
    });

  campaign
    .command('retry')
    .argument('<id>')
    .description('send the failed deliveries of a failed or partially failed campaign again (e.g. after fixing SMTP_URL)')
    .action(async (id: string) => {
      await withScheduler(async (ctx, s) => {
        const { deliveries, channels } = await s.retry(id, ctx.config.user);
        ctx.out(`retrying ${deliveries} failed deliver${deliveries === 1 ? 'y' : 'ies'} of ${id} (${channels.join(', ')}); \`crier campaign show ${id}\` follows them`);
      });
    });

  registerPreviewCommand(campaign);
  registerFailuresCommand(campaign);

  campaign
    .command('reschedule')
    .argument('<id>')
    .requiredOption('--at <time>', 'new local time "YYYY-MM-DD HH:mm"')
    .description('move a scheduled or held campaign to a new time')
    .action(async (id: string, opts: { at: string }) => {
      await withScheduler(async (ctx, s) => {
        const current = await getCampaign(ctx.redis.redis, ctx.redis.prefix, id);
        const at = parseLocalTime(opts.at, current.timezone, { field: '--at' });
        const c = await s.reschedule(id, at, ctx.config.user);
        ctx.out(`rescheduled ${c.id} to ${formatLocal(c.sendAt, c.timezone)} ${c.timezone} (${c.status})`);
      });
    });
}
