import { escapeHtml } from './server/html.js';
import { BRAND_COLOUR, logoHref, websiteLabel, type Organisation, type PressContact } from './organisation.js';

/**
 * The organisation's face on every email Crier sends: a masthead (logo and
 * name) and a footer (name, postal address, website), in the email idiom
 * (tables, inline styles). Pages get the same from renderPage in
 * src/server/html.ts. Nothing configured: no masthead, no address.
 */


/** "Press office · press@… · 01926 …" (in Markdown too: GFM links the address by itself). */
export function contactLine(c: PressContact | undefined): string {
  return [c?.name, c?.email, c?.phone].filter(Boolean).join(' · ');
}

/** The top row of an email: the logo (when configured) beside the organisation's name, and what the message is. */
export function emailMasthead(org: Organisation | undefined, publicUrl: string, label?: string): string {
  if (!org) return '';
  const logo = logoHref(org, publicUrl);
  const img = logo
    ? `<td width="56" style="padding-right:14px;vertical-align:middle;"><img src="${escapeHtml(logo)}" alt="" width="48" height="48" style="display:block;border:0;width:48px;height:48px;"></td>`
    : '';
  const kind = label ? `<div style="font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:#c9d6e8;padding-top:2px;">${escapeHtml(label)}</div>` : '';
  return `<tr><td style="background:${BRAND_COLOUR};padding:18px 24px;">
<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>${img}<td style="vertical-align:middle;font-family:Arial,Helvetica,sans-serif;color:#ffffff;">
<div style="font-size:19px;font-weight:bold;line-height:1.3;">${escapeHtml(org.name)}</div>${kind}
</td></tr></table>
</td></tr>
`;
}

/** The organisation's part of an email footer: name, address, website. */
export function emailOrgFooter(org: Organisation | undefined): string {
  if (!org) return '';
  const site = org.website ? `<br><a href="${escapeHtml(org.website)}" style="color:#444444;">${escapeHtml(websiteLabel(org.website))}</a>` : '';
  const address = org.address.length ? `<br>${org.address.map(escapeHtml).join(', ')}` : '';
  return `<p style="margin:0 0 10px 0;"><strong style="color:#333333;">${escapeHtml(org.name)}</strong>${address}${site}</p>\n`;
}

/** The organisation's part of a plain-text footer. */
export function textOrgFooter(org: Organisation | undefined): string {
  if (!org) return '';
  return [org.name, org.address.join(', '), org.website].filter(Boolean).join('\n') + '\n\n';
}

