/**
 * The `node` flags a long-running Crier process (`crier start`, `crier worker`) is started with:
 * `npm start`, the Dockerfile (as `NODE_OPTIONS`) and the benchmarks' workers use these, and
 * test/node-flags.test.ts checks that they do.
 *
 * `--max-semi-space-size=8` halves V8's young generation (two 8 MB semi-spaces instead of 16 MB). A
 * worker grows it to its maximum while it loads its modules and keeps it, so this is ~16 MB of every
 * worker's RSS: over a 20,000-message send a worker peaked at ~150 MB by default and 136-138 MB with it,
 * with no more CPU per message (BENCHMARKS.md §3; at 2 MB it cost ~40 % more). V8 fixes the size when the
 * process starts (`v8.setFlagsFromString` later has no effect), so it cannot be set from inside Crier,
 * and the `crier` bin's `#!/usr/bin/env node` cannot carry it (`env -S` is missing from BusyBox):
 * started through the bin, set `NODE_OPTIONS=--max-semi-space-size=8` (README, Scale-out).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
