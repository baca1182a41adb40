import { z } from 'zod';
import type { Config } from '../../src/config.js';
import { ChannelError, PermanentError, RateLimitedError, TransientError, type ChannelAdapter, type Delivery, type SendContext, type SendResult } from '../adapter.js';
import { writeOutboxJson, safeFileName } from '../dry-run.js';
import { readImage } from '../images.js';
import { contentSchema, type TwitterContent } from './content.js';
import { findUrls, splitThread } from './text.js';

import { apiBasePlugin } from './api-base.js';
import type { XClient, XCredentials } from './client.js';

export { contentSchema, validateContent, type TwitterContent } from './content.js';
export { splitThread, weightedLength } from './text.js';

/**
 * X (Twitter) channel: posts through twitter-api-v2 with OAuth 1.0a user
 * context. Without all four credentials it is a dry run and writes the posts
 * it would have made to `<outbox>/<campaignId>-twitter.json`.
 *
 * twitter-api-v2 has no base-URL setting and speaks HTTPS only, so a plugin
 * rewrites every request to TWITTER_API_BASE (default https://api.x.com). To
 * point it at a server with a private certificate (a local fake, a proxy),
 * start the process with NODE_EXTRA_CA_CERTS=<its cert.pem>; tests may pass
 * `ca` instead.
 */

export interface TwitterAdapterOptions {
  outboxDir?: string;
  /** Extra certificate authority to trust for TWITTER_API_BASE (tests). */
  ca?: string | Buffer;
}

/** The posts of one delivery, for the dry-run file and the send. */
export interface PlannedPost {
  text: string;
  images: TwitterContent['images'];
}

export function planPosts(content: TwitterContent): PlannedPost[] {
  const texts = content.thread ? splitThread(content.text) : [content.text];
  return texts.map((text, i) => ({ text, images: i === 0 ? content.images : [] }));
}

/**
 * twitter-api-v2 is loaded and the client made on the first `get()`, once (see ./client.ts); `close`
 * ends the client if one was made. `apiBase` is checked now, so a wrong TWITTER_API_BASE is refused
 * when the adapter or collector is made (at start), not at the first post.
 */
export function lazyXClient(credentials: XCredentials, apiBase: string, ca?: string | Buffer): { get(): Promise<XClient>; close(): void } {
  const plugin = apiBasePlugin(apiBase);
  let made: Promise<XClient> | undefined;
  let closed = false;
  return {
    get() {
      made ??= import('./client.js').then((lib) => {
        const x = lib.createXClient(credentials, plugin, ca);
        if (closed) x.close();
        return x;
      });
      return made;
    },
    close() {
      closed = true;
      void made?.then((x) => x.close());
    },
  };
}

/**
 * Posts made so far for a delivery, kept in this process and in the worker's
 * durable progress store (ctx.progress): a retry after a failure mid-thread
 * resumes instead of re-posting, in this process or another, and a retry after
 * an unanswered post that X answers "duplicate" looks the earlier post up.
 */
interface Progress {
  ids: string[];
  /** "May have been posted": the last attempt got no clear answer (network, 5xx) or never ended (the process died). */
  ambiguous: boolean;
}

const progressSchema = z.object({ ids: z.array(z.string()), ambiguous: z.boolean() });

async function loadProgress(ctx: SendContext): Promise<Progress | undefined> {
  const raw = await ctx.progress?.get();
  if (!raw) return undefined;
  try {
    const parsed = progressSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function isDuplicate(err: ChannelError): boolean {
  return err instanceof PermanentError && /duplicate content/i.test(err.message);
}

/** X rewrites links to t.co in what it returns, so posts are compared with links blanked. */
function comparable(text: string): string {
  const normalised = text.normalize('NFC').trim();
  let out = '';
  let pos = 0;
  for (const span of findUrls(normalised)) {
    out += `${normalised.slice(pos, span.start)}<link>`;
    pos = span.end;
  }
  return out + normalised.slice(pos);
}

export function createTwitterAdapter(config: Config, opts: TwitterAdapterOptions = {}): ChannelAdapter {
  const { appKey, appSecret, accessToken, accessSecret } = config.twitter;
  const outboxDir = opts.outboxDir ?? config.outboxDir;
  const credentialsSet = [appKey, appSecret, accessToken, accessSecret].filter(Boolean).length;

  if (!appKey || !appSecret || !accessToken || !accessSecret) {
    return {
      name: 'twitter',
      dryRun: true,
      async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
        if (credentialsSet > 0) ctx.log.warn('X credentials are incomplete (need TWITTER_APP_KEY, TWITTER_APP_SECRET, TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_SECRET): dry run');
        const content = parseContent(delivery);
        const file = writeOutboxJson(outboxDir, `${safeFileName(delivery.campaignId)}-twitter`, {
          channel: 'twitter',
          campaignId: delivery.campaignId,
          title: delivery.campaignTitle,
          key: delivery.key,
          at: ctx.now().toISOString(),
          posts: planPosts(content),
        });
        return { outboxFile: file };
      },
      async verify() {},
      async close() {},
    };
  }

  const x = lazyXClient({ appKey, appSecret, accessToken, accessSecret }, config.twitter.apiBase, opts.ca);
  const progress = new Map<string, Progress>();
  /** A ChannelError as it is; anything else was thrown by the client, so the library is loaded by then. */
  const mapError = async (err: unknown, now: Date): Promise<ChannelError> => (err instanceof ChannelError ? err : (await x.get()).mapError(err, now));

  async function uploadImage(image: TwitterContent['images'][number], delivery: Delivery): Promise<string> {
    const { bytes, type } = await readImage(image, delivery);
    const { client } = await x.get();
    const mediaId = await client.v2.uploadMedia(bytes, { media_type: type });
    await client.v2.createMediaMetadata(mediaId, { alt_text: { text: image.alt } });
    return mediaId;
  }

  /**
   * The account's post with this text among its last 100 (X's largest page): while a retry waits out its
   * backoff, the other posts of a busy queue go out, and ten were too few to reach back past them.
   */
  async function findRecentPost(text: string): Promise<string | undefined> {
    const { client } = await x.get();
    const me = await client.v2.me();
    const recent = await client.v2.get<{ data?: Array<{ id: string; text: string }> }>(`users/${me.data.id}/tweets`, { max_results: 100 });
    const wanted = comparable(text);
    return recent.data?.find((t) => comparable(t.text) === wanted)?.id;
  }

  async function postOne(post: PlannedPost, replyTo: string | undefined, delivery: Delivery): Promise<string> {
    const mediaIds: string[] = [];
    for (const image of post.images) mediaIds.push(await uploadImage(image, delivery));
    const { client } = await x.get();
    const result = await client.v2.tweet({
      text: post.text,
      ...(mediaIds.length > 0 ? { media: { media_ids: mediaIds as [string] } } : {}),
      ...(replyTo ? { reply: { in_reply_to_tweet_id: replyTo } } : {}),
    });
    return result.data.id;
  }

  return {
    name: 'twitter',
    dryRun: false,
    async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
      const content = parseContent(delivery);
      const posts = planPosts(content);
      const done = progress.get(delivery.key) ?? (await loadProgress(ctx)) ?? { ids: [], ambiguous: false };
      progress.set(delivery.key, done);
      const save = async () => ctx.progress?.set(JSON.stringify(done));
      const forget = async () => {
        progress.delete(delivery.key);
        await ctx.progress?.clear();
      };
      for (let i = done.ids.length; i < posts.length; i++) {
        const mayHaveBeenPosted = done.ambiguous;
        if (mayHaveBeenPosted) {
          // An earlier attempt may have posted this (no answer, or the worker died waiting): look first.
          const id = await findRecentPost(posts[i]!.text).catch(() => undefined);
          if (id) {
            ctx.log.info({ id }, 'X post from an earlier attempt found; not posting again');
            done.ids.push(id);
            done.ambiguous = false;
            await save();
            continue;
          }
        }
        // Recorded before the call: if this process dies before the answer, the retry knows it may have been posted.
        done.ambiguous = true;
        await save();
        try {
          done.ids.push(await postOne(posts[i]!, done.ids.at(-1), delivery));
          done.ambiguous = false;
          if (posts.length > 1) await save();
        } catch (err) {
          const mapped = await mapError(err, ctx.now());
          if (mayHaveBeenPosted && isDuplicate(mapped)) {
            // The earlier attempt went through after all (its answer was lost): find it instead of failing a post that exists.
            const id = await findRecentPost(posts[i]!.text).catch(() => undefined);
            if (id) {
              ctx.log.info({ id }, 'X post from an earlier attempt found; not posting again');
              done.ids.push(id);
              done.ambiguous = false;
              await save();
              continue;
            }
          }
          // No answer or a 5xx: X may have made the post anyway.
          done.ambiguous = mapped instanceof TransientError;
          if (mapped instanceof TransientError || mapped instanceof RateLimitedError) await save();
          else await forget();
          if (done.ids.length > 0) {
            ctx.log.warn({ posted: done.ids, err: mapped.message }, 'X thread interrupted; a retry resumes after the last post');
          }
          throw mapped;
        }
      }
      await forget();
      if (done.ids.length > 1) ctx.log.info({ ids: done.ids }, 'posted X thread');
      return { id: done.ids[0]! };
    },
    async verify() {
      try {
        await (await x.get()).client.v2.me();
      } catch (err) {
        throw await mapError(err, new Date());
      }
    },
    async close() {
      x.close();
    },
  };
}

function parseContent(delivery: Delivery): TwitterContent {
  const parsed = contentSchema.safeParse(delivery.content);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || 'content'}: ${i.message}`);
    throw new PermanentError(`invalid twitter content: ${problems.join('; ')}`);
  }
  return parsed.data;
}
