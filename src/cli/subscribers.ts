import path from 'node:path';
import type { Command } from 'commander';
import { appendAudit } from '../domain/audit.js';
import {
  checkListName,
  exportList,
  forgetSubscriber,
  importSubscribers,
  subscriberId,
  type AudienceEventHook,
  type ImportResult,
} from '../domain/audience.js';
import { eraseDeliveryErrors, eraseFromFiles, rewriteAppendOnlyFile } from '../domain/erasure.js';
import { deriveKey } from '../keys.js';
import { createLogger, type Logger } from '../log.js';
import { withContext, type CliContext } from './context.js';
import { writeLineAsync } from './output.js';

/**
 * `crier subscribers import FILE --list NAME`: prints `imported N, updated M, rejected K`
 *   (`, suppressed S` appended when any); exit 0 once the file was processed, even with
 *   rejects (their file is named on stderr); exit 1 when the file cannot be used at all.
 * `crier subscribers export --list NAME`: the list as CSV on stdout.
 * `crier subscribers forget EMAIL`: erases the subscriber; exit 0 whether or not they
 *   were known (erasure is idempotent, and the address is suppressed either way).
 */

type Ctx = Pick<CliContext, 'config' | 'redis' | 'out'>;

function auditHook(ctx: Ctx): AudienceEventHook {
  return audienceAuditHook(ctx, ctx.config.user);
}

/** Audience changes to the audit log as `actor` (the CLI's user, or the API's signed-in account). */
export function audienceAuditHook(ctx: Pick<CliContext, 'redis'>, actor: string): AudienceEventHook {
  return async (action, detail) => {
    const { list, id, ...rest } = detail;
    await appendAudit(ctx.redis.redis, ctx.redis.prefix, {
      actor,
      action,
      subject: String(list ?? id ?? ''),
      detail: rest,
    });
  };
}

export function importSummary(r: ImportResult): string {
  const line = `imported ${r.imported}, updated ${r.updated}, rejected ${r.rejected}`;
  return r.suppressed > 0 ? `${line}, suppressed ${r.suppressed}` : line;
}

export async function runImport(
  ctx: Ctx,
  file: string,
  list: string,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<ImportResult> {
  // On a terminal, a live line every second for big files; nothing when piped or scripted.
  const tty = process.stderr.isTTY === true;
  let shownAt = Date.now();
  let shown = false;
  const result = await importSubscribers(ctx.redis.redis, ctx.redis.prefix, file, checkListName(list), {
    rejectsDir: path.join(ctx.config.dataDir, 'rejects'),
    phoneCountry: ctx.config.sms.default_country,
    onEvent: auditHook(ctx),
    suppressionKey: deriveKey(ctx.config.secret, 'suppression'),
    onProgress: (soFar, line) => {
      if (!tty || Date.now() - shownAt < 1000) return;
      shownAt = Date.now();
      shown = true;
      process.stderr.write(`\r  line ${line.toLocaleString('en-GB')}: ${importSummary(soFar)}\x1b[K`);
    },
  });
  if (shown) process.stderr.write('\r\x1b[K');
  ctx.out(importSummary(result));
  if (result.encodingNote) warn(`warning: ${file}: ${result.encodingNote}`);
  if (result.rejectsFile) warn(`warning: ${result.rejected} row(s) rejected; rejects: ${result.rejectsFile}`);
  return result;
}

export async function runForget(ctx: Ctx & { log?: Logger }, email: string): Promise<boolean> {
  const found = await forgetSubscriber(ctx.redis.redis, ctx.redis.prefix, email, { onEvent: auditHook(ctx), suppressionKey: deriveKey(ctx.config.secret, 'suppression') });
  const shown = email.trim().toLowerCase();
  // Every other copy Crier made: stored delivery errors, rejects rows, previews, outbox files, the embedded Redis's AOF.
  await eraseDeliveryErrors(ctx.redis.redis, ctx.redis.prefix, subscriberId(shown));
  const files = await eraseFromFiles(ctx.config, shown);
  const touched = files.removed.length + files.rewritten.length;
  if (touched > 0) ctx.out(`removed from ${touched} file${touched === 1 ? '' : 's'} (${files.rewritten.length} rejects, ${files.removed.length} previews and outbox)`);
  if (!ctx.config.redisUrl) {
    await rewriteAppendOnlyFile(ctx.redis.redis, ctx.log ?? createLogger('warn'));
    ctx.out('rewrote the embedded Redis append-only file: old entries are gone from disk');
  } else {
    ctx.out("REDIS_URL: old copies stay in that Redis's AOF/RDB files until they are rewritten (see README: Erasure)");
  }
  ctx.out(found ? `forgotten ${shown}` : `not found: ${shown} (suppressed so no import can add it)`);
  return found;
}

export function registerSubscriberCommands(program: Command): void {
  const subs = program.command('subscribers').description('the audience: import, export and erase subscribers');

  subs
    .command('import')
    .description('import subscribers from a CSV file (columns: email,name,area,topics; optional phone for SMS)')
    .argument('<file>', 'CSV file with a header row')
    .requiredOption('--list <name>', 'list to add them to')
    .action(async (file: string, opts: { list: string }) => {
      await withContext((ctx) => runImport(ctx, file, opts.list));
    });

  subs
    .command('export')
    .description('write a list as CSV to stdout')
    .requiredOption('--list <name>', 'list to export')
    .action(async (opts: { list: string }) => {
      await withContext((ctx) => exportList(ctx.redis.redis, ctx.redis.prefix, checkListName(opts.list), writeLineAsync));
    });

  subs
    .command('forget')
    .description('erase a subscriber (GDPR); keeps only a hash on the suppression list')
    .argument('<email>', 'the address to erase')
    .action(async (email: string) => {
      await withContext((ctx) => runForget(ctx, email));
    });
}
