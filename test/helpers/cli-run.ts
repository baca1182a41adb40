import { spawn } from 'node:child_process';
import { inject } from 'vitest';
import type { Config } from '../../src/config.js';
import { CLI_JS } from './dist.js';

export interface CliRun {
  code: number | null;
  out: string;
  err: string;
}

/** The built `crier` as a real process, on the run's private Redis and the config's prefix and data dir. */
export function runCli(config: Config, args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  const env = { PATH: process.env.PATH, REDIS_URL: inject('redisUrl'), CRIER_CONFIG: config.configFile, CRIER_DATA_DIR: config.dataDir, CRIER_USER: 'alice', LOG_LEVEL: 'warn', ...extraEnv };
  return spawnCli(args, env);
}

/** The built `crier` as a real process with exactly this environment; resolves when it has exited. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI_JS, ...args], { env, cwd });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}
