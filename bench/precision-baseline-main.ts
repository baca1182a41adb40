import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { loadConfig } from '../src/config.js';
import { forceNoDelay } from './lib.js';

/** The precision baseline's worker process: each bare delayed job sends one message, tagged with its id. */

forceNoDelay();
const config = loadConfig();
const smtp = nodemailer.createTransport(new SMTPPool({ pool: true, url: config.smtpUrl, maxConnections: 10, maxMessages: 100 }));
const worker = new Worker<{ id: string }>(
  'bare-precision',
  async (job) => {
    await smtp.sendMail({ from: 'bench@example.org', to: 'reader@example.org', subject: 'Alert', text: 'Road closed.', headers: { 'X-Crier-Campaign': job.data.id } });
  },
  { connection: new Redis(config.redisUrl!, { maxRetriesPerRequest: null }), concurrency: 10 },
);
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    smtp.close();
    process.exit(0);
  });
});
