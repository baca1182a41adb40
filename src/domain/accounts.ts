import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import type { Redis } from 'ioredis';
import { UserError } from '../errors.js';
import { emailProblem, normaliseEmail } from './audience-keys.js';

/**
 * The team's accounts: an email, a role, an argon2id password hash, API
 * tokens (only their sha256 is stored: a token is 32 random bytes, so a
 * slow hash adds nothing) and server-side sessions (a random id in the
 * encrypted cookie; deleting it in Redis ends the session everywhere).
 */

export const ROLES = ['viewer', 'editor', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** viewer < editor < approver < admin: each role can do what the ones before it can. */
export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export function parseRole(text: string): Role {
  if (!(ROLES as readonly string[]).includes(text)) {
    throw new UserError(`unknown role "${text}" (one of ${ROLES.join(', ')})`, 'CRIER_ERR_INPUT', { field: '--role' });
  }
  return text as Role;
}

export interface Account {
  email: string;
  role: Role;
  createdAt: string;
  /** Set for a password made by `crier users add`: the first login must choose a new one. */
  mustChangePassword: boolean;
}

export interface ApiToken {
  name: string;
  email: string;
  createdAt: string;
}

/** Sessions last this long without use (sliding). */
export const SESSION_TTL_SECONDS = 12 * 3600;
export const MIN_PASSWORD_LENGTH = 12;

function keys(prefix: string) {
  return {
    user: (email: string) => `${prefix}:user:${email}`,
    users: `${prefix}:users`,
    /** sha256(token) → JSON ApiToken */
    tokens: `${prefix}:tokens`,
    userTokens: (email: string) => `${prefix}:user:${email}:tokens`,
    session: (id: string) => `${prefix}:session:${id}`,
    userSessions: (email: string) => `${prefix}:user:${email}:sessions`,
  };
}

export function checkAccountEmail(email: string): string {
  const e = normaliseEmail(email);
  const problem = emailProblem(e);
  if (problem) throw new UserError(`${problem}: "${email}"`, 'CRIER_ERR_INPUT', { field: 'email' });
  return e;
}

function toAccount(h: Record<string, string>): Account | null {
  if (!h.email || !(ROLES as readonly string[]).includes(h.role ?? '')) return null;
  return { email: h.email, role: h.role as Role, createdAt: h.created_at ?? '', mustChangePassword: h.must_change === '1' };
}

export async function getAccount(redis: Redis, prefix: string, email: string): Promise<Account | null> {
  return toAccount(await redis.hgetall(keys(prefix).user(normaliseEmail(email))));
}

export async function listAccounts(redis: Redis, prefix: string): Promise<Account[]> {
  const emails = await redis.smembers(keys(prefix).users);
  const pipe = redis.pipeline();
  for (const e of emails.sort()) pipe.hgetall(keys(prefix).user(e));
  const rows = (await pipe.exec()) ?? [];
  return rows.map(([, h]) => toAccount(h as Record<string, string>)).filter((a): a is Account => a !== null);
}

/** A readable one-time password: 20 characters from an alphabet without look-alikes (~110 bits). */
export function newPassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(20);
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

/** Adds an account (or resets an existing one's role and password); returns the one-time password. */
export async function addAccount(redis: Redis, prefix: string, email: string, role: Role, now: Date): Promise<string> {
  const e = checkAccountEmail(email);
  const password = newPassword();
  const hashed = await argon2Hash(password);
  const k = keys(prefix);
  await redis
    .multi()
    .hset(k.user(e), { email: e, role, password: hashed, must_change: '1', created_at: now.toISOString() })
    .sadd(k.users, e)
    .exec();
  await endSessions(redis, prefix, e);
  return password;
}

export async function removeAccount(redis: Redis, prefix: string, email: string): Promise<boolean> {
  const e = normaliseEmail(email);
  const k = keys(prefix);
  const tokenHashes = await redis.smembers(k.userTokens(e));
  await endSessions(redis, prefix, e);
  const [[, removed] = []] = (await redis
    .multi()
    .srem(k.users, e)
    .del(k.user(e), k.userTokens(e))
    .hdel(k.tokens, ...(tokenHashes.length ? tokenHashes : ['-']))
    .exec()) ?? [];
  return removed === 1;
}

// A hash of a password nobody has: verifying against it costs the same as a real check, so timing does not say which emails exist.
let decoy: Promise<string> | undefined;

/** The account when the password is right, else null (same work either way). */
export async function checkPassword(redis: Redis, prefix: string, email: string, password: string): Promise<Account | null> {
  const h = await redis.hgetall(keys(prefix).user(normaliseEmail(email)));
  const account = toAccount(h);
  if (!account || !h.password) {
    decoy ??= argon2Hash(randomBytes(16).toString('hex'));
    await argon2Verify(await decoy, password).catch(() => false);
    return null;
  }
  const ok = await argon2Verify(h.password, password).catch(() => false);
  return ok ? account : null;
}

export async function setPassword(redis: Redis, prefix: string, email: string, password: string): Promise<void> {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new UserError(`the password must be at least ${MIN_PASSWORD_LENGTH} characters`, 'CRIER_ERR_INPUT', { field: 'password' });
  }
  const e = normaliseEmail(email);
  await redis.hset(keys(prefix).user(e), { password: await argon2Hash(password), must_change: '0' });
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new API token for the account; only its hash is kept, so this is the one time it is seen. */
export async function createToken(redis: Redis, prefix: string, email: string, name: string, now: Date): Promise<string> {
  const e = normaliseEmail(email);
  if (!(await getAccount(redis, prefix, e))) throw new UserError(`no account for ${e} (add it with \`crier users add ${e} --role ROLE\`)`, 'CRIER_ERR_NOT_FOUND');
  const token = `crier_${randomBytes(32).toString('base64url')}`;
  const h = tokenHash(token);
  const k = keys(prefix);
  const value: ApiToken = { name, email: e, createdAt: now.toISOString() };
  await redis.multi().hset(k.tokens, h, JSON.stringify(value)).sadd(k.userTokens(e), h).exec();
  return token;
}

/** The account a bearer token belongs to, or null. */
export async function accountForToken(redis: Redis, prefix: string, token: string): Promise<Account | null> {
  if (!/^crier_[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const raw = await redis.hget(keys(prefix).tokens, tokenHash(token));
  if (!raw) return null;
  const t = JSON.parse(raw) as ApiToken;
  return getAccount(redis, prefix, t.email);
}

/** Starts a session; the id goes in the encrypted cookie. */
export async function startSession(redis: Redis, prefix: string, email: string): Promise<string> {
  const id = randomBytes(24).toString('base64url');
  const k = keys(prefix);
  await redis.multi().set(k.session(id), email, 'EX', SESSION_TTL_SECONDS).sadd(k.userSessions(email), id).exec();
  return id;
}

/** The account of a live session (and extends it), or null when it ended or never was. */
export async function sessionAccount(redis: Redis, prefix: string, id: string): Promise<Account | null> {
  if (!/^[A-Za-z0-9_-]{32}$/.test(id)) return null;
  const k = keys(prefix);
  const email = await redis.getex(k.session(id), 'EX', SESSION_TTL_SECONDS);
  return email ? getAccount(redis, prefix, email) : null;
}

export async function endSession(redis: Redis, prefix: string, id: string): Promise<void> {
  const k = keys(prefix);
  const email = await redis.getdel(k.session(id));
  if (email) await redis.srem(k.userSessions(email), id);
}

/** Ends every session of an account (removed, or its password was reset). */
export async function endSessions(redis: Redis, prefix: string, email: string): Promise<void> {
  const k = keys(prefix);
  const ids = await redis.smembers(k.userSessions(email));
  if (ids.length) await redis.del(...ids.map((id) => k.session(id)), k.userSessions(email));
}

/** Constant-time string comparison (secrets in URLs). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
