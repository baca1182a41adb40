import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../src/node-flags.js';
import { ROOT } from './helpers/dist.js';

/**
 * Every way this repository starts a long-running Crier gives it NODE_FLAGS (the benchmarks' workers
 * take them from src/node-flags.ts), and the flags do what they are there for.
 */

/** The largest young generation a process reaches while it keeps ~20 MB of short-lived objects alive. */
const PROBE = `const v8 = require('node:v8'); const keep = []; let max = 0;
for (let i = 0; i < 2e6; i++) {
  keep.push({ i, a: [i] }); if (keep.length > 200000) keep.splice(0, 100000);
  if (i % 10000 === 0) max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
}
process.stdout.write(String(max / 2 ** 20));`;

const youngMb = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  Number(execFileSync(process.execPath, [...args, '-e', PROBE], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' }));

describe('node flags of a long-running Crier', () => {
  it('npm start passes them to node', () => {
    const start = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toContain(`node ${NODE_FLAGS.join(' ')} dist/src/cli/main.js start`);
  });

  it('the Docker image sets them in NODE_OPTIONS, so any command run in it gets them', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(new RegExp(`^ENV NODE_OPTIONS=${NODE_FLAGS.join(' ')}$`, 'm'));
  });

  it('halve the young generation, on the command line and in NODE_OPTIONS', () => {
    const plain = youngMb([]);
    expect(youngMb([...NODE_FLAGS])).toBeLessThanOrEqual(plain / 2);
    expect(youngMb([], { NODE_OPTIONS: NODE_FLAGS.join(' ') })).toBeLessThanOrEqual(plain / 2);
  });
});
