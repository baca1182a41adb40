import type { Command } from 'commander';
import { runNewsletter } from '../newsletter.js';
import { formatLocal } from '../time.js';
import { withScheduler } from './campaign.js';

/** `crier newsletter run [--month YYYY-MM]`: draft this month's newsletter now; the campaign id is the last line. */
export function registerNewsletterCommands(program: Command): void {
  const newsletter = program.command('newsletter').description('the monthly newsletter run');
  newsletter
    .command('run')
    .option('--month <YYYY-MM>', "the newsletter's month (default: this month)")
    .description('draft the newsletter from the website feed and the press releases since the last run; prints the campaign id last')
    .action(async (opts: { month?: string }) => {
      await withScheduler(async (ctx, scheduler) => {
        const zone = ctx.config.timezone;
        const r = await runNewsletter({ config: ctx.config, redis: ctx.redis.redis, scheduler, log: ctx.log, now: () => new Date() }, { month: opts.month, actor: ctx.config.user });
        const c = r.campaign;
        if (!r.created) {
          ctx.out(`the ${r.month} newsletter is already drafted (${c.status}); cancel it to draft it again`);
        } else {
          const stories = `${r.news} website stor${r.news === 1 ? 'y' : 'ies'}`;
          const releases = `${r.pressReleases} press release${r.pressReleases === 1 ? '' : 's'}`;
          ctx.out(`drafted "${c.title}": ${stories} and ${releases} since ${formatLocal(r.since, zone)}`);
          if (r.missing) ctx.out(`missing: ${r.missing}`);
          ctx.out(
            c.status === 'awaiting_approval'
              ? `awaiting approval: \`crier campaign approve ${c.id}\` (send at ${formatLocal(c.sendAt, zone)} ${zone}, or at once if approved later); \`crier campaign preview ${c.id}\` shows it`
              : `scheduled for ${formatLocal(c.sendAt, zone)} ${zone}`,
          );
        }
        ctx.out(c.id);
      });
    });
}
