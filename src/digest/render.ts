import { DateTime } from 'luxon';
import { escapeHtml } from '../../channels/email/markdown.js';
import { trendPng } from './chart.js';
import { changeOf, formatFigure, formatValue, measureLabel, NO_DATA, periodLabel, periodWord, sourceLine, trendText } from './format.js';
import type { CampaignRow, Digest, MeasureRow, ReleaseRow, TargetStatus } from './model.js';

/**
 * The digest as an email: HTML in nested tables with inline styles (what
 * Outlook's Word engine renders), one column that reads on a phone, trend
 * pictures as inline PNGs referenced by cid: (multipart/related), and a plain
 * text part with every number the HTML has. Nothing personal: the same
 * message goes to every recipient.
 */

export interface DigestImage {
  cid: string;
  filename: string;
  content: Buffer;
}

export interface RenderedDigest {
  subject: string;
  html: string;
  text: string;
  images: DigestImage[];
}

const COLOURS = { good: '#00703c', bad: '#d4351c', neutral: '#505a5f', text: '#0b0c0c', muted: '#505a5f', rule: '#d8d8d8', band: '#f3f2f1', link: '#1d70b8' };
const STATUS: Record<TargetStatus, { bg: string; fg: string }> = {
  'on track': { bg: '#cce2d8', fg: '#005a30' },
  'at risk': { bg: '#fff7bf', fg: '#594d00' },
  'off track': { bg: '#f6d7d2', fg: '#942514' },
};
const FONT = 'font-family:Arial,Helvetica,sans-serif;';

export function weekTitle(d: Digest): string {
  const s = DateTime.fromJSDate(d.week.start, { zone: d.zone }).setLocale('en-GB');
  const e = DateTime.fromJSDate(new Date(d.week.end.getTime() - 1), { zone: d.zone }).setLocale('en-GB');
  return `Week ${s.weekNumber}: ${s.toFormat('EEE d LLLL')} – ${e.toFormat('EEE d LLLL yyyy')}`;
}

const cidFor = (row: MeasureRow) => `trend-${row.measure.name}@crier`;

function badge(status: TargetStatus): string {
  const c = STATUS[status];
  return `<span style="background:${c.bg};color:${c.fg};padding:1px 6px;font-weight:bold;white-space:nowrap;">${status}</span>`;
}

function measureHtml(row: MeasureRow, zone: string, hasImage: boolean): string {
  const m = row.measure;
  const change = changeOf(row);
  const now = formatFigure(row.current, m.unit);
  const title = row.current ? sourceLine(row.current, zone) : `nothing was collected or recorded for ${periodWord(row, 'current')}`;
  const valueStyle = row.current ? `font-size:24px;font-weight:bold;color:${COLOURS.text};` : `font-size:18px;font-style:italic;color:${COLOURS.muted};`;
  const changeHtml = change.arrow ? ` <span style="font-size:14px;font-weight:bold;color:${COLOURS[change.tone]};white-space:nowrap;">${change.arrow} ${escapeHtml(change.text)}</span>` : '';
  const parts = [`${escapeHtml(periodWord(row, 'previous'))}: ${escapeHtml(formatFigure(row.last, m.unit))}`];
  if (m.target !== undefined) parts.push(`target ${escapeHtml(formatValue(m.target, m.unit))}${row.status ? ` ${badge(row.status)}` : ''}`);
  const picture = hasImage
    ? `<img src="cid:${escapeHtml(cidFor(row))}" width="120" height="32" alt="${escapeHtml(`8-period trend: ${trendText(row)}`)}" style="display:block;border:0;width:120px;height:32px;">`
    : `<span style="font-size:12px;color:${COLOURS.muted};">${NO_DATA}</span>`;
  const source = row.current ? `<div style="font-size:12px;color:${COLOURS.muted};">${escapeHtml(sourceLine(row.current, zone))}</div>` : '';
  const period = row.period.kind === 'week' ? '' : ` <span style="font-weight:normal;color:${COLOURS.muted};">(${escapeHtml(periodLabel(row.period))})</span>`;
  return `<tr><td style="padding:12px 16px;border-bottom:1px solid ${COLOURS.rule};">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>
<td valign="top" style="${FONT}font-size:14px;line-height:1.4;color:${COLOURS.text};">
<div style="font-weight:bold;" title="${escapeHtml(m.description)}">${escapeHtml(measureLabel(m))}${period}</div>
<div><span style="${valueStyle}" title="${escapeHtml(title)}">${escapeHtml(now)}</span>${changeHtml}</div>
<div style="color:${COLOURS.muted};">${parts.join(' &middot; ')}</div>
${source}</td>
<td valign="middle" align="right" width="124" style="width:124px;padding-left:8px;">${picture}</td>
</tr></table>
</td></tr>`;
}

function channelsText(c: CampaignRow): string {
  return Object.entries(c.channels)
    .map(([ch, n]) => `${ch} ${formatValue(n.sent, 'count')} sent${n.failed ? `, ${formatValue(n.failed, 'count')} failed` : ''}${n.pending ? `, ${formatValue(n.pending, 'count')} pending` : ''}`)
    .join('; ');
}

function coverageText(r: ReleaseRow): string {
  const n = r.mentions.length;
  if (n === 0) return 'no coverage recorded';
  const tones = new Map<string, number>();
  for (const m of r.mentions) if (m.tone) tones.set(m.tone, (tones.get(m.tone) ?? 0) + 1);
  const byTone = [...tones].map(([t, k]) => `${k} ${t.replace('_', ' ')}`).join(', ');
  return `${formatValue(n, 'count')} media mention${n === 1 ? '' : 's'}${byTone ? ` (${byTone})` : ''}`;
}

const MENTIONS_SHOWN = 3;

function section(title: string): string {
  return `<tr><td style="${FONT}background:${COLOURS.band};padding:10px 16px;font-size:17px;font-weight:bold;color:${COLOURS.text};border-top:3px solid ${COLOURS.link};">${escapeHtml(title)}</td></tr>`;
}

function listRow(html: string): string {
  return `<tr><td style="${FONT}padding:10px 16px;border-bottom:1px solid ${COLOURS.rule};font-size:14px;line-height:1.4;color:${COLOURS.text};">${html}</td></tr>`;
}

function summary(d: Digest): string {
  const rows = d.headings.flatMap((h) => h.rows);
  const n = (s: TargetStatus) => rows.filter((r) => r.status === s).length;
  const none = rows.filter((r) => !r.current).length;
  return `${n('on track')} on track, ${n('at risk')} at risk, ${n('off track')} off track; ${none} of ${rows.length} measures with no data`;
}

export function renderDigest(d: Digest, opts: { subject: string; organisation?: string }): RenderedDigest {
  const images: DigestImage[] = [];
  const body: string[] = [];
  const text: string[] = [`${opts.subject}`, weekTitle(d), `(${d.zone})`, '', summary(d), ''];
  for (const { heading, rows } of d.headings) {
    body.push(section(heading));
    text.push(heading.toUpperCase());
    // Measures with nothing in any of the 8 periods are named on one line, not given a card each.
    const quiet = rows.filter((r) => r.trend.every((v) => v === undefined));
    for (const row of rows.filter((r) => !quiet.includes(r))) {
      const colour = row.status ? STATUS[row.status].fg : COLOURS.link;
      const png = trendPng(row.trend, { ...(row.measure.target !== undefined ? { target: row.measure.target } : {}), colour });
      if (png) images.push({ cid: cidFor(row), filename: `trend-${row.measure.name}.png`, content: png });
      body.push(measureHtml(row, d.zone, png !== undefined));
      const m = row.measure;
      const change = changeOf(row);
      const period = row.period.kind === 'week' ? '' : ` (${periodLabel(row.period)})`;
      const target = m.target !== undefined ? `; target ${formatValue(m.target, m.unit)}${row.status ? `: ${row.status}` : ''}` : '';
      text.push(`- ${measureLabel(m)}${period}: ${formatFigure(row.current, m.unit)} (${periodWord(row, 'previous')}: ${formatFigure(row.last, m.unit)}${change.arrow ? `, ${change.arrow} ${change.text}` : ''})${target}`);
      text.push(`    trend, oldest first: ${trendText(row)}`);
      if (row.current) text.push(`    ${sourceLine(row.current, d.zone)}`);
    }
    if (quiet.length > 0) {
      const names = quiet.map((r) => measureLabel(r.measure));
      body.push(listRow(`<span style="color:${COLOURS.muted};"><i>${NO_DATA}</i> in the last 8 periods: ${escapeHtml(names.join(', '))}</span>`));
      for (const n of names) text.push(`- ${n}: ${NO_DATA} (none in the last 8 periods)`);
    }
    text.push('');
  }
  body.push(section("This week's campaigns"));
  text.push("THIS WEEK'S CAMPAIGNS");
  if (d.campaigns.length === 0) {
    body.push(listRow(`<span style="color:${COLOURS.muted};">No campaigns were sent this week.</span>`));
    text.push('No campaigns were sent this week.');
  }
  for (const c of d.campaigns) {
    const when = DateTime.fromJSDate(c.sendAt, { zone: d.zone }).setLocale('en-GB').toFormat('EEE d LLL HH:mm');
    body.push(listRow(`<b>${escapeHtml(c.title)}</b> <span style="color:${COLOURS.muted};">${escapeHtml(`${c.kind}, ${when}, ${c.status.replace('_', ' ')}`)}</span><br>${escapeHtml(channelsText(c))}`));
    text.push(`- ${c.title} (${c.kind}, ${when}, ${c.status.replace('_', ' ')}): ${channelsText(c)}`);
  }
  text.push('');
  body.push(section("This week's press releases and their coverage"));
  text.push("THIS WEEK'S PRESS RELEASES AND THEIR COVERAGE");
  if (d.releases.length === 0) {
    body.push(listRow(`<span style="color:${COLOURS.muted};">No press releases were published this week.</span>`));
    text.push('No press releases were published this week.');
  }
  for (const r of d.releases) {
    const when = DateTime.fromJSDate(r.publishedAt, { zone: d.zone }).setLocale('en-GB').toFormat('EEE d LLL');
    const shown = r.mentions.slice(-MENTIONS_SHOWN).reverse();
    const more = r.mentions.length - shown.length;
    const items = shown.map((m) => (/^https?:\/\//.test(m.link) ? `<a href="${escapeHtml(m.link)}" style="color:${COLOURS.link};">${escapeHtml(m.title)}</a>` : escapeHtml(m.title)));
    const latest = r.mentions.reduce((t, m) => Math.max(t, m.collectedAt.getTime()), 0);
    const source = latest ? ` <span style="font-size:12px;color:${COLOURS.muted};">(source: media, collected ${escapeHtml(DateTime.fromMillis(latest, { zone: d.zone }).setLocale('en-GB').toFormat('d LLL HH:mm'))})</span>` : '';
    const list = items.length ? `<div style="font-size:13px;padding-top:4px;">${items.join('<br>')}${more > 0 ? `<br><span style="color:${COLOURS.muted};">and ${more} more</span>` : ''}</div>` : '';
    const cov = r.mentions.length ? `${escapeHtml(coverageText(r))}${source}${list}` : `<span style="color:${COLOURS.muted};">${coverageText(r)}</span>`;
    body.push(listRow(`<a href="${escapeHtml(r.url)}" style="color:${COLOURS.link};font-weight:bold;">${escapeHtml(r.headline)}</a> <span style="color:${COLOURS.muted};">${escapeHtml(when)}</span><br>${cov}`));
    text.push(`- ${r.headline} (${when}): ${coverageText(r)} ${r.url}`);
    for (const m of shown) text.push(`    ${m.title}${m.link ? ` ${m.link}` : ''}`);
    if (more > 0) text.push(`    and ${more} more`);
  }
  // The pictures' numbers as text too, for readers whose mail client blocks images.
  const charted = d.headings.flatMap((h) => h.rows).filter((r) => r.trend.some((v) => v !== undefined));
  if (charted.length > 0) {
    body.push(section('Trend figures, oldest first'));
    body.push(listRow(`<div style="font-size:12px;line-height:1.5;color:${COLOURS.muted};">${charted.map((r) => `<b>${escapeHtml(measureLabel(r.measure))}</b>: ${escapeHtml(trendText(r).split(', ').join(' · '))}`).join('<br>')}</div>`));
  }
  const note = `"${NO_DATA}" means nothing was collected or recorded for that period (it is never counted as 0). Changes compare with the period before; target status: on track meets the target, at risk is within 10% of it, off track is further. Trend pictures show 8 periods, oldest on the left; a gap is no data, the dashed line is the target.`;
  text.push('', note, '', `Generated by Crier ${DateTime.fromJSDate(d.generatedAt, { zone: d.zone }).setLocale('en-GB').toFormat('d LLL yyyy HH:mm')} (${d.zone}).`);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting"><title>${escapeHtml(opts.subject)}</title></head>
<body style="margin:0;padding:0;background:${COLOURS.band};">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:${COLOURS.band};"><tr><td align="center" style="padding:16px 8px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="max-width:600px;width:100%;background:#ffffff;${FONT}color:${COLOURS.text};">
<tr><td style="${FONT}padding:20px 16px 8px 16px;">
<div style="font-size:13px;color:${COLOURS.muted};">${escapeHtml(opts.organisation ?? 'Crier')}</div>
<div style="font-size:22px;font-weight:bold;line-height:1.25;">Measures of success</div>
<div style="font-size:15px;">${escapeHtml(weekTitle(d))} <span style="color:${COLOURS.muted};">(${escapeHtml(d.zone)})</span></div>
<div style="font-size:14px;color:${COLOURS.muted};padding-top:6px;">${escapeHtml(summary(d))}</div>
</td></tr>
${body.join('\n')}
<tr><td style="${FONT}padding:16px;font-size:12px;line-height:1.4;color:${COLOURS.muted};">${escapeHtml(note)}<br><br>Generated by Crier ${escapeHtml(DateTime.fromJSDate(d.generatedAt, { zone: d.zone }).setLocale('en-GB').toFormat('d LLL yyyy HH:mm'))}.</td></tr>
</table>
</td></tr></table>
</body></html>
`;
  return { subject: opts.subject, html, text: `${text.join('\n')}\n`, images };
}

/** The same HTML with each cid: picture inlined as a data: URI, for a preview file a browser can open. */
export function previewHtml(r: RenderedDigest): string {
  let html = r.html;
  for (const img of r.images) html = html.split(`cid:${escapeHtml(img.cid)}`).join(`data:image/png;base64,${img.content.toString('base64')}`);
  return html;
}
