import { z } from 'zod';
import type { Config } from '../../src/config.js';
import { PermanentError, TransientError, type ChannelAdapter, type Delivery, type SendContext, type SendResult } from '../adapter.js';
import { safeFileName, writeOutboxJson } from '../dry-run.js';
import { readImage } from '../images.js';
import { imageSchema, issuesOf } from '../twitter/content.js';
import { channelErrorOf, graphClient, type GraphClient } from './graph.js';

/**
 * Facebook Page channel: posts as the Page through the Graph API.
 * Text (and a link) → `POST /{page-id}/feed`. Images → each uploaded to
 * `POST /{page-id}/photos` unpublished with its alt text (`alt_text_custom`),
 * then one feed post with them as `attached_media`. The post id is returned
 * for the collector. Without FACEBOOK_PAGE_ID and FACEBOOK_PAGE_TOKEN it is a
 * dry run writing `<outbox>/<campaignId>-facebook.json`.
 *
 * Facebook has no idempotency key, so the steps are recorded in the
 * delivery's durable progress: a retry reuses photos already uploaded, and a
 * post already made (the worker died before marking it) is not made again.
 * When an attempt died with the post request in flight (posted or not, no one
 * knows), the retry first looks for it among the Page's latest posts (same
 * text, made since that attempt began) and posts only if it is not there.
 */

/** Facebook's limit on a post's text. */
export const FACEBOOK_MAX_CHARACTERS = 63_206;
const MAX_IMAGES = 10;
const MAX_ALT = 1000;

export const contentSchema = z
  .object({
    text: z.string({ error: 'text is required' }).refine((t) => t.trim().length > 0, { message: 'text is empty' }),
    link: z.url({ protocol: /^https?$/, error: 'link must be an http(s) URL' }).optional(),
    images: z.array(imageSchema(MAX_ALT)).max(MAX_IMAGES, `at most ${MAX_IMAGES} images on a Facebook post`).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (typeof c.text === 'string' && c.text.length > FACEBOOK_MAX_CHARACTERS) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: `${c.text.length} characters, Facebook allows ${FACEBOOK_MAX_CHARACTERS}` });
    }
    if (c.link && c.images.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['link'], message: 'a Facebook post shows either a link preview or photos: put the link in text, or drop the images' });
    }
  });

export type FacebookContent = z.infer<typeof contentSchema>;

function parseContent(delivery: Delivery): FacebookContent {
  const problems = issuesOf(contentSchema, delivery.content);
  if (problems.length > 0) throw new PermanentError(`invalid facebook content: ${problems.join('; ')}`);
  return contentSchema.parse(delivery.content);
}

const progressSchema = z.object({
  photos: z.array(z.string()).default([]),
  /** When the feed post was sent: an attempt that dies after this may have posted. */
  postingSince: z.string().optional(),
  postId: z.string().optional(),
});
type Progress = z.infer<typeof progressSchema>;

async function loadProgress(ctx: SendContext): Promise<Progress> {
  const raw = await ctx.progress?.get();
  if (!raw) return { photos: [] };
  try {
    return progressSchema.parse(JSON.parse(raw));
  } catch {
    return { photos: [] };
  }
}

function idOf(body: unknown, what: string): string {
  const id = (body as { id?: unknown } | null)?.id;
  if (typeof id !== 'string' || id === '') throw new TransientError(`Facebook answered the ${what} without an id`);
  return id;
}

/** A post of the Page with this text made since `since` (a little earlier, for clock skew), if any. */
async function findPost(graph: GraphClient, text: string, since: Date, now: Date): Promise<string | undefined> {
  const body = (await graph.get(`/${encodeURIComponent(graph.pageId)}/posts`, { fields: 'id,message,created_time', limit: '25' }, now)) as {
    data?: Array<{ id?: unknown; message?: unknown; created_time?: unknown }>;
  };
  const from = since.getTime() - 5 * 60_000;
  const hit = (body.data ?? []).find(
    (p) => typeof p.id === 'string' && p.message === text && Date.parse(String(p.created_time).replace(/\+0000$/, 'Z')) >= from,
  );
  return typeof hit?.id === 'string' ? hit.id : undefined;
}

async function uploadPhoto(graph: GraphClient, image: FacebookContent['images'][number], delivery: Delivery, now: Date): Promise<string> {
  const { bytes, type, name } = await readImage(image, delivery);
  const form = new FormData();
  form.append('source', new Blob([new Uint8Array(bytes)], { type }), name);
  form.append('published', 'false');
  form.append('alt_text_custom', image.alt);
  return idOf(await graph.post(`/${encodeURIComponent(graph.pageId)}/photos`, form, now), 'photo upload');
}

export function createFacebookAdapter(config: Config, opts: { outboxDir?: string } = {}): ChannelAdapter {
  const graph = graphClient(config);
  const outboxDir = opts.outboxDir ?? config.outboxDir;

  if (!graph) {
    return {
      name: 'facebook',
      dryRun: true,
      async send(delivery, ctx) {
        const content = parseContent(delivery);
        const file = writeOutboxJson(outboxDir, `${safeFileName(delivery.campaignId)}-facebook`, {
          channel: 'facebook',
          campaignId: delivery.campaignId,
          title: delivery.campaignTitle,
          key: delivery.key,
          at: ctx.now().toISOString(),
          post: { message: content.text, link: content.link, images: content.images },
        });
        return { outboxFile: file };
      },
      async verify() {},
      async close() {},
    };
  }

  return {
    name: 'facebook',
    dryRun: false,
    async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
      const content = parseContent(delivery);
      const done = await loadProgress(ctx);
      if (done.postId) {
        ctx.log.info({ id: done.postId }, 'already posted to Facebook by an earlier attempt');
        return { id: done.postId };
      }
      try {
        for (const image of content.images.slice(done.photos.length)) {
          done.photos.push(await uploadPhoto(graph, image, delivery, ctx.now()));
          await ctx.progress?.set(JSON.stringify(done));
        }
        if (done.postingSince) {
          const earlier = await findPost(graph, content.text, new Date(done.postingSince), ctx.now());
          if (earlier) {
            await ctx.progress?.set(JSON.stringify({ ...done, postId: earlier }));
            ctx.log.info({ id: earlier }, 'an earlier attempt had posted to Facebook: not posting again');
            return { id: earlier };
          }
        }
        done.postingSince = ctx.now().toISOString();
        await ctx.progress?.set(JSON.stringify(done));
        const form = new URLSearchParams({ message: content.text });
        if (content.link) form.set('link', content.link);
        done.photos.forEach((id, i) => form.set(`attached_media[${i}]`, JSON.stringify({ media_fbid: id })));
        const postId = idOf(await graph.post(`/${encodeURIComponent(graph.pageId)}/feed`, form, ctx.now()), 'post');
        await ctx.progress?.set(JSON.stringify({ ...done, postId }));
        ctx.log.info({ id: postId }, 'posted to Facebook');
        return { id: postId };
      } catch (err) {
        throw channelErrorOf(err);
      }
    },
    async verify() {
      try {
        await graph.get(`/${encodeURIComponent(graph.pageId)}`, { fields: 'id,name' });
      } catch (err) {
        throw channelErrorOf(err);
      }
    },
    // Global fetch shares undici's pool; there is nothing of ours to release.
    async close() {},
  };
}
