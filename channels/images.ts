import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PermanentError, type Delivery } from './adapter.js';
import { IMAGE_TYPES, type ImageType } from './twitter/content.js';

/**
 * Images in posts. They are read when the campaign is created and stored with
 * it in Redis (like bodies), so a worker on any machine can post them: the
 * campaign's content names each image by its sha256, and the deliver worker
 * hands the bytes to the adapter in `delivery.media`.
 */

export interface PostImage {
  file: string;
  alt: string;
  /** Set when the bytes were stored with the campaign. */
  sha256?: string;
  type?: ImageType;
  bytes?: number;
}

/** The file's real type from its first bytes (not its name), or undefined when it is none of PNG, JPEG, GIF, WebP. */
export function sniffImageType(buf: Buffer): ImageType | undefined {
  if (buf.length >= 8 && buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'image/jpeg';
  if (buf.length >= 6 && /^GIF8[79]a$/.test(buf.subarray(0, 6).toString('latin1'))) return 'image/gif';
  if (buf.length >= 12 && buf.subarray(0, 4).toString('latin1') === 'RIFF' && buf.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  return undefined;
}

/** The image's bytes: from the campaign's stored media, or (an adapter used on its own) from the file. */
export async function imageBytes(image: PostImage, delivery: Delivery): Promise<Buffer> {
  if (image.sha256) {
    const stored = delivery.media?.get(image.sha256);
    if (!stored) throw new PermanentError(`image ${image.file} was not stored with the campaign (create the campaign again)`);
    return stored;
  }
  try {
    return await readFile(image.file);
  } catch (err) {
    throw new PermanentError(`cannot read image ${image.file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** One image ready to upload (X, Mastodon, Facebook): its bytes, type and a file name. */
export async function readImage(image: PostImage, delivery: Delivery): Promise<{ bytes: Buffer; type: ImageType; name: string }> {
  const bytes = await imageBytes(image, delivery);
  const type = image.type ?? sniffImageType(bytes) ?? IMAGE_TYPES[path.extname(image.file).toLowerCase()];
  if (!type) throw new PermanentError(`image ${image.file} is not a PNG, JPEG, GIF or WebP file`);
  return { bytes, type, name: path.basename(image.file) };
}

const MB = 1024 * 1024;

/** X: PNG, JPEG and WebP up to 5 MB, GIF up to 15 MB. */
export function xImageMaxBytes(type: ImageType): number {
  return type === 'image/gif' ? 15 * MB : 5 * MB;
}

/** Mastodon's default for images (an instance may set a lower one and answer 422). */
/** Facebook Page photos: up to 10 MB. */
export function facebookImageMaxBytes(): number {
  return 10 * MB;
}

export function mastodonImageMaxBytes(): number {
  return 16 * MB;
}
