import type { ITwitterApiClientPlugin } from 'twitter-api-v2';

/** Sends every request to `apiBase` instead of api.x.com / upload.x.com, keeping the path. */
export function apiBasePlugin(apiBase: string): ITwitterApiClientPlugin {
  const base = new URL(apiBase);
  if (base.protocol !== 'https:') {
    throw new Error(`TWITTER_API_BASE must be an https:// URL (twitter-api-v2 speaks HTTPS only), got ${apiBase}`);
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  return {
    onBeforeRequestConfig({ params }) {
      const target = new URL(params.url);
      target.protocol = base.protocol;
      target.host = base.host;
      target.pathname = `${prefix}${target.pathname}`;
      params.url = target.toString();
    },
  };
}
