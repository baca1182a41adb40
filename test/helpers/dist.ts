import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built `crier` command that tests spawn as a real process. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_JS = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ (tsconfig.build.json) unless it is newer than every source, so
 * `npx vitest run` alone never spawns a stale CLI. Called once by the global setup.
 */
export function ensureBuilt(): void {
  const sources = Math.max(...['src', 'channels', 'workers'].map((d) => newestSource(path.join(ROOT, d))));
  if (existsSync(CLI_JS) && statSync(CLI_JS).mtimeMs > sources) return;
  // tsc emits even with type errors elsewhere; typecheck is its own step. Only a missing CLI is fatal.
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(CLI_JS) || statSync(CLI_JS).mtimeMs <= sources) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
}
