import { z } from 'zod';
import { X_MAX_WEIGHTED_LENGTH, weightedLength } from './text.js';

/** X accepts at most four images on a post, each with up to 1000 characters of alt text. */
export const X_MAX_IMAGES = 4;
export const X_MAX_ALT_LENGTH = 1000;

export type ImageType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

export const IMAGE_TYPES: Readonly<Record<string, ImageType>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
};

/** An image of a post, read for upload (X, Mastodon, Facebook); unreadable or not an image → permanent failure. */
const ALT_REQUIRED = 'alt text is required for every image (describe it for people using screen readers)';

/** One image and its description; shared with the Mastodon channel (limits differ). */
export function imageSchema(maxAlt: number) {
  return z
    .object({
      file: z
        .string({ error: 'file is required: the path of the image' })
        .min(1, 'file is required: the path of the image')
        .refine((f) => Object.keys(IMAGE_TYPES).some((ext) => f.toLowerCase().endsWith(ext)), {
          message: `file must be an image (${Object.keys(IMAGE_TYPES).join(', ')})`,
        }),
      alt: z
        .string({ error: ALT_REQUIRED })
        .refine((a) => a.trim().length > 0, { message: ALT_REQUIRED })
        .refine((a) => a.length <= maxAlt, { message: `alt text is longer than ${maxAlt} characters` }),
      /** Set at create time, when the image is stored with the campaign. */
      sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
      type: z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']).optional(),
      bytes: z.number().int().min(0).optional(),
    })
    .strict();
}

/**
 * A campaign's `twitter:` part. Over-long text is invalid unless
 * `thread: true`, in which case it is split into a numbered thread (images go
 * on the first post).
 */
export const contentSchema = z
  .object({
    text: z.string({ error: 'text is required' }).refine((t) => t.trim().length > 0, { message: 'text is empty' }),
    thread: z.boolean().default(false),
    images: z.array(imageSchema(X_MAX_ALT_LENGTH)).max(X_MAX_IMAGES, `X allows at most ${X_MAX_IMAGES} images on a post`).default([]),
  })
  .strict()
  .superRefine(
    (content, ctx) => {
      const length = weightedLength(content.text);
      if (content.thread !== true && length > X_MAX_WEIGHTED_LENGTH) {
        ctx.addIssue({
          code: 'custom',
          path: ['text'],
          message: `${length} characters, X allows ${X_MAX_WEIGHTED_LENGTH} (links count 23, CJK characters and emoji 2): shorten it or set thread: true`,
        });
      }
    },
    // Report the length even when another field (an image's alt text) is wrong too.
    { when: (payload) => typeof (payload.value as { text?: unknown } | undefined)?.text === 'string' },
  );

export type TwitterContent = z.infer<typeof contentSchema>;

/** Problems as "field: message" lines, empty when the content is valid. */
export function issuesOf(schema: z.ZodType, content: unknown): string[] {
  const parsed = schema.safeParse(content);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => {
    const where = issue.path.map(String).join('.');
    return where ? `${where}: ${issue.message}` : issue.message;
  });
}

/** e.g. ["text: 312 characters, X allows 280 …", "images.0.alt: alt text is required …"]. */
export function validateContent(content: unknown): string[] {
  return issuesOf(contentSchema, content);
}
