import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import nodemailer, { type SendMailOptions, type Transporter } from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type StreamTransport from 'nodemailer/lib/stream-transport/index.js';
import { z } from 'zod';
import type { Config } from '../../src/config.js';
import {
  LoginFailedError,
  PermanentError,
  TransientError,
  type ChannelAdapter,
  type ChannelError,
  type Delivery,
  type Recipient,
  type SendResult,
} from '../adapter.js';
import { safeFileName } from '../dry-run.js';
import { composeRawEmail } from './message.js';

/**
 * The email channel: pooled SMTP when SMTP_URL is set, otherwise a dry run that
 * writes the exact bytes that would have been sent to the outbox as .eml.
 * Community alerts and press emails reuse the sender and the error mapping.
 */

export const contentSchema = z
  .object({
    list: z.string().min(1),
    subject: z.string().min(1),
    /** Markdown; the campaign loader inlines body_file here. */
    body: z.string().optional(),
    body_file: z.string().optional(),
  })
  .strict()
  .refine((c) => c.body !== undefined || c.body_file !== undefined, { message: 'give body or body_file', path: ['body'] });

export type EmailContent = z.infer<typeof contentSchema>;

const MAX_POOL_CONNECTIONS = 10;
export const SMTP_LOGIN_FAILED = 'SMTP login failed: check SMTP_URL';
const TRANSIENT_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EMAXLIMIT',
  'ETLS',
  'EPROTOCOL',
]);

interface SmtpErrorShape {
  message?: string;
  code?: string;
  responseCode?: number;
  response?: string;
}

/** SMTP 4xx and lost connections are worth another try; 5xx is the server's final word. */
export function classifySmtpError(err: unknown): ChannelError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SmtpErrorShape;
  const reply = e.response ?? e.message ?? String(err);
  // Before the 5xx rule: a refused login (535) is no verdict on the message, and retrying it per recipient locks accounts.
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH' || (e.responseCode === 535 && e.code !== 'EENVELOPE')) {
    return new LoginFailedError(`${SMTP_LOGIN_FAILED} (${reply})`);
  }
  if (typeof e.responseCode === 'number') {
    if (e.responseCode >= 500) return new PermanentError(`SMTP server refused the message: ${reply}`);
    if (e.responseCode >= 400) return new TransientError(`SMTP server deferred the message: ${reply}`);
  }
  if (e.code && TRANSIENT_CODES.has(e.code)) {
    const detail = e.message ?? reply;
    // A certificate the relay's name or our trust store does not match is a setup problem: say how to fix it.
    const hint = /certificate|CERT_|altnames/i.test(detail)
      ? " (check SMTP_URL's host name matches the relay's certificate; a private CA is trusted with NODE_EXTRA_CA_CERTS=/path/ca.pem)"
      : '';
    return new TransientError(`SMTP connection problem (${e.code}): ${detail}${hint}`, { unreachable: true });
  }
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') return new PermanentError(`SMTP message not accepted: ${reply}`);
  return new TransientError(`SMTP send failed: ${reply}`);
}

// A batch's deliveries share one content object: it is validated once per schema, not once per recipient.
const parsedContent = new WeakMap<object, Map<z.ZodType, unknown>>();

export function parseContent<T>(schema: z.ZodType<T>, delivery: Delivery): T {
  const memo = parsedContent.get(delivery.content);
  if (memo?.has(schema)) return memo.get(schema) as T;
  const parsed = schema.safeParse(delivery.content);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') || '(content)';
    throw new PermanentError(`${delivery.channel} content: field "${field}": ${issue?.message ?? 'invalid'}`);
  }
  parsedContent.set(delivery.content, (memo ?? new Map<z.ZodType, unknown>()).set(schema, parsed.data));
  return parsed.data;
}

export function requireRecipient(delivery: Delivery): Recipient {
  if (!delivery.recipient) throw new PermanentError(`${delivery.channel} delivery ${delivery.key} has no recipient`);
  return delivery.recipient;
}

export function requireBody(body: string | undefined, channel: string): string {
  if (body === undefined) throw new PermanentError(`${channel} content has no body (body_file is inlined when the campaign is created)`);
  return body;
}

export interface EmailSender {
  readonly dryRun: boolean;
  deliver(mail: SendMailOptions, delivery: Delivery, recipient: Recipient): Promise<SendResult>;
  verify(): Promise<void>;
  close(): Promise<void>;
}

function smtpTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'smtps:' ? '465' : '587')}`;
  } catch {
    return 'the configured SMTP server';
  }
}

/**
 * nodemailer writes each message's last bytes (".\r\n") as small separate writes; with Nagle on, the kernel
 * holds them until the server's delayed ACK (~40 ms), capping a connection at ~20 messages/s. We open the
 * socket ourselves with TCP_NODELAY and hand it over at once, still connecting (STARTTLS still applies).
 * Handing it over before it connects matters: nodemailer then sees a refused or timed-out connection as the
 * connection's own error and frees its pool slot, whereas an error passed back from here is given to the
 * waiting message only and the slot stays taken for good (ten refusals froze the pool).
 */
function openNoDelaySocket(opts: SMTPPool.Options, callback: (err: Error | null, socketOptions?: { connection: net.Socket }) => void): void {
  const socket = net.connect({ host: opts.host ?? 'localhost', port: Number(opts.port) || 587, noDelay: true });
  callback(null, { connection: socket });
}

interface PoolResource extends NodeJS.EventEmitter {
  available: boolean;
  connect(callback: (err?: Error | null) => void): void;
}

interface PoolInternals {
  _createConnection?: (...args: unknown[]) => PoolResource;
  _processMessages?: () => void;
  _connections?: PoolResource[];
  _closed?: boolean;
  options?: { maxConnections?: number };
}

/**
 * A connection that has sent `maxMessages` leaves the pool with an EMAXLIMIT "error", a routine rotation;
 * nodemailer then waits 100 ms (as after a real failure) before it looks at the queue again, and opens
 * the next connection only when a message needs it, so that message waited up to 100 ms plus a connection
 * set-up (bench/precision.ts: the p99 from "delivery job active" to the relay was 113-122 ms with rotation,
 * 33 ms without). After a rotation the replacement is opened at once (marked busy until it has said EHLO,
 * then offered to the queue as nodemailer offers a connection that finished a message); every other
 * error keeps nodemailer's pause. These are internals of nodemailer 8's pool: if they are not there the
 * pool is left as it is (channels/email/email.test.ts checks they are).
 */
export function rotateWithoutPause(pool: SMTPPool): boolean {
  const p = pool as unknown as PoolInternals;
  const create = p._createConnection;
  const processMessages = p._processMessages;
  if (typeof create !== 'function' || typeof processMessages !== 'function' || !Array.isArray(p._connections)) return false;
  const replace = () => {
    if (p._closed || (p._connections?.length ?? 0) >= (p.options?.maxConnections ?? 1)) return processMessages.call(pool);
    const next = p._createConnection!.call(pool);
    next.available = false;
    // A refused connection is the pool's own 'error' case (removed, and nodemailer's pause before the next).
    next.connect((err) => {
      if (err) return;
      next.available = true;
      next.emit('available');
    });
  };
  p._createConnection = function (this: SMTPPool, ...args: unknown[]) {
    const connection = create.apply(this, args);
    connection.once('error', (err: { code?: string }) => {
      if (err.code === 'EMAXLIMIT') setImmediate(replace);
    });
    return connection;
  };
  return true;
}

/** One transport per channel, so each channel's pool matches its own concurrency. */
export function createEmailSender(config: Config, channel: string): EmailSender {
  if (!config.smtpUrl) {
    const stream: Transporter<StreamTransport.SentMessageInfo> = nodemailer.createTransport({
      streamTransport: true,
      buffer: true,
      newline: 'windows',
    });
    return {
      dryRun: true,
      async deliver(mail, delivery, recipient) {
        const info = await stream.sendMail(mail);
        const bytes = info.message;
        if (!Buffer.isBuffer(bytes)) throw new TransientError('dry run: nodemailer did not return the message bytes');
        await mkdir(config.outboxDir, { recursive: true });
        const name = `${safeFileName(delivery.campaignId)}-${safeFileName(channel)}-${safeFileName(recipient.id)}.eml`;
        const file = path.join(config.outboxDir, name);
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
        await writeFile(tmp, bytes);
        await rename(tmp, file);
        return { id: typeof mail.messageId === 'string' ? mail.messageId : info.messageId, outboxFile: file };
      },
      async verify() {},
      async close() {
        stream.close();
      },
    };
  }

  const { concurrency } = config.channelSettings(channel);
  // Built explicitly: createTransport({url, …}) keeps only what the URL says and silently drops pool and limits.
  // maxRequeues is a real pool option the typings do not list.
  const options: SMTPPool.Options & { maxRequeues: number } = {
    pool: true,
    url: config.smtpUrl,
    maxConnections: Math.max(1, Math.min(concurrency, MAX_POOL_CONNECTIONS)),
    maxMessages: 100,
    // nodemailer would otherwise requeue a message forever when its connection drops; the queue's backoff decides.
    maxRequeues: 1,
    connectionTimeout: 30_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  };
  const pool = new SMTPPool(options);
  if (!/^smtps:/i.test(config.smtpUrl)) pool.getSocket = openNoDelaySocket;
  rotateWithoutPause(pool);
  const smtp: Transporter<SMTPPool.SentMessageInfo> = nodemailer.createTransport(pool);
  const target = smtpTarget(config.smtpUrl);
  return {
    dryRun: false,
    async deliver(mail) {
      try {
        const info = await smtp.sendMail(mail);
        return { id: typeof mail.messageId === 'string' ? mail.messageId : info.messageId };
      } catch (err) {
        throw classifySmtpError(err);
      }
    },
    async verify() {
      try {
        await smtp.verify();
      } catch (err) {
        const mapped = classifySmtpError(err);
        if (mapped instanceof LoginFailedError) throw mapped;
        const reason = err instanceof Error ? err.message : String(err);
        throw new TransientError(`cannot use the SMTP server at ${target}: ${reason}`);
      }
    },
    async close() {
      smtp.close();
    },
  };
}

export function createEmailAdapter(config: Config): ChannelAdapter {
  const name = 'email';
  const sender = createEmailSender(config, name);
  return {
    name,
    dryRun: sender.dryRun,
    async send(delivery, ctx) {
      const content = parseContent(contentSchema, delivery);
      const recipient = requireRecipient(delivery);
      const mail = composeRawEmail(config, {
        subject: content.subject,
        markdown: requireBody(content.body, name),
        list: content.list,
        campaignId: delivery.campaignId,
        key: delivery.key,
        recipient,
        now: ctx.now(),
        label: delivery.kind === 'newsletter' ? 'Newsletter' : undefined,
      });
      const result = await sender.deliver(mail, delivery, recipient);
      ctx.log.debug({ recipientId: recipient.id, messageId: result.id, outboxFile: result.outboxFile }, 'email sent');
      return result;
    },
    verify: () => sender.verify(),
    pausesOnLoginFailure: !sender.dryRun,
    close: () => sender.close(),
  };
}
