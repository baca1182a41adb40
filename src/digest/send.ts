import type { Redis } from 'ioredis';
import type { SendMailOptions } from 'nodemailer';
import { ChannelError, type Delivery, type Recipient } from '../../channels/adapter.js';
import { createEmailSender } from '../../channels/email/index.js';
import { stripControl } from '../../channels/email/markdown.js';
import { messageIdFor } from '../../channels/email/message.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { appendAudit } from '../domain/audit.js';
import { ObservationStore } from '../domain/observations.js';
import type { Period } from '../domain/periods.js';
import { catalogueFor } from '../metrics-config.js';
import { buildDigest } from './model.js';
import { renderDigest, type RenderedDigest } from './render.js';

/**
 * Builds the week's digest and mails it to the configured staff recipients
 * through the email channel's sender (SMTP_URL, or the outbox when unset).
 * Each recipient gets a week once: a send is recorded in Redis only after the
 * SMTP server accepted it, and a recipient already recorded is skipped, so a
 * retried job, a restart or a second `--send` sends nothing twice (`--force`
 * sends again). A short claim keeps two processes from sending the same
 * recipient's week at the same moment. As with campaigns, a crash between the
 * server's acceptance and the record can repeat that one message.
 */

export interface DigestDeps {
  config: Config;
  redis: Redis;
  log: Logger;
  now(): Date;
}

export interface SendReport {
  sent: string[];
  /** Already sent that week (or being sent by another process right now). */
  skipped: string[];
  failed: Array<{ to: string; reason: string; transient: boolean }>;
  dryRun: boolean;
}

const CLAIM_MS = 10 * 60_000;
const KEEP_SECONDS = 400 * 24 * 3600;

export const digestKeys = (prefix: string, week: string) => ({ sent: `${prefix}:digest:sent:${week}`, claim: (to: string) => `${prefix}:digest:claim:${week}:${to}` });

export async function composeDigest(deps: DigestDeps, week: Period): Promise<RenderedDigest> {
  const { config, redis } = deps;
  const catalogue = catalogueFor(config.metrics, config.configFile);
  const store = new ObservationStore(redis, config.redis_prefix, catalogue, { zone: config.timezone });
  const digest = await buildDigest({ store, catalogue, redis, prefix: config.redis_prefix, publicUrl: config.publicUrl, zone: config.timezone, now: deps.now() }, week);
  const subject = config.digest.subject.replace(/\{\{\s*week\s*\}\}/g, week.key);
  return renderDigest(digest, { subject, ...(config.organisation ? { organisation: config.organisation } : {}) });
}

export function digestMail(config: Config, r: RenderedDigest, to: string, key: string, now: Date): SendMailOptions {
  const from = stripControl(config.mailFrom);
  return {
    from,
    to,
    subject: r.subject,
    text: r.text,
    html: r.html,
    date: now,
    messageId: messageIdFor(key, to, from),
    // cid: images make nodemailer build multipart/related around the HTML.
    attachments: r.images.map((img) => ({ cid: img.cid, filename: img.filename, content: img.content, contentType: 'image/png', contentDisposition: 'inline' as const })),
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Crier-Digest': key },
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

export async function sendDigest(deps: DigestDeps, week: Period, opts: { force?: boolean; recipients?: readonly string[] } = {}): Promise<SendReport> {
  const { config, redis, log } = deps;
  const recipients = [...new Set((opts.recipients ?? config.digest.recipients).map((r) => r.trim().toLowerCase()))];
  const k = digestKeys(config.redis_prefix, week.key);
  const report: SendReport = { sent: [], skipped: [], failed: [], dryRun: !config.smtpUrl };
  if (recipients.length === 0) return report;
  const rendered = await composeDigest(deps, week);
  const sender = createEmailSender(config, 'digest');
  try {
    for (const to of recipients) {
      if (!opts.force && (await redis.sismember(k.sent, to))) {
        report.skipped.push(to);
        continue;
      }
      if ((await redis.set(k.claim(to), String(process.pid), 'PX', CLAIM_MS, 'NX')) !== 'OK') {
        report.skipped.push(to);
        continue;
      }
      // A forced resend is a new message (new Message-ID), so mail clients do not fold it into the first.
      const key = `digest:${week.key}${opts.force ? `:${deps.now().getTime()}` : ''}`;
      const recipient: Recipient = { id: to, email: to, name: '', area: '', topics: [] };
      const delivery: Delivery = { campaignId: `digest-${week.key}`, campaignTitle: rendered.subject, kind: 'digest', channel: 'digest', content: {}, recipient, key };
      try {
        await sender.deliver(digestMail(config, rendered, to, key, deps.now()), delivery, recipient);
        await redis.multi().sadd(k.sent, to).expire(k.sent, KEEP_SECONDS).del(k.claim(to)).exec();
        report.sent.push(to);
      } catch (err) {
        await redis.del(k.claim(to));
        const transient = !(err instanceof ChannelError) || err.kind === 'transient';
        report.failed.push({ to, reason: err instanceof Error ? err.message : String(err), transient });
        log.warn({ week: week.key, to, err: err instanceof Error ? err.message : String(err) }, 'digest not sent');
      }
    }
  } finally {
    await sender.close();
  }
  if (report.sent.length > 0) {
    await appendAudit(redis, config.redis_prefix, { actor: 'digest', action: 'digest.send', subject: week.key, detail: { sent: report.sent.length, skipped: report.skipped.length, failed: report.failed.length, force: Boolean(opts.force) } });
  }
  log.info({ week: week.key, sent: report.sent.length, skipped: report.skipped.length, failed: report.failed.length }, 'digest run');
  return report;
}
