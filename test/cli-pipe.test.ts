import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import type { Config } from '../src/config.js';
import { importSubscribers } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { CLI_JS } from './helpers/dist.js';

/** `crier … | head`: when the reader goes away the command exits quietly (0, nothing on stderr), never a stack trace. */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let config: Config;
let local: TestCrier;
let env: NodeJS.ProcessEnv;
let campaignId: string;

/**
 * Runs the CLI with its stdout read for `keep` bytes and then closed (`head -c`):
 * keep 0 closes the pipe before the command writes anything, so its first write meets EPIPE.
 */
function crierClosing(args: string[], keep: number): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI_JS, ...args], { cwd: os.tmpdir(), env });
    let stdout = '';
    let stderr = '';
    if (keep === 0) p.stdout.destroy();
    else
      p.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.length >= keep) p.stdout.destroy();
      });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  config = testConfig();
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: inject('redisUrl'),
    CRIER_CONFIG: config.configFile,
    CRIER_DATA_DIR: config.dataDir,
    CRIER_USER: 'tester',
    LOG_LEVEL: 'warn',
  };
  local = await startCrier(config, { workers: false });
  const c = await local.create(`title: Piped\nkind: social\nsend_at: ${londonIn(30 * 24 * 3600_000)}\nchannels:\n  mastodon: { text: "hi" }\n`, { actor: 'tester' });
  campaignId = c.id;
  // A list big enough (≈ 1.5 MB exported) that the export is still writing when the reader leaves.
  const file = path.join(config.dataDir, 'many.csv');
  writeFileSync(file, `email,name,area,topics\n${Array.from({ length: 20_000 }, (_, i) => `p${i}@pipe.example,Person ${i},Rugby,fraud\n`).join('')}`);
  await importSubscribers(local.handle.redis, local.handle.prefix, file, 'many', { rejectsDir: config.dataDir, onEvent: undefined });
}, 60_000);

afterAll(async () => {
  await local?.close();
});

describe.concurrent('a reader that goes away (crier … | head)', () => {
  const commands: Array<[string, () => string[]]> = [
    ['campaign list', () => ['campaign', 'list']],
    ['campaign list --json', () => ['campaign', 'list', '--json']],
    ['campaign show', () => ['campaign', 'show', campaignId]],
    ['audit', () => ['audit']],
    ['audit --json', () => ['audit', '--json']],
    ['subscribers export', () => ['subscribers', 'export', '--list', 'many']],
  ];
  for (const [name, args] of commands) {
    it(`${name}: pipe closed before the first line → exit 0, stderr empty`, async ({ expect }) => {
      const r = await crierClosing(args(), 0);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  }

  it('subscribers export of 20,000 rows: reader leaves after the first chunk → exit 0, quietly, without writing the rest', async ({ expect }) => {
    const r = await crierClosing(['subscribers', 'export', '--list', 'many'], 1);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('email,name,area,topics')).toBe(true);
  });
});
