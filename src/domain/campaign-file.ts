import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { sniffImageType } from '../../channels/images.js';
import { channelDefinition, channelNames } from '../../channels/registry.js';
import type { ImageType } from '../../channels/twitter/content.js';
import type { Config } from '../config.js';
import { UserError } from '../errors.js';
import { isValidZone, parseLocalTime } from '../time.js';
import { checkCron } from './recurrence.js';

/** A campaign file (YAML) → a validated campaign draft. Every error names the file, line and field. */

export const KINDS = ['newsletter', 'community', 'social', 'press'] as const;

/** A body larger than this is refused at create: it is no email anyone reads, and the Markdown renderer overflows its stack past ~8 MB. */
export const MAX_BODY_BYTES = 1_048_576;
/** Alias expansions allowed in a campaign file (yaml's default): enough for reuse, too few for a "billion laughs" bomb. */
const MAX_ALIASES = 100;
export type CampaignKind = (typeof KINDS)[number];

export interface CampaignDraft {
  title: string;
  kind: CampaignKind;
  sendAt: Date;
  timezone: string;
  essential: boolean;
  channels: Record<string, Record<string, unknown>>;
  /** Image bytes read at create time, by sha256: stored with the campaign so any worker can post them. */
  media?: Map<string, Buffer>;
  /** A recurring campaign: each cron occurrence (in `timezone`) becomes a dated campaign; sendAt is the earliest start. */
  repeat?: { cron: string; until?: Date };
}

const fileSchema = z
  .object({
    title: z
      .string()
      .trim()
      .min(1, 'a title is required')
      .max(200)
      // eslint-disable-next-line no-control-regex
      .refine((t) => !/[\u0000-\u001f\u007f\u2028\u2029]/.test(t), 'the title must be one line (it holds a line break or control character)'),
    kind: z.enum(KINDS, { message: `kind must be one of ${KINDS.join(', ')}` }),
    send_at: z.union([z.string(), z.date()], { message: 'send_at is required ("YYYY-MM-DD HH:mm", local time)' }).optional(),
    timezone: z.string().optional(),
    essential: z.boolean().default(false),
    channels: z.record(z.string(), z.record(z.string(), z.unknown()), { message: 'channels must map a channel name to its settings' }),
    repeat: z
      .object({
        cron: z.string({ message: 'required: a cron pattern such as "0 9 * * 1" (Mondays 09:00)' }),
        until: z.union([z.string(), z.date()]).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** The line of the deepest part of `fieldPath` present: a mapping key's own line (a block value starts a line later). */
function lineOf(doc: Document, counter: LineCounter, fieldPath: (string | number)[]): number | undefined {
  for (let n = fieldPath.length; n >= 0; n--) {
    const parent = n === 0 ? undefined : n === 1 ? doc.contents : doc.getIn(fieldPath.slice(0, n - 1), true);
    const key = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(fieldPath[n - 1]))?.key : undefined;
    const node = key ?? (n === 0 ? doc.contents : doc.getIn(fieldPath.slice(0, n), true));
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return counter.linePos(range[0]).line;
  }
  return undefined;
}

/** An unknown key is reported at the key itself, not at its parent. */
function issuePath(issue: z.core.$ZodIssue): (string | number)[] {
  const p = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  return issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...p, issue.keys[0]] : p;
}

/** Removes every own `__proto__` key in a parsed document and returns where each was. */
function takeProtoKeys(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [];
  const found: (string | number)[][] = [];
  if (Object.prototype.hasOwnProperty.call(value, '__proto__')) {
    found.push([...at, '__proto__']);
    delete (value as Record<string, unknown>)['__proto__'];
  }
  for (const [key, child] of Object.entries(value)) found.push(...takeProtoKeys(child, [...at, Array.isArray(value) ? Number(key) : key]));
  return found;
}

export interface ParseOptions {
  now: Date;
}

export function readCampaignFile(file: string, config: Config, opts: ParseOptions): CampaignDraft {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError('cannot read the campaign file', 'CRIER_ERR_INPUT', { file });
  }
  return parseCampaign(text, file, config, opts);
}

export function parseCampaign(text: string, file: string, config: Config, opts: ParseOptions): CampaignDraft {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    // Without prettyErrors, linePos is unset: count it; an error at the very end belongs to the last line.
    const lastLine = text.replace(/\s+$/, '').split('\n').length;
    const line = e.linePos?.[0]?.line ?? Math.min(counter.linePos(e.pos[0]).line, lastLine);
    throw new UserError(`not valid YAML: ${e.message.split('\n')[0]}`, 'CRIER_ERR_INPUT', { file, line });
  }
  if (!isMap(doc.contents)) throw new UserError('a campaign file is a YAML mapping (title:, kind:, send_at:, channels:)', 'CRIER_ERR_INPUT', { file, line: 1 });
  // Every mistake in the file is reported at once, each with its line and field.
  const problems: UserError[] = [];
  const problem = (fieldPath: (string | number)[], message: string): UserError =>
    new UserError(message, 'CRIER_ERR_INPUT', { file, line: lineOf(doc, counter, fieldPath), field: fieldPath.join('.') || undefined });
  const fail = (fieldPath: (string | number)[], message: string): never => {
    throw problem(fieldPath, message);
  };
  const check = (fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(err);
    }
  };
  const issueMessage = (issue: z.core.$ZodIssue) => {
    if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) return `required (${issue.expected})`;
    return issue.message;
  };
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    // yaml refuses "billion laughs" alias expansion; anything else is ours to see.
    if (!(err instanceof ReferenceError)) throw err;
    throw new UserError(`too many YAML aliases (*name): more than ${MAX_ALIASES} expansions; write the values out`, 'CRIER_ERR_INPUT', { file, line: 1 });
  }
  // yaml keeps a `__proto__` key as an own property (no pollution), but zod's output drops it without a word: refuse it here.
  for (const at of takeProtoKeys(raw)) problems.push(problem(at, 'unknown field __proto__'));
  // A mistake at the top (a bad kind, an unknown key) does not hide the others: what is usable is checked too.
  const parsed = fileSchema.safeParse(raw);
  const refused: (string | number)[][] = parsed.success ? [] : parsed.error.issues.map(issuePath);
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => problem(issuePath(issue), issueMessage(issue))));
  const usable = (...fieldPath: string[]): boolean => !refused.some((p) => p.length <= fieldPath.length && p.every((k, i) => String(k) === fieldPath[i]));
  const f = (parsed.success ? parsed.data : raw) as z.infer<typeof fileSchema>;
  let timezone = usable('timezone') && f.timezone !== undefined ? f.timezone : config.timezone;
  if (!isValidZone(timezone)) {
    problems.push(problem(['timezone'], `unknown time zone "${timezone}" (use an IANA name such as Europe/London)`));
    timezone = config.timezone;
  }
  const where = (field: string[]) => ({ file, line: lineOf(doc, counter, field), field: field.join('.') });
  let sendAt = new Date(NaN);
  let repeat: CampaignDraft['repeat'];
  if (usable('send_at') && usable('timezone')) {
    check(() => {
      if (f.send_at === undefined) {
        // A recurring campaign may leave send_at out: it starts with the cron's next occurrence.
        if (f.repeat) sendAt = opts.now;
        else fail(['send_at'], 'send_at is required ("YYYY-MM-DD HH:mm", local time; or repeat: { cron: "…" })');
        return;
      }
      sendAt = parseLocalTime(f.send_at, timezone, where(['send_at']));
      if (sendAt.getTime() < opts.now.getTime() - 1000) fail(['send_at'], `${String(f.send_at)} is in the past`);
    });
  }
  if (f.repeat && usable('repeat')) {
    const r = f.repeat;
    check(() => {
      const problem = checkCron(r.cron, timezone);
      if (problem) fail(['repeat', 'cron'], problem);
      const until = r.until === undefined ? undefined : parseLocalTime(r.until, timezone, where(['repeat', 'until']));
      if (until && until.getTime() <= Math.max(opts.now.getTime(), sendAt.getTime() || 0)) fail(['repeat', 'until'], `${String(r.until)} is before the first run`);
      repeat = { cron: r.cron.trim(), ...(until ? { until } : {}) };
    });
  }

  const names = usable('channels') ? Object.keys(f.channels).filter((name) => usable('channels', name)) : [];
  if (usable('channels') && Object.keys(f.channels).length === 0) problems.push(problem(['channels'], 'at least one channel is required'));
  const channels: Record<string, Record<string, unknown>> = {};
  const media = new Map<string, Buffer>();
  for (const name of names) {
    check(() => {
      const def = channelDefinition(name);
      if (!def) return fail(['channels', name], `unknown channel "${name}" (known: ${channelNames().join(', ')})`);
      const content = { ...f.channels[name] };
      const bodyField = content.body_file !== undefined ? 'body_file' : 'body';
      inlineBodyFile(content, file, (msg) => fail(['channels', name, 'body_file'], msg));
      if (typeof content.body === 'string' && Buffer.byteLength(content.body) > MAX_BODY_BYTES) {
        fail(['channels', name, bodyField], `the body is ${megabytes(Buffer.byteLength(content.body))}; the most a campaign body may be is 1 MB`);
      }
      resolveImages(content, file, media, def.imageMaxBytes, (i, msg) => fail(['channels', name, 'images', i, 'file'], msg));
      const result = def.contentSchema.safeParse(content);
      if (!result.success) {
        throw UserError.all(result.error.issues.map((issue) => problem(['channels', name, ...issuePath(issue)], issueMessage(issue))));
      }
      const value = result.data as Record<string, unknown>;
      // A subject or headline becomes a mail header or a heading: one line, like the title. (The email adapter also
      // folds any line break at send, for campaigns stored before this check; here the author learns of it.)
      for (const field of ONE_LINE_FIELDS) {
        if (typeof value[field] === 'string' && LINE_BREAK.test(value[field])) fail(['channels', name, field], `the ${field} must be one line (it holds a line break or control character)`);
      }
      for (const field of def.localTimes ?? []) {
        // One fixed time cannot serve every occurrence of a recurring campaign.
        if (value[field] !== undefined && f.repeat) fail(['channels', name, field], `a recurring campaign (repeat:) cannot have a fixed ${field}; each occurrence is sent at its own time`);
        if (value[field] !== undefined) {
          value[`${field}_iso`] = parseLocalTime(value[field], timezone, where(['channels', name, field])).toISOString();
        }
      }
      def.seal?.(value, config.secret);
      channels[name] = value;
    });
  }
  if (problems.length > 0) throw UserError.all(byLine(problems));
  return { title: f.title, kind: f.kind, sendAt, timezone, essential: f.essential, channels, media, ...(repeat ? { repeat } : {}) };
}

const ONE_LINE_FIELDS = ['subject', 'headline'] as const;
// eslint-disable-next-line no-control-regex
const LINE_BREAK = /[\u0000-\u001f\u007f\u2028\u2029]/;

/** Mistakes in file order (stable: several on one line keep their order); any without a line last. */
function byLine(problems: UserError[]): UserError[] {
  return problems
    .flatMap((e) => [e, ...e.more])
    .map((e, i) => ({ e, i, line: e.where.line ?? Number.MAX_SAFE_INTEGER }))
    .sort((a, b) => a.line - b.line || a.i - b.i)
    .map(({ e }) => (e.more.length ? new UserError(e.plain, e.code, e.where) : e));
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

/** `body_file` is read once at create time, relative to the campaign file, so later edits do not change a queued campaign. */
function inlineBodyFile(content: Record<string, unknown>, file: string, fail: (msg: string) => never): void {
  const bodyFile = content.body_file;
  if (bodyFile === undefined) return;
  if (typeof bodyFile !== 'string') fail('body_file must be a path');
  const full = path.resolve(path.dirname(file), bodyFile as string);
  let bytes = Buffer.alloc(0);
  try {
    bytes = readFileSync(full);
  } catch {
    fail(`cannot read ${full}`);
  }
  if (bytes.length > MAX_BODY_BYTES) fail(`${full} is ${megabytes(bytes.length)}; the most a campaign body may be is 1 MB`);
  const nul = bytes.indexOf(0);
  if (nul !== -1) fail(`${full} is not a text file (a NUL byte at offset ${nul}): give a Markdown or plain-text file`);
  try {
    content.body = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail(`${full} is not UTF-8 text: save it as UTF-8`);
  }
  delete content.body_file;
}

/**
 * Images are read when the campaign is created, relative to the campaign file,
 * checked against the network's type and size limits, and stored with the
 * campaign (by sha256), so a worker on any machine posts the same bytes and the
 * file may be moved or deleted afterwards.
 */
function resolveImages(
  content: Record<string, unknown>,
  file: string,
  media: Map<string, Buffer>,
  maxBytes: ((type: ImageType) => number) | undefined,
  fail: (i: number, msg: string) => never,
): void {
  if (!Array.isArray(content.images)) return;
  content.images = content.images.map((img: unknown, i: number) => {
    if (!img || typeof img !== 'object' || typeof (img as { file?: unknown }).file !== 'string') return img;
    const name = (img as { file: string }).file;
    const full = path.resolve(path.dirname(file), name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(full);
    } catch {
      return fail(i, `image not found or not readable: ${full}`);
    }
    const type = sniffImageType(bytes);
    if (!type) return fail(i, `${full} is not a PNG, JPEG, GIF or WebP image (judged by its content, not its name)`);
    const limit = maxBytes?.(type);
    if (limit !== undefined && bytes.length > limit) {
      return fail(i, `${full} is ${(bytes.length / 1048576).toFixed(1)} MB; this network takes ${type} images up to ${limit / 1048576} MB`);
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    media.set(sha256, bytes);
    return { ...img, file: name, sha256, type, bytes: bytes.length };
  });
}
