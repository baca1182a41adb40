import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeXApi, type FakeXApi } from '../../test/fakes/x-api.js';

/**
 * The documented way to trust a private TWITTER_API_BASE certificate is
 * NODE_EXTRA_CA_CERTS, which Node reads only at start: so this runs the real
 * adapter (compiled to a temp dir) in a child process, with and without it.
 */

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const creds = { appKey: 'k', appSecret: 's', accessToken: 't', accessSecret: 'x' };

const CHILD = `
import { createTwitterAdapter } from './channels/twitter/index.js';
const config = { twitter: JSON.parse(process.env.CHILD_TWITTER), outboxDir: process.env.CHILD_OUTBOX };
const adapter = createTwitterAdapter(config);
const log = { info() {}, warn() {} };
try {
  const result = await adapter.send(
    { campaignId: 'c', campaignTitle: 't', kind: 'social', channel: 'twitter', content: { text: process.env.CHILD_TEXT }, key: 'k' },
    { log, now: () => new Date() },
  );
  console.log(JSON.stringify({ ok: true, id: result.id }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message }));
} finally {
  await adapter.close();
}
`;

describe('X channel trusting the API certificate through NODE_EXTRA_CA_CERTS', () => {
  let fake: FakeXApi;
  let outDir: string;

  beforeAll(async () => {
    fake = await startFakeXApi({ credentials: creds });
    // Type errors are tsc -p's business; --noCheck keeps others' half-done files from failing this test.
    // Inside node_modules so the compiled files resolve twitter-api-v2 and zod from the project.
    const cache = path.join(root, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    outDir = mkdtempSync(path.join(cache, 'crier-extra-ca-'));
    execFileSync(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '--outDir', outDir, '--rootDir', root, '--module', 'NodeNext',
        '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--noCheck', '--skipLibCheck', '--types', 'node',
        path.join(root, 'channels/twitter/index.ts')],
      { cwd: root, stdio: 'pipe' },
    );
    writeFileSync(path.join(outDir, 'package.json'), '{"type":"module"}\n');
    writeFileSync(path.join(outDir, 'child.js'), CHILD);
  }, 120_000);
  afterAll(async () => {
    rmSync(outDir, { recursive: true, force: true });
    await fake.close();
  });

  async function child(text: string, extraCa?: string): Promise<{ ok: boolean; id?: string; name?: string; message?: string }> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      CHILD_TWITTER: JSON.stringify({ apiBase: fake.url, ...creds }),
      CHILD_OUTBOX: outDir,
      CHILD_TEXT: text,
      ...(extraCa ? { NODE_EXTRA_CA_CERTS: extraCa } : {}),
    };
    const { stdout } = await run(process.execPath, [path.join(outDir, 'child.js')], { env, cwd: outDir });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; id?: string };
  }

  it('posts when the certificate is trusted, and is a transient failure when it is not', async () => {
    const trusted = await child('posted over TLS to a private certificate', fake.certFile);
    expect(trusted).toEqual({ ok: true, id: fake.tweets[0]?.id });
    const untrusted = await child('never arrives');
    expect(untrusted).toMatchObject({ ok: false, name: 'TransientError' });
    expect(untrusted.message).toMatch(/certificate/i);
    expect(fake.tweets).toHaveLength(1);
  }, 60_000);
});
