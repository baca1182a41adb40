import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parsePeriod } from '../domain/periods.js';
import { composeDigest, sendDigest } from '../digest/send.js';
import { weekBefore } from '../digest/model.js';
import { previewHtml } from '../digest/render.js';
import { DependencyError, UserError } from '../errors.js';
import { withContext } from './context.js';

/** `crier digest [--week YYYY-Www] (--preview FILE.html | --send [--force])`. */
export function registerDigestCommand(program: Command): void {
  program
    .command('digest')
    .description('the weekly digest of the measures of success: preview it as a file, or send it to digest.recipients')
    .option('--week <YYYY-Www>', 'the ISO week, Monday to Sunday in the configured time zone (default: last week)')
    .option('--preview <file.html>', 'write the digest to this HTML file (pictures inline) and the text part beside it (.txt); sends nothing')
    .option('--send', 'email it to digest.recipients; each recipient gets a week once')
    .option('--force', 'with --send: send again to recipients who already had this week')
    .action(async (opts: { week?: string; preview?: string; send?: boolean; force?: boolean }) => {
      if (Boolean(opts.preview) === Boolean(opts.send)) throw new UserError('give either --preview FILE.html or --send', 'CRIER_ERR_INPUT', { field: opts.preview ? '--send' : '--preview' });
      if (opts.force && !opts.send) throw new UserError('--force only goes with --send', 'CRIER_ERR_INPUT', { field: '--force' });
      await withContext(async (ctx) => {
        const zone = ctx.config.timezone;
        const week = opts.week ? parsePeriod(opts.week, zone, { field: '--week' }, 'week') : weekBefore(new Date(), zone);
        const deps = { config: ctx.config, redis: ctx.redis.redis, log: ctx.log, now: () => new Date() };
        if (opts.preview) {
          const file = path.resolve(opts.preview);
          const r = await composeDigest(deps, week);
          const textFile = file.replace(/\.html?$/i, '') + '.txt';
          try {
            writeFileSync(file, previewHtml(r));
            writeFileSync(textFile, r.text);
          } catch (err) {
            throw new UserError(`cannot write the preview: ${(err as Error).message}`, 'CRIER_ERR_INPUT', { file });
          }
          ctx.out(`wrote ${file} (${r.images.length} trend pictures inline) and ${textFile}: ${r.subject}`);
          return;
        }
        if (ctx.config.digest.recipients.length === 0) {
          throw new UserError('nobody to send to: list addresses under digest.recipients in the configuration', 'CRIER_ERR_CONFIG', { file: ctx.config.configFile, field: 'digest.recipients' });
        }
        const r = await sendDigest(deps, week, { force: opts.force });
        const where = r.dryRun ? ` (dry run: written to ${ctx.config.outboxDir})` : '';
        ctx.out(`digest ${week.key}: sent to ${r.sent.length}${where}, already had it ${r.skipped.length}, failed ${r.failed.length}`);
        for (const to of r.sent) ctx.out(`  sent     ${to}`);
        for (const to of r.skipped) ctx.out(`  skipped  ${to} (already sent this week; --force sends again)`);
        for (const f of r.failed) ctx.out(`  failed   ${f.to}: ${f.reason}`);
        if (r.failed.some((f) => f.transient)) throw new DependencyError(`the digest could not be sent to ${r.failed.length} recipient(s); run the same command again to send to them only`);
        if (r.failed.length > 0) throw new UserError(`the mail server refused the digest for ${r.failed.map((f) => f.to).join(', ')}`, 'CRIER_ERR_INPUT', { field: 'digest.recipients' });
      });
    });
}
