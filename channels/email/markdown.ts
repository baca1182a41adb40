import { Marked } from 'marked';
import { escapeHtml } from '../../src/html-escape.js';

/**
 * Markdown → the two parts of an email. The campaign author is trusted (raw
 * HTML in their Markdown passes through, as marked does); the recipient's name
 * is not: it is substituted only after rendering, HTML-escaped in the HTML part.
 */

export const NAME_FALLBACK = 'subscriber';

const NAME_TAG = /\{\{\s*name\s*\}\}/g;
// Letters and digits only, so Markdown leaves it untouched wherever it sits.
const SENTINEL = 'CRIERNAMESLOT9F3A1C';
const SENTINEL_RE = new RegExp(SENTINEL, 'g');

const marked = new Marked({ gfm: true, breaks: false });

export { escapeHtml };

/** CR, LF and other control characters would let a value start a new header line. */
export function stripControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\r\n\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
}

export function displayName(name: string | undefined): string {
  const clean = stripControl(name ?? '');
  return clean || NAME_FALLBACK;
}

/** Plain text for headers (subject): `{{name}}` replaced, no line breaks. */
export function personaliseText(template: string, name: string | undefined): string {
  return stripControl(template.replace(NAME_TAG, () => displayName(name)));
}

export function markdownToHtml(markdown: string, name: string | undefined): string {
  const html = marked.parse(markdown.replace(NAME_TAG, SENTINEL), { async: false });
  const safeName = escapeHtml(displayName(name));
  return html.replace(SENTINEL_RE, () => safeName);
}

/** The Markdown source lightly cleaned: readable as plain text in any client. */
export function markdownToText(markdown: string, name: string | undefined): string {
  const text = markdown
    .replace(NAME_TAG, SENTINEL)
    .replace(/\r\n?/g, '\n')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g, '$1 ($2)')
    .replace(/^#{1,6}\s+/gm, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/`([^`\n]+)`/g, '$1')
    // HTML tags only: a tag name ends at a space, "/" or ">", so autolinks such as <press@example.org> and <https://…> stay.
    .replace(/<\/?[A-Za-z][A-Za-z0-9-]*(?:\s[^>]*)?\/?>/g, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  const plainName = displayName(name);
  return text.replace(SENTINEL_RE, () => plainName);
}
