import { escapeHtml } from '../html-escape.js';
import { BRAND_COLOUR, logoHref, websiteLabel, type Organisation } from '../organisation.js';

export { escapeHtml };

/**
 * A small accessible page for the public endpoints. With `site`, it carries the
 * organisation's masthead and footer (renderPage); the name links to its website.
 */
export function page(title: string, body: string, site?: { org?: Organisation; publicUrl: string }): string {
  if (site) {
    return renderPage({ title, org: site.org, publicUrl: site.publicUrl, main: `<h1>${escapeHtml(title)}</h1>${body}`, home: site.org?.website });
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

/** CSS shared by the public pages. */
const PAGE_CSS = `body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.6;color:#1b1b1b;background:#fff}
.wrap{max-width:44rem;margin:0 auto;padding:0 1rem}
.masthead{background:${BRAND_COLOUR};color:#fff}
.masthead .wrap{display:flex;align-items:center;gap:.9rem;padding-top:1rem;padding-bottom:1rem}
.masthead img{width:52px;height:52px;display:block}
.masthead a{color:#fff;text-decoration:none;font-weight:700;font-size:1.25rem;line-height:1.3}
.masthead a:hover,.masthead a:focus{text-decoration:underline}
.masthead .section{display:block;font-size:.8rem;font-weight:400;letter-spacing:.08em;text-transform:uppercase;color:#c9d6e8}
main{padding:1.5rem 0 2rem}
a{color:#0b4f9c}a:focus{outline:3px solid #fd0;outline-offset:1px}
h1{font-size:1.9rem;line-height:1.25;margin:.2rem 0 .6rem}
time,.meta{color:#505a5f}
.ends{font-weight:700;letter-spacing:.1em;margin-top:2rem}
.notes{border-top:1px solid #d0d5d9;margin-top:1.5rem;padding-top:.5rem}
ol.releases{list-style:none;padding:0;margin:0}
ol.releases li{border-top:1px solid #d0d5d9;padding:1rem 0}
ol.releases h2{font-size:1.2rem;margin:0 0 .2rem;line-height:1.35}
ol.releases p{margin:.3rem 0 0}
.contact{background:#f3f5f7;border-left:4px solid ${BRAND_COLOUR};padding:.6rem 1rem;margin:1.5rem 0}
footer{border-top:4px solid ${BRAND_COLOUR};background:#f3f5f7;color:#33393d;font-size:.9rem}
footer .wrap{padding-top:1rem;padding-bottom:1.5rem}
footer p{margin:.3rem 0}
button{font-size:1rem;padding:.5rem 1rem}`;

export interface PageOptions {
  title: string;
  org: Organisation | undefined;
  publicUrl: string;
  /** The page's content, inside <main>. */
  main: string;
  /** The small label under the name in the masthead ("Press room"). */
  section?: string;
  /** Where the masthead's name links (default: the press room). */
  home?: string;
  /** Extra <head> elements (feed links). */
  head?: string;
  /** Extra footer paragraphs (feed links). */
  footer?: string;
  /** Shown in the masthead when no organisation is configured. */
  fallbackName?: string;
}

/** A public page: masthead with logo and name, content, footer with the organisation's address and website. */
export function renderPage(o: PageOptions): string {
  const name = o.org?.name ?? o.fallbackName ?? '';
  const logo = logoHref(o.org, o.publicUrl);
  const home = o.home ?? `${o.publicUrl}/press`;
  const img = logo ? `<img src="${escapeHtml(logo)}" alt="">` : '';
  const section = o.section ? `<span class="section">${escapeHtml(o.section)}</span>` : '';
  const masthead = name ? `<header class="masthead"><div class="wrap">${img}<div><a href="${escapeHtml(home)}">${escapeHtml(name)}</a>${section}</div></div></header>` : '';
  const org = o.org;
  const orgLines = org
    ? [
        `<p><strong>${escapeHtml(org.name)}</strong>${org.address.length ? `<br>${org.address.map(escapeHtml).join(', ')}` : ''}</p>`,
        org.website ? `<p><a href="${escapeHtml(org.website)}">${escapeHtml(websiteLabel(org.website))}</a></p>` : '',
      ].join('')
    : '';
  const title = name && o.title !== name ? `${o.title} – ${name}` : o.title;
  return `<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
${o.head ?? ''}<style>${PAGE_CSS}</style>
</head>
<body>
${masthead}
<main id="main"><div class="wrap">
${o.main}
</div></main>
<footer><div class="wrap">${orgLines}${o.footer ?? ''}</div></footer>
</body>
</html>
`;
}
