import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Account } from '../domain/accounts.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RedisHandle } from '../redis/connection.js';
import type { Scheduler } from '../scheduler.js';

/** What the API and dashboard routes share: one scheduler per server, the clock, Redis. */
export interface ServerDeps {
  config: Config;
  handle: RedisHandle;
  log: Logger;
  scheduler: Scheduler;
  now: () => Date;
}

/** The signed-in account; the guard has already refused requests without one on private routes. */
export function actor(req: FastifyRequest): Account {
  if (!req.account) throw new UserError('sign in first', 'CRIER_ERR_FORBIDDEN');
  return req.account;
}
