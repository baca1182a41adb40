/**
 * Keeping secrets that hide in URLs out of logs, stored errors and output:
 * unsubscribe tokens in request paths, and webhook URLs (Slack and Teams put
 * their secret in the path, some receivers in the query).
 */

/** A request URL with every unsubscribe token masked: `/u/<token>` → `/u/…`. */
export function maskRequestUrl(url: string): string {
  return url.replace(/\/u\/[^/?#]*/g, '/u/…');
}

/** A URL as its origin only (`https://hooks.slack.com/…`): safe for logs, errors and `campaign show`. */
export function urlOrigin(url: string): string {
  try {
    const u = new URL(url);
    const rest = u.pathname !== '/' || u.search || u.hash ? '/…' : '';
    return `${u.protocol}//${u.host}${rest}`;
  } catch {
    return '(a URL that cannot be parsed)';
  }
}
