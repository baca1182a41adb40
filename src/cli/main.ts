#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isCrierError } from '../errors.js';
import { registerAuditCommand } from './audit.js';
import { registerCampaignCommands } from './campaign.js';
import { OutputClosed, watchStdout } from './output.js';
import { registerNewsletterCommands } from './newsletter.js';
import { registerDigestCommand } from './digest.js';
import { registerRunCommands } from './run.js';
import { registerSubscriberCommands } from './subscribers.js';
import { registerUserCommands } from './users.js';
import { registerMetricsCommands } from './metrics.js';

const program = new Command('crier')
  .description('Multi-channel communications scheduler and measures-of-success collector')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerRunCommands(program);
registerCampaignCommands(program);
registerSubscriberCommands(program);
registerAuditCommand(program);
registerUserCommands(program);
registerMetricsCommands(program);
registerNewsletterCommands(program);
registerDigestCommand(program);

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
