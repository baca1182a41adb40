import iconv from 'iconv-lite';

/**
 * A news feed's bytes as text: rss-parser assumes UTF-8, but feeds come in
 * whatever encoding the server or the XML declaration names (ISO-8859-1,
 * Windows-1252 …). Shared by the website feed (newsletter run) and the media
 * collector.
 */

/** The charset from Content-Type, else the XML declaration, else UTF-8 (with its BOM dropped). */
export function decodeFeed(bytes: Buffer, contentType: string | null): string {
  const fromHeader = /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType ?? '')?.[1];
  const head = bytes.subarray(0, 200).toString('latin1');
  const fromXml = /^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)["']/i.exec(head)?.[1];
  const charset = (fromHeader ?? fromXml ?? 'utf-8').toLowerCase();
  const text = iconv.encodingExists(charset) ? iconv.decode(bytes, charset) : bytes.toString('utf8');
  return text.replace(/^\uFEFF/, '');
}
