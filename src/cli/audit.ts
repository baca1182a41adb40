import type { Command } from 'commander';
import { DateTime } from 'luxon';
import { readAudit, type AuditEntry } from '../domain/audit.js';
import { UserError } from '../errors.js';
import { withContext, type CliContext } from './context.js';

/** `crier audit [--since WHEN] [--json] [--limit N]`: the audit log, oldest first, in local time. */

export interface AuditCommandOptions {
  since?: string;
  json?: boolean;
  limit?: string;
}

const SINCE_HELP = '"YYYY-MM-DD", "YYYY-MM-DD HH:mm" (local time) or an ISO 8601 instant';

/** Local dates and times are read in `zone`; an ISO instant with an offset keeps its offset. */
export function parseSince(text: string, zone: string): Date {
  const t = text.trim();
  let dt: DateTime;
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) dt = DateTime.fromFormat(t, 'yyyy-MM-dd', { zone });
  else if (/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/.test(t)) dt = DateTime.fromFormat(t, 'yyyy-MM-dd HH:mm', { zone });
  else if (/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(t)) dt = DateTime.fromFormat(t, 'yyyy-MM-dd HH:mm:ss', { zone });
  else if (/^\d{4}-\d{2}-\d{2}T/.test(t)) dt = DateTime.fromISO(t, { zone });
  else dt = DateTime.invalid('unrecognised format');
  if (!dt.isValid) {
    throw new UserError(`expected ${SINCE_HELP}, got "${text}"`, 'CRIER_ERR_INPUT', { field: '--since' });
  }
  return dt.toJSDate();
}

export function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) {
    throw new UserError(`expected a whole number of at least 1, got "${text}"`, 'CRIER_ERR_INPUT', { field: '--limit' });
  }
  return Number(text);
}

/** Bare when safe; quoted otherwise, so a value can never forge a second log line. */
function token(s: string): string {
  const plain = s.length > 0 && [...s].every((c) => c.charCodeAt(0) > 0x20 && c !== '\u007f' && c !== '"' && c !== '\\' && !/\s/.test(c));
  return plain ? s : JSON.stringify(s);
}

export function formatAuditLine(e: AuditEntry, zone: string): string {
  // With its zone (GMT or BST in London), so a line read in another season or place is not an hour out.
  const when = DateTime.fromJSDate(e.at, { zone }).setLocale('en-GB').toFormat('yyyy-MM-dd HH:mm:ss ZZZZ');
  const parts = [when, token(e.actor), token(e.action), token(e.subject)];
  const detail = Object.entries(e.detail)
    .map(([k, v]) => `${token(k)}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  if (detail) parts.push(detail);
  return parts.join('  ');
}

export async function runAudit(ctx: Pick<CliContext, 'config' | 'redis' | 'out'>, opts: AuditCommandOptions): Promise<number> {
  const since = opts.since !== undefined ? parseSince(opts.since, ctx.config.timezone) : undefined;
  const limit = parseLimit(opts.limit);
  const entries = await readAudit(ctx.redis.redis, ctx.redis.prefix, { since, limit });
  if (opts.json) {
    const rows = entries.map((e) => ({ id: e.id, at: e.at.toISOString(), actor: e.actor, action: e.action, subject: e.subject, detail: e.detail }));
    ctx.out(JSON.stringify(rows, null, 2));
  } else {
    for (const e of entries) ctx.out(formatAuditLine(e, ctx.config.timezone));
  }
  return entries.length;
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('print the audit log (who changed which campaign or audience, and when), oldest first')
    .option('--since <when>', `entries at or after ${SINCE_HELP}`)
    .option('--limit <n>', 'at most N entries (default 1000; without --since, the most recent N)')
    .option('--json', 'print a JSON array instead of lines')
    .action(async (opts: AuditCommandOptions) => {
      // Validate before touching Redis so a typo fails fast with exit 1.
      if (opts.since !== undefined) parseSince(opts.since, 'UTC');
      parseLimit(opts.limit);
      await withContext(async (ctx) => {
        await runAudit(ctx, opts);
      });
    });
}
