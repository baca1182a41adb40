import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Delivery } from '../../channels/adapter.js';
import { ROOT } from './dist.js';

/**
 * Sends one delivery through a channel adapter in a fresh Node process, from the
 * built dist/ (the global setup builds it). For what Node reads only at start:
 * NODE_EXTRA_CA_CERTS, the documented way to trust a private CA (an SMTP relay's,
 * a TWITTER_API_BASE's).
 */

const run = promisify(execFile);
const dist = (p: string) => JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', p)).href);

export interface ChildSendResult {
  ok: boolean;
  id?: string;
  name?: string;
  message?: string;
}

export interface ChildSendOptions {
  /** The adapter's module under dist/, e.g. 'channels/email/index.js'. */
  module: string;
  /** Its factory, called with the child's config: e.g. 'createEmailAdapter'. */
  factory: string;
  /** Environment for loadConfig (SMTP_URL, TWITTER_*, …); data dir and secret are filled in. */
  env: Record<string, string>;
  delivery: Delivery;
  /** PEM file for NODE_EXTRA_CA_CERTS; without it the child trusts only the system CAs. */
  extraCa?: string;
}

const CHILD = `
const { loadConfig } = await import(${dist('src/config.js')});
const { createLogger } = await import(${dist('src/log.js')});
const adapters = await import(process.env.CHILD_MODULE);
const config = loadConfig({ ...JSON.parse(process.env.CHILD_ENV), CRIER_DATA_DIR: process.cwd(), CRIER_SECRET: 'test-secret-0123456789abcdef', LOG_LEVEL: 'silent' });
const adapter = adapters[process.env.CHILD_FACTORY](config);
try {
  const result = await adapter.send(JSON.parse(process.env.CHILD_DELIVERY), { log: createLogger('silent'), now: () => new Date() });
  console.log(JSON.stringify({ ok: true, id: result.id }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message }));
} finally {
  await adapter.close();
}
`;

export async function sendInChild(opts: ChildSendOptions): Promise<ChildSendResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crier-child-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CHILD_MODULE: pathToFileURL(path.join(ROOT, 'dist', opts.module)).href,
    CHILD_FACTORY: opts.factory,
    CHILD_ENV: JSON.stringify(opts.env),
    CHILD_DELIVERY: JSON.stringify(opts.delivery),
    ...(opts.extraCa ? { NODE_EXTRA_CA_CERTS: opts.extraCa } : {}),
  };
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: dataDir, env, timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildSendResult;
}
