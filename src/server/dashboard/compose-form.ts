/**
 * The composer's form fields → the JSON shape of a campaign file, which then
 * goes through the same parser as the API and the CLI. Unticked channels and
 * empty optional fields are left out.
 */

export interface ComposeForm {
  title: string;
  kind: string;
  send_at: string;
  essential: string;
  ch_email: string;
  email_list: string;
  email_subject: string;
  email_body: string;
  ch_twitter: string;
  twitter_text: string;
  twitter_thread: string;
  ch_mastodon: string;
  mastodon_text: string;
  ch_press: string;
  press_headline: string;
  press_body: string;
  press_embargo_until: string;
  press_list: string;
  ch_community: string;
  community_list: string;
  community_areas: string;
  community_topics: string;
  community_subject: string;
  community_body: string;
}

export const COMPOSE_CHANNELS = ['email', 'twitter', 'mastodon', 'press', 'community'] as const;

function text(v: unknown): string {
  return typeof v === 'string' ? v.replace(/\r\n/g, '\n') : '';
}

function optional(out: Record<string, unknown>, key: string, v: unknown): void {
  const t = text(v).trim();
  if (t) out[key] = t;
}

function commaList(v: unknown): string[] | undefined {
  const items = text(v)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

export function formToCampaign(f: Partial<ComposeForm>): { title: string; kind: string; send_at: string; essential: boolean; channels: Record<string, Record<string, unknown>> } {
  const channels: Record<string, Record<string, unknown>> = {};
  const on = (name: string) => f[`ch_${name}` as keyof ComposeForm] === 'on';
  if (on('email')) {
    channels.email = { list: text(f.email_list).trim(), subject: text(f.email_subject), body: text(f.email_body) };
  }
  if (on('twitter')) {
    channels.twitter = { text: text(f.twitter_text), ...(f.twitter_thread === 'on' ? { thread: true } : {}) };
  }
  if (on('mastodon')) channels.mastodon = { text: text(f.mastodon_text) };
  if (on('press')) {
    const press: Record<string, unknown> = { headline: text(f.press_headline), body: text(f.press_body) };
    optional(press, 'list', f.press_list);
    const embargo = text(f.press_embargo_until).trim().replace('T', ' ');
    if (embargo) press.embargo_until = embargo;
    channels.press = press;
  }
  if (on('community')) {
    const community: Record<string, unknown> = { subject: text(f.community_subject), body: text(f.community_body) };
    optional(community, 'list', f.community_list);
    const areas = commaList(f.community_areas);
    const topics = commaList(f.community_topics);
    if (areas) community.areas = areas;
    if (topics) community.topics = topics;
    channels.community = community;
  }
  return { title: text(f.title), kind: text(f.kind), send_at: text(f.send_at).trim().replace('T', ' '), essential: f.essential === 'on', channels };
}
