import type { Command } from 'commander';
import { appendAudit } from '../domain/audit.js';
import { UserError } from '../errors.js';
import { withContext } from './context.js';

// Loaded when one of these commands runs: argon2's native module and ical-generator would slow every other command's start.
const accounts = () => import('../domain/accounts.js');
const feed = () => import('../domain/calendar-feed.js');

/**
 * Accounts for the dashboard and API, run by the local operator (who holds
 * Redis), audited under CRIER_USER:
 *   crier users add EMAIL --role ROLE   one-time password on the last line
 *   crier users list | crier users remove EMAIL
 *   crier tokens create EMAIL [--name N]   API token on the last line (stored hashed)
 *   crier calendar url [--rotate]          the .ics feed's URL on the last line
 */

export function registerUserCommands(program: Command): void {
  const users = program.command('users').description('dashboard and API accounts (roles: viewer, editor, approver, admin)');

  users
    .command('add')
    .argument('<email>')
    .requiredOption('--role <role>', 'viewer | editor | approver | admin')
    .description('add an account (or reset one): prints a one-time password last; the first sign-in chooses a new one')
    .action(async (email: string, opts: { role: string }) => {
      const { addAccount, checkAccountEmail, parseRole } = await accounts();
      const role = parseRole(opts.role);
      const address = checkAccountEmail(email);
      await withContext(async (ctx) => {
        const password = await addAccount(ctx.redis.redis, ctx.redis.prefix, address, role, new Date());
        await appendAudit(ctx.redis.redis, ctx.redis.prefix, { actor: ctx.config.user, action: 'account.add', subject: address, detail: { role } });
        ctx.out(`added ${address} as ${role}; sign in at ${ctx.config.publicUrl}/login with this one-time password (shown once):`);
        ctx.out(password);
      });
    });

  users
    .command('list')
    .option('--json', 'machine-readable output')
    .description('list accounts and roles')
    .action(async (opts: { json?: boolean }) => {
      const { listAccounts } = await accounts();
      await withContext(async (ctx) => {
        const all = await listAccounts(ctx.redis.redis, ctx.redis.prefix);
        if (opts.json) return ctx.out(JSON.stringify(all.map((a) => ({ email: a.email, role: a.role, created_at: a.createdAt, must_change_password: a.mustChangePassword }))));
        if (all.length === 0) ctx.out('no accounts yet: crier users add EMAIL --role admin');
        for (const a of all) ctx.out(`${a.email.padEnd(40)} ${a.role.padEnd(9)}${a.mustChangePassword ? ' (has not signed in yet)' : ''}`);
      });
    });

  users
    .command('remove')
    .argument('<email>')
    .description('remove an account: its sessions end and its API tokens stop working at once')
    .action(async (email: string) => {
      const { removeAccount } = await accounts();
      await withContext(async (ctx) => {
        const address = email.trim().toLowerCase();
        if (!(await removeAccount(ctx.redis.redis, ctx.redis.prefix, address))) throw new UserError(`no account for ${address} (see \`crier users list\`)`, 'CRIER_ERR_NOT_FOUND');
        await appendAudit(ctx.redis.redis, ctx.redis.prefix, { actor: ctx.config.user, action: 'account.remove', subject: address });
        ctx.out(`removed ${address}`);
      });
    });

  program
    .command('tokens')
    .description('API tokens (Authorization: Bearer …)')
    .command('create')
    .argument('<email>', 'the account the token acts as (its role applies)')
    .option('--name <name>', 'what the token is for', 'api')
    .description('create an API token; prints it last (only a hash is stored: it cannot be shown again)')
    .action(async (email: string, opts: { name: string }) => {
      const { createToken } = await accounts();
      await withContext(async (ctx) => {
        const address = email.trim().toLowerCase();
        const token = await createToken(ctx.redis.redis, ctx.redis.prefix, address, opts.name, new Date());
        await appendAudit(ctx.redis.redis, ctx.redis.prefix, { actor: ctx.config.user, action: 'token.create', subject: address, detail: { name: opts.name } });
        ctx.out(`token "${opts.name}" for ${address} (shown once; send it as "Authorization: Bearer <token>"):`);
        ctx.out(token);
      });
    });

  program
    .command('calendar')
    .description("the team's calendar feed (.ics) of scheduled and sent campaigns")
    .command('url')
    .option('--rotate', 'make a new secret: the old URL stops working')
    .description("print the feed's URL (last line); subscribe to it in Outlook or any calendar")
    .action(async (opts: { rotate?: boolean }) => {
      const { calendarSecret, calendarUrl } = await feed();
      await withContext(async (ctx) => {
        const secret = await calendarSecret(ctx.redis.redis, ctx.redis.prefix, opts.rotate === true);
        if (opts.rotate) {
          await appendAudit(ctx.redis.redis, ctx.redis.prefix, { actor: ctx.config.user, action: 'calendar.rotate', subject: 'calendar' });
          ctx.out('new calendar secret: the previous URL no longer works');
        }
        ctx.out(calendarUrl(ctx.config.publicUrl, secret));
      });
    });
}
