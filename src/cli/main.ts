#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isCrierError } from '../errors.js';
import { OutputClosed, watchStdout } from './output.js';

const program = new Command('crier')
  .description('Multi-channel communications scheduler and measures-of-success collector')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

type Register = (program: Command) => void;
const run = async (): Promise<Register> => (await import('./run.js')).registerRunCommands;
const users = async (): Promise<Register> => (await import('./users.js')).registerUserCommands;
/**
 * Each top-level command's module, imported only when that command runs: `crier campaign show` need not
 * load the workers and every channel library that `crier start` does. `--help`, `help` and anything
 * unknown load them all, so the help lists every command and commander can suggest the nearest one.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  start: run,
  worker: run,
  campaign: async () => (await import('./campaign.js')).registerCampaignCommands,
  subscribers: async () => (await import('./subscribers.js')).registerSubscriberCommands,
  audit: async () => (await import('./audit.js')).registerAuditCommand,
  users,
  tokens: users,
  calendar: users,
  metrics: async () => (await import('./metrics.js')).registerMetricsCommands,
  newsletter: async () => (await import('./newsletter.js')).registerNewsletterCommands,
  digest: async () => (await import('./digest.js')).registerDigestCommand,
};
const named = process.argv[2];
const loaders = named !== undefined && Object.hasOwn(COMMANDS, named) ? [COMMANDS[named]!] : [...new Set(Object.values(COMMANDS))];
for (const register of await Promise.all(loaders.map((load) => load()))) register(program);

watchStdout();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof OutputClosed) {
    // The reader (head, less) went away: what it wanted was printed.
    process.exitCode = 0;
  } else if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 1;
  } else if (isCrierError(err)) {
    // One line per mistake (a campaign file can have several), each marked as ours.
    for (const line of err.message.split('\n')) process.stderr.write(`crier: ${line}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`crier: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  }
}
