import type { Command } from 'commander';
import { failedDeliveries } from '../domain/campaign-report.js';
import { getCampaign } from '../domain/campaigns.js';
import { csvLine, neutraliseCell } from '../domain/csv.js';
import { withContext } from './context.js';

export const FAILURES_CSV_HEADER = ['channel', 'email', 'name', 'reason'];

/**
 * `crier campaign failures ID [--csv]`: every failed delivery of a campaign,
 * who it was for and why, a page at a time. The CSV is safe to open in a
 * spreadsheet: no cell can start a formula.
 */
export function registerFailuresCommand(campaign: Command): void {
  campaign
    .command('failures')
    .argument('<id>')
    .option('--csv', 'CSV with a header row (channel,email,name,reason), safe to open in a spreadsheet')
    .description('list who a campaign failed to reach, and why')
    .action(async (id: string, opts: { csv?: boolean }) => {
      await withContext(async (ctx) => {
        const c = await getCampaign(ctx.redis.redis, ctx.redis.prefix, id);
        if (opts.csv) ctx.out(csvLine(FAILURES_CSV_HEADER));
        let n = 0;
        for await (const page of failedDeliveries(ctx.redis.redis, ctx.redis.prefix, c.id)) {
          for (const f of page) {
            n++;
            const who = f.recipient === '-' ? `(the ${f.channel} post)` : f.email;
            if (opts.csv) ctx.out(csvLine([f.channel, f.email, f.name, f.reason].map(neutraliseCell)));
            else ctx.out(`${f.channel.padEnd(10)} ${who.padEnd(32)} ${f.reason}`);
          }
        }
        if (!opts.csv) {
          ctx.out(n === 0 ? `no failed deliveries for ${c.id} (${c.status})` : `${n} failed deliver${n === 1 ? 'y' : 'ies'}; \`crier campaign retry ${c.id}\` sends them again once the cause is fixed`);
        }
      });
    });
}
