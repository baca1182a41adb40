import { readFileSync } from 'node:fs';
import { isMap, LineCounter, parseDocument } from 'yaml';
import { checkAudiences } from '../domain/campaign-report.js';
import type { Campaign } from '../domain/campaigns.js';
import { UserError, describeWhere } from '../errors.js';
import { formatLocal } from '../time.js';
import type { CampaignView } from './campaign.js';
import type { CliContext } from './context.js';

/** What `campaign show`, `campaign list` and `campaign create` print, beyond the id. */

export function printShow(ctx: Pick<CliContext, 'out'>, v: CampaignView, zone: string): void {
  ctx.out(`${v.id}  ${v.title}`);
  ctx.out(`  kind:    ${v.kind}${v.essential ? ' (essential)' : ''}`);
  ctx.out(`  status:  ${v.status}`);
  if (v.reason) ctx.out(`  reason:  ${v.reason}`);
  if (v.note) ctx.out(`  note:    ${v.note}`);
  if (v.series) ctx.out(`  series:  ${v.series} (recurring; \`crier campaign cancel ${v.id} --series\` stops it)`);
  ctx.out(`  send at: ${formatLocal(new Date(v.send_at), zone)} ${zone}`);
  ctx.out(`  author:  ${v.author}${v.approved_by ? `, approved by ${v.approved_by}` : ''}${v.released_by ? `, released by ${v.released_by}` : ''}`);
  const local = (iso: string) => `${formatLocal(new Date(iso), zone)} ${zone}`;
  if (v.embargo_until) {
    const waiting = Object.keys(v.waits_until ?? {});
    ctx.out(`  embargo: ${local(v.embargo_until)}${waiting.length ? `: the media list's EMBARGOED email goes at send time; ${waiting.join(', ')} wait until the embargo` : ''}`);
  }
  for (const [ch, n] of Object.entries(v.channels)) {
    const counts = `sent ${n.sent}, failed ${n.failed}, pending ${n.pending}${n.skipped ? `, skipped ${n.skipped}` : ''}`;
    let note = '';
    if (!n.planned && v.status === 'cancelled') note = '  (cancelled before it was sent)';
    else if (!n.planned && n.audience === 0) note = '  (not planned yet: the audience is empty today, or nobody subscribed matches)';
    else if (!n.planned && n.audience !== undefined) note = `  (not planned yet: the audience today; counted again at send time)`;
    else if (!n.planned) note = '  (not planned yet)';
    else if (n.sent + n.failed + n.pending + n.skipped === 0 && v.status !== 'cancelled') note = `  (no recipients: the list is empty or nobody subscribed matches${ch === 'sms' ? ' and gave a mobile number' : ''})`;
    const pub = n.publication;
    if (pub?.published) note += `  (published ${pub.at ? formatLocal(new Date(pub.at), zone) : ''} at ${pub.path ?? '/press'})`;
    else if (pub && !pub.failed && v.status !== 'cancelled') note += `  (publishes to the press room${pub.at ? ` at ${formatLocal(new Date(pub.at), zone)}` : ''})`;
    const publication = pub ? undefined : v.waits_until?.[`${ch} (publication)`];
    const waits = v.waits_until?.[ch]
      ? `  (waits for the embargo: ${local(v.waits_until[ch])})`
      : publication
        ? `  (EMBARGOED email at send time; published at the embargo: ${local(publication)})`
        : '';
    ctx.out(`  ${ch.padEnd(10)} ${counts}${n.paused ? `  paused: ${n.paused}` : ''}${note}${waits}`);
  }
  if (v.failures.length > 0) {
    const total = v.failures.reduce((sum, g) => sum + g.count, 0);
    ctx.out(`  failures: ${total} (\`crier campaign failures ${v.id}\` lists who)`);
    const width = Math.max(...v.failures.map((g) => String(g.count).length));
    for (const g of v.failures) ctx.out(`    ${g.channel.padEnd(10)} ${String(g.count).padStart(width)} × ${g.reason}`);
  }
}

/** One row per campaign under a header, columns aligned to their widest cell. */
export function formatCampaignList(campaigns: Campaign[], zone: string): string[] {
  const rows = campaigns.map((c) => [c.id, c.status, `${formatLocal(c.sendAt, c.timezone)}${c.timezone === zone ? '' : ` ${c.timezone}`}`, c.kind, c.title]);
  const header = ['ID', 'STATUS', `SEND AT (${zone})`, 'KIND', 'TITLE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** The line of `channels.<channel>.list` (or of the channel, when it uses its default list) in the campaign file. */
function listLine(file: string, channel: string): number | undefined {
  try {
    const counter = new LineCounter();
    const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: counter });
    const channelNode = doc.getIn(['channels', channel], true);
    const node = isMap(channelNode) ? (channelNode.items.find((p) => String((p.key as { value?: unknown } | null)?.value) === 'list')?.key ?? channelNode) : channelNode;
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    return range ? counter.linePos(range[0]).line : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A list that does not exist is refused (a campaign to it would end "sent" to
 * nobody); an existing list that would reach nobody today is a warning, since
 * it may be filled before send time.
 */
export async function checkCampaignLists(
  ctx: Pick<CliContext, 'redis'>,
  file: string,
  channels: Record<string, Record<string, unknown>>,
  warn: (line: string) => void = (line) => process.stderr.write(`crier: warning: ${line}\n`),
): Promise<void> {
  const check = await checkAudiences(ctx.redis.redis, ctx.redis.prefix, channels);
  const where = (channel: string) => ({ file, line: listLine(file, channel), field: `channels.${channel}.list` });
  if (check.missing.length > 0) {
    const existing = check.lists.length > 0 ? `the lists that exist: ${check.lists.join(', ')}` : 'no list exists yet';
    throw UserError.all(
      check.missing.map(
        ({ channel, list }) =>
          new UserError(`no list named "${list}" (${existing}); create it with \`crier subscribers import FILE.csv --list ${list}\``, 'CRIER_ERR_INPUT', where(channel)),
      ),
    );
  }
  for (const { channel, list, filtered } of check.empty) {
    const why = filtered ? `nobody subscribed to list "${list}" matches the areas and topics` : `list "${list}" has no subscribed members`;
    warn(`${describeWhere(where(channel))}: ${why} today: the campaign will reach nobody unless that changes before send time`);
  }
}
