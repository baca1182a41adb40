import type { CampaignDraft } from '../domain/campaign-file.js';
import { findSeries, listSeries } from '../domain/series.js';
import { nextOccurrence } from '../domain/recurrence.js';
import { cancelSeries, createSeries, seriesOccurrences, type RecurringDeps } from '../recurring.js';
import type { Scheduler } from '../scheduler.js';
import { formatLocal } from '../time.js';
import type { CliContext } from './context.js';

/** The recurring side of `crier campaign create | list | cancel --series`. */

function deps(ctx: CliContext, scheduler: Scheduler): RecurringDeps {
  return { config: ctx.config, redis: ctx.redis.redis, scheduler, log: ctx.log, now: () => new Date() };
}

export async function createRecurring(ctx: CliContext, scheduler: Scheduler, draft: CampaignDraft & { repeat: { cron: string; until?: Date } }): Promise<void> {
  const { series, first } = await createSeries(deps(ctx, scheduler), draft, ctx.config.user);
  const zone = series.timezone;
  const until = series.until ? `, until ${formatLocal(series.until, zone)}` : '';
  ctx.out(`repeating "${series.title}" on "${series.cron}" (${zone}${until})`);
  if (first) ctx.out(`first: ${first.id} ${first.status} for ${formatLocal(first.sendAt, zone)} ${zone}; each run appears in \`crier campaign list\``);
  else ctx.out('no occurrence falls before the end date');
  ctx.out(series.id);
}

export async function cancelRecurring(ctx: CliContext, scheduler: Scheduler, id: string): Promise<void> {
  const { series, cancelled } = await cancelSeries(deps(ctx, scheduler), id, ctx.config.user);
  ctx.out(`stopped recurring "${series.title}" (${series.id}); cancelled ${cancelled.length} upcoming occurrence${cancelled.length === 1 ? '' : 's'}${cancelled.length ? `: ${cancelled.join(', ')}` : ''}`);
}

export async function printSeriesList(ctx: CliContext): Promise<void> {
  const active = (await listSeries(ctx.redis.redis, ctx.redis.prefix)).filter((s) => s.status === 'active');
  if (active.length === 0) return;
  ctx.out('');
  ctx.out('recurring:');
  for (const s of active) {
    const next = nextOccurrence(s.cron, s.timezone, new Date(Math.max(Date.now(), s.startAt.getTime() - 1)));
    const nextText = next && (!s.until || next <= s.until) ? `next ${formatLocal(next, s.timezone)}` : 'no further runs';
    ctx.out(`${s.id}  ${`"${s.cron}"`.padEnd(17)} ${nextText}  ${s.kind.padEnd(10)} ${s.title}`);
  }
}

/** `crier campaign show sID`: a series' pattern, status and occurrences. False when `id` is no series. */
export async function showSeries(ctx: CliContext, id: string, json: boolean): Promise<boolean> {
  const s = await findSeries(ctx.redis.redis, ctx.redis.prefix, id);
  if (!s) return false;
  const occurrences = await seriesOccurrences(ctx.redis.redis, ctx.redis.prefix, id);
  if (json) {
    ctx.out(JSON.stringify({ id: s.id, title: s.title, kind: s.kind, status: s.status, cron: s.cron, timezone: s.timezone, occurrences }));
    return true;
  }
  ctx.out(`${s.id}  ${s.title} (recurring)`);
  ctx.out(`  kind:    ${s.kind}`);
  ctx.out(`  status:  ${s.status}`);
  ctx.out(`  repeat:  "${s.cron}" (${s.timezone}${s.until ? `, until ${formatLocal(s.until, s.timezone)}` : ''})`);
  ctx.out(`  runs:    ${occurrences.length ? occurrences.join(', ') : 'none yet'}`);
  return true;
}
