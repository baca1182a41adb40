import path from 'node:path';
import type { Command } from 'commander';
import { readCampaignFile } from '../domain/campaign-file.js';
import { channelCounts, getCampaign, listCampaigns, type Campaign, type ChannelCounts } from '../domain/campaigns.js';
import { Scheduler } from '../scheduler.js';
import { formatLocal, parseLocalTime } from '../time.js';
import { withContext, type CliContext } from './context.js';
import { registerPreviewCommand } from './preview.js';

/** `crier campaign …`: create, list, show, approve, cancel, retry, reschedule, preview. */

export interface CampaignView {
  id: string;
  title: string;
  kind: string;
  status: string;
  send_at: string;
  channels: Record<string, ChannelCounts>;
  reason?: string;
  author: string;
  approved_by?: string;
  essential: boolean;
}

export async function campaignView(ctx: CliContext, c: Campaign): Promise<CampaignView> {
  return {
    id: c.id,
    title: c.title,
    kind: c.kind,
    status: c.status,
    send_at: c.sendAt.toISOString(),
    channels: await channelCounts(ctx.redis.redis, ctx.redis.prefix, c),
    ...(c.reason ? { reason: c.reason } : {}),
    author: c.author,
    ...(c.approvedBy ? { approved_by: c.approvedBy } : {}),
    essential: c.essential,
  };
}

async function withScheduler<T>(fn: (ctx: CliContext, s: Scheduler) => Promise<T>): Promise<T> {
  return withContext(async (ctx) => {
    const s = new Scheduler(ctx.config, ctx.redis, ctx.log);
    try {
      return await fn(ctx, s);
    } finally {
      await s.close();
    }
  });
}

function printShow(ctx: CliContext, v: CampaignView, zone: string): void {
  ctx.out(`${v.id}  ${v.title}`);
  ctx.out(`  kind:    ${v.kind}${v.essential ? ' (essential)' : ''}`);
  ctx.out(`  status:  ${v.status}`);
  if (v.reason) ctx.out(`  reason:  ${v.reason}`);
  ctx.out(`  send at: ${formatLocal(new Date(v.send_at), zone)} ${zone}`);
  ctx.out(`  author:  ${v.author}${v.approved_by ? `, approved by ${v.approved_by}` : ''}`);
  for (const [ch, n] of Object.entries(v.channels)) {
    const none = n.sent + n.failed + n.pending + n.skipped === 0 ? `  (no recipients: the list is empty or nobody subscribed matches${ch === 'sms' ? ' and gave a mobile number' : ''})` : '';
    ctx.out(`  ${ch.padEnd(10)} sent ${n.sent}, failed ${n.failed}, pending ${n.pending}${n.skipped ? `, skipped ${n.skipped}` : ''}${n.error ? `  last error: ${n.error}` : ''}${none}`);
  }
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
        const c = await s.create(draft, { actor: ctx.config.user, approve: opts.approve });
        const when = `${formatLocal(c.sendAt, c.timezone)} ${c.timezone}`;
        ctx.out(c.status === 'awaiting_approval' ? `created "${c.title}": awaiting approval (send at ${when})` : `scheduled "${c.title}" for ${when}`);
        ctx.out(c.id);
      });
    });

  campaign
    .command('list')
    .option('--json', 'machine-readable output')
    .description('list campaigns, newest first')
    .action(async (opts: { json?: boolean }) => {
      await withContext(async (ctx) => {
        const all = await listCampaigns(ctx.redis.redis, ctx.redis.prefix);
        if (opts.json) {
          ctx.out(JSON.stringify(await Promise.all(all.map((c) => campaignView(ctx, c)))));
          return;
        }
        if (all.length === 0) ctx.out('no campaigns yet: crier campaign create FILE.yaml');
        for (const c of all) {
          ctx.out(`${c.id}  ${c.status.padEnd(17)} ${formatLocal(c.sendAt, c.timezone)}  ${c.kind.padEnd(10)} ${c.title}`);
        }
      });
    });

  campaign
    .command('show')
    .argument('<id>')
    .option('--json', 'machine-readable output')
    .description('status and per-channel counts (sent, failed, pending)')
    .action(async (id: string, opts: { json?: boolean }) => {
      await withContext(async (ctx) => {
        const v = await campaignView(ctx, await getCampaign(ctx.redis.redis, ctx.redis.prefix, id));
        if (opts.json) ctx.out(JSON.stringify(v));
        else printShow(ctx, v, ctx.config.timezone);
      });
    });

  campaign
    .command('approve')
    .argument('<id>')
    .description('approve a campaign awaiting approval, or release a held essential one')
    .action(async (id: string) => {
      await withScheduler(async (ctx, s) => {
        const c = await s.approve(id, ctx.config.user);
        ctx.out(`approved ${c.id} by ${ctx.config.user}: ${c.status}, send at ${formatLocal(c.sendAt, c.timezone)}`);
      });
    });

  campaign
    .command('cancel')
    .argument('<id>')
    .description('cancel a campaign; it never starts (or stops sending)')
    .action(async (id: string) => {
      await withScheduler(async (ctx, s) => {
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
