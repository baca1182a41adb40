import nodemailer from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { composeEmail, composeRawEmail } from '../channels/email/message.js';
import { loadConfig } from '../src/config.js';
import { BODY, SUBJECT } from './content.js';
import { forceNoDelay } from './lib.js';

/**
 * The baseline as its own process: a bare loop over a pooled nodemailer
 * transport (the same pool size Crier's email channel builds), each message
 * composed by the same composeEmail() Crier uses (nodemailer builds the MIME
 * message, as a hand-rolled script would). With BASELINE_RAW=1 each message is
 * Crier's own bytes instead (composeRawEmail, the per-campaign template Crier's
 * email channel sends), so the loop costs only the transport: the ratio against
 * it is Crier's own overhead per message. Reads Crier's config from the
 * environment like a `crier` process; BASELINE_N messages; reports the instant
 * its loop started over IPC, then exits.
 */

forceNoDelay();
const config = loadConfig();
const n = Number(process.env.BASELINE_N);
const compose = process.env.BASELINE_RAW === '1' ? composeRawEmail : composeEmail;
const { concurrency } = config.channelSettings('email');
const connections = Math.max(1, Math.min(concurrency, 10));
const smtp = nodemailer.createTransport(new SMTPPool({ pool: true, url: config.smtpUrl, maxConnections: connections, maxMessages: 100 }));
const startedAt = Date.now();
let next = 0;
const lane = async () => {
  while (next < n) {
    const i = next++;
    const recipient = { id: `b${i}`, email: `reader${i}@example.org`, name: `Reader ${i}`, area: 'Rugby', topics: ['roads'] };
    const mail = compose(config, { subject: SUBJECT, markdown: BODY, list: 'newsletter', campaignId: 'baseline', key: `baseline:email:b${i}`, recipient, now: new Date(), label: 'Newsletter' });
    await smtp.sendMail(mail);
  }
};
await Promise.all(Array.from({ length: 2 * connections }, lane));
smtp.close();
process.send?.({ type: 'done', startedAt, cpu: process.cpuUsage() });
process.disconnect?.();
