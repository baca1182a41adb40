/**
 * Every error Crier shows a user is one of these. The class decides the exit
 * code (1 bad input, 2 cannot reach a dependency); the code names the case.
 */
export type ErrorCode =
  | 'CRIER_ERR_CONFIG'
  | 'CRIER_ERR_INPUT'
  | 'CRIER_ERR_NOT_FOUND'
  | 'CRIER_ERR_STATE'
  | 'CRIER_ERR_FORBIDDEN'
  | 'CRIER_ERR_REDIS_MISSING'
  | 'CRIER_ERR_DEPENDENCY';

export interface Where {
  file?: string;
  line?: number;
  field?: string;
}

export function describeWhere(where: Where): string {
  const parts: string[] = [];
  if (where.file) parts.push(where.line ? `${where.file}:${where.line}` : where.file);
  if (where.field) parts.push(`field "${where.field}"`);
  return parts.join(', ');
}

/** A mistake in what the user gave us: exit 1, no stack trace. */
export class UserError extends Error {
  readonly exitCode = 1;
  /** The message without its place. */
  readonly plain: string;
  constructor(
    message: string,
    readonly code: ErrorCode = 'CRIER_ERR_INPUT',
    readonly where: Where = {},
    /** Further mistakes found in the same input: the message has one line per mistake. */
    readonly more: readonly UserError[] = [],
  ) {
    const at = describeWhere(where);
    super([at ? `${at}: ${message}` : message, ...more.map((e) => e.message)].join('\n'));
    this.name = 'UserError';
    this.plain = message;
  }

  /** All the mistakes found in one input as one error: the first one's code and place, every message. */
  static all(errors: readonly UserError[]): UserError {
    const flat = errors.flatMap((e) => [e, ...e.more]).map((e) => (e.more.length ? new UserError(e.plain, e.code, e.where) : e));
    const [first, ...rest] = flat;
    if (!first) throw new Error('UserError.all needs at least one error');
    return rest.length === 0 ? first : new UserError(first.plain, first.code, first.where, rest);
  }
}

/** Something Crier needs (Redis, SMTP) cannot be reached: exit 2. */
export class DependencyError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly code: ErrorCode = 'CRIER_ERR_DEPENDENCY',
  ) {
    super(message);
    this.name = 'DependencyError';
  }
}

export function isCrierError(err: unknown): err is UserError | DependencyError {
  return err instanceof UserError || err instanceof DependencyError;
}
