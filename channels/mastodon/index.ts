import { z } from 'zod';
import type { Config } from '../../src/config.js';
import {
  NeedsReauthError,
  PermanentError,
  RateLimitedError,
  TransientError,
  type ChannelAdapter,
  type ChannelError,
  type Delivery,
  type SendContext,
  type SendResult,
} from '../adapter.js';
import { safeFileName, writeOutboxJson } from '../dry-run.js';
import { readImage } from '../images.js';
import { imageSchema, issuesOf } from '../twitter/content.js';
import { findUrls } from '../twitter/text.js';
import { parseRetryAfter } from '../retry-after.js';

/**
 * Mastodon channel: POST {MASTODON_URL}/api/v1/statuses with a Bearer token
 * and `Idempotency-Key: <delivery key>`, so a retry after an ambiguous failure
 * (posted, but the answer was lost) returns the same status instead of posting
 * twice. Images go up first through POST /api/v2/media with their
 * description (alt text). Without MASTODON_URL and MASTODON_TOKEN it is a dry
 * run writing `<outbox>/<campaignId>-mastodon.json`.
 */

/** Mastodon's default; instances can raise it (the server answers 422 if ours is lower). */
export const MASTODON_MAX_CHARACTERS = 500;
export const MASTODON_URL_LENGTH = 23;
const MAX_IMAGES = 4;
const MAX_ALT = 1500;
const TIMEOUT_MS = 30_000;
const PROCESSING_POLLS = 20;
const PROCESSING_POLL_MS = 500;

const MAY_HAVE_BEEN_POSTED = 'may have been posted';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'", nbsp: ' ' };
const plain = (text: string): string => text.normalize('NFC').replace(/\s+/g, ' ').trim();
/** A status's HTML content as the text that was posted (paragraphs and line breaks as spaces). */
function htmlToPlain(html: string): string {
  return plain(html.replace(/<br\s*\/?>|<\/p>\s*<p>/gi, ' ').replace(/<[^>]*>/g, '').replace(/&(#?\w+);/g, (m, name: string) => ENTITIES[name] ?? m));
}

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });

/**
 * Length as Mastodon counts it: graphemes, every http(s) link as 23, a remote
 * mention "@name@server" as "@name"; text and content warning together.
 */
export function mastodonLength(text: string, spoilerText = ''): number {
  let countable = '';
  let pos = 0;
  for (const span of findUrls(text).filter((s) => /^https?:\/\//i.test(s.url))) {
    countable += text.slice(pos, span.start) + 'x'.repeat(MASTODON_URL_LENGTH);
    pos = span.end;
  }
  countable = (countable + text.slice(pos)).replace(/(^|[^\p{L}\p{N}_/])@([\p{L}\p{N}_]+)@[\p{L}\p{N}.-]+[\p{L}\p{N}]/gu, '$1@$2');
  return [...segmenter.segment(countable + spoilerText)].length;
}

/** A campaign's `mastodon:` part. */
export const contentSchema = z
  .object({
    text: z.string({ error: 'text is required' }).refine((t) => t.trim().length > 0, { message: 'text is empty' }),
    visibility: z.enum(['public', 'unlisted', 'private'], { error: 'visibility must be public, unlisted or private' }).default('public'),
    images: z.array(imageSchema(MAX_ALT)).max(MAX_IMAGES, `Mastodon allows at most ${MAX_IMAGES} images on a post`).default([]),
    spoiler_text: z.string().optional(),
  })
  .strict()
  .superRefine(
    (content, ctx) => {
      const length = mastodonLength(content.text, typeof content.spoiler_text === 'string' ? content.spoiler_text : '');
      if (length > MASTODON_MAX_CHARACTERS) {
        ctx.addIssue({
          code: 'custom',
          path: ['text'],
          message: `${length} characters, Mastodon allows ${MASTODON_MAX_CHARACTERS} (text and spoiler_text together; links count 23)`,
        });
      }
    },
    { when: (payload) => typeof (payload.value as { text?: unknown } | undefined)?.text === 'string' },
  );

export type MastodonContent = z.infer<typeof contentSchema>;

/** Problems as "field: message" lines, empty when valid. */
export function validateContent(content: unknown): string[] {
  return issuesOf(contentSchema, content);
}

function parseContent(delivery: Delivery): MastodonContent {
  const problems = validateContent(delivery.content);
  if (problems.length > 0) throw new PermanentError(`invalid mastodon content: ${problems.join('; ')}`);
  return contentSchema.parse(delivery.content);
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    if (typeof body.error === 'string') return typeof body.error_description === 'string' ? `${body.error}: ${body.error_description}` : body.error;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 200) || res.statusText;
}

/** Turns a Mastodon HTTP answer into the error class that decides retry / pause / fail. */
export async function mapMastodonError(res: Response, now: Date): Promise<ChannelError> {
  const detail = await errorText(res);
  if (res.status === 429) {
    const reset = Date.parse(res.headers.get('x-ratelimit-reset') ?? '');
    const resetAt = Number.isFinite(reset) ? new Date(reset) : parseRetryAfter(res.headers.get('retry-after'), now, 5 * 60_000);
    return new RateLimitedError(`Mastodon rate limit: ${detail}`, resetAt);
  }
  if (res.status === 401 || res.status === 403) return new NeedsReauthError(`Mastodon rejected the token (${res.status}: ${detail})`);
  if (res.status >= 500) return new TransientError(`Mastodon error ${res.status}: ${detail}`);
  return new PermanentError(`Mastodon refused the post (${res.status}: ${detail})`);
}

export function createMastodonAdapter(config: Config, opts: { outboxDir?: string } = {}): ChannelAdapter {
  const { url, token } = config.mastodon;
  const outboxDir = opts.outboxDir ?? config.outboxDir;

  if (!url || !token) {
    return {
      name: 'mastodon',
      dryRun: true,
      async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
        const content = parseContent(delivery);
        const file = writeOutboxJson(outboxDir, `${safeFileName(delivery.campaignId)}-mastodon`, {
          channel: 'mastodon',
          campaignId: delivery.campaignId,
          title: delivery.campaignTitle,
          key: delivery.key,
          at: ctx.now().toISOString(),
          status: { status: content.text, visibility: content.visibility, spoiler_text: content.spoiler_text, images: content.images },
        });
        return { outboxFile: file };
      },
      async verify() {},
      async close() {},
    };
  }

  async function call(
    method: string,
    apiPath: string,
    now: Date,
    init: { body?: BodyInit; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${url}${apiPath}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'user-agent': 'Crier', ...init.headers },
        body: init.body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      throw new TransientError(`cannot reach Mastodon at ${url}: ${cause}`);
    }
    if (!res.ok) throw await mapMastodonError(res, now);
    try {
      return { status: res.status, body: await res.json() };
    } catch {
      throw new TransientError(`Mastodon answered ${res.status} with a body that is not JSON`);
    }
  }

  async function uploadImage(image: MastodonContent['images'][number], delivery: Delivery, now: Date): Promise<string> {
    const { bytes, type, name } = await readImage(image, delivery);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)], { type }), name);
    form.append('description', image.alt);
    const upload = await call('POST', '/api/v2/media', now, { body: form });
    const id = (upload.body as { id?: unknown }).id;
    if (typeof id !== 'string') throw new TransientError('Mastodon media upload answered without an id');
    // 202: still processing, and a status cannot attach it until GET /api/v1/media/:id answers 200 (206 meanwhile).
    for (let tries = 0, status = upload.status; status === 202 || status === 206; tries++) {
      if (tries >= PROCESSING_POLLS) throw new TransientError(`Mastodon is still processing image ${image.file}`);
      await new Promise((resolve) => setTimeout(resolve, PROCESSING_POLL_MS));
      status = (await call('GET', `/api/v1/media/${encodeURIComponent(id)}`, now)).status;
    }
    return id;
  }

  /** The account's status with this text among its last 40 (the most Mastodon gives in one page; it answers content as HTML). */
  async function findRecentStatus(text: string, now: Date): Promise<string | undefined> {
    const me = (await call('GET', '/api/v1/accounts/verify_credentials', now)).body as { id?: unknown };
    if (typeof me.id !== 'string') return undefined;
    const recent = (await call('GET', `/api/v1/accounts/${encodeURIComponent(me.id)}/statuses?limit=40`, now)).body;
    const wanted = plain(text);
    return Array.isArray(recent) ? (recent as Array<{ id?: unknown; content?: unknown }>).find((st) => typeof st.content === 'string' && htmlToPlain(st.content) === wanted && typeof st.id === 'string')?.id as string | undefined : undefined;
  }

  return {
    name: 'mastodon',
    dryRun: false,
    async send(delivery: Delivery, ctx: SendContext): Promise<SendResult> {
      const content = parseContent(delivery);
      if ((await ctx.progress?.get()) === MAY_HAVE_BEEN_POSTED) {
        // An earlier attempt never learned its outcome (the Idempotency-Key covers only an hour): look first.
        const id = await findRecentStatus(content.text, ctx.now()).catch(() => undefined);
        if (id) {
          ctx.log.info({ id }, 'Mastodon status from an earlier attempt found; not posting again');
          await ctx.progress?.clear();
          return { id };
        }
      }
      const mediaIds: string[] = [];
      for (const image of content.images) mediaIds.push(await uploadImage(image, delivery, ctx.now()));
      // Recorded before the call: if this process dies before the answer, the retry knows it may have been posted.
      await ctx.progress?.set(MAY_HAVE_BEEN_POSTED);
      const posted = await call('POST', '/api/v1/statuses', ctx.now(), {
        headers: { 'content-type': 'application/json', 'idempotency-key': delivery.key },
        body: JSON.stringify({
          status: content.text,
          visibility: content.visibility,
          ...(mediaIds.length > 0 ? { media_ids: mediaIds } : {}),
          ...(content.spoiler_text ? { spoiler_text: content.spoiler_text } : {}),
        }),
      }).catch(async (err: unknown) => {
        // Only an unclear outcome (no answer, 5xx) may have posted; a refusal did not.
        if (!(err instanceof TransientError)) await ctx.progress?.clear();
        throw err;
      });
      await ctx.progress?.clear();
      const status = posted.body as { id?: unknown; url?: unknown };
      if (typeof status.id !== 'string') throw new TransientError('Mastodon answered without a status id');
      ctx.log.info({ id: status.id, url: status.url }, 'posted to Mastodon');
      return { id: status.id };
    },
    async verify() {
      await call('GET', '/api/v1/accounts/verify_credentials', new Date());
    },
    // Global fetch shares undici's pool; there is nothing of ours to release.
    async close() {},
  };
}
