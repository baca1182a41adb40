/** JSON schemas shared by the API routes: fastify validates with them and @fastify/swagger publishes them. */

export const errorSchema = {
  type: 'object',
  description: 'Every error: a stable code and a message for people; `errors` lists each mistake in a body',
  properties: {
    code: { type: 'string' },
    message: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
  },
  required: ['code', 'message'],
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[a-z0-9]{1,40}$' } },
} as const;

const counts = {
  type: 'object',
  properties: { sent: { type: 'integer' }, failed: { type: 'integer' }, pending: { type: 'integer' }, skipped: { type: 'integer' }, error: { type: 'string' } },
} as const;

/** As `crier campaign show --json`. */
export const campaignSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    title: { type: 'string' },
    kind: { type: 'string' },
    status: { type: 'string', enum: ['draft', 'awaiting_approval', 'scheduled', 'held', 'sending', 'sent', 'partially_failed', 'failed', 'cancelled'] },
    send_at: { type: 'string', format: 'date-time' },
    channels: { type: 'object', additionalProperties: counts },
    reason: { type: 'string' },
    author: { type: 'string' },
    approved_by: { type: 'string' },
    essential: { type: 'boolean' },
  },
} as const;

export const listParams = {
  type: 'object',
  required: ['list'],
  properties: { list: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } },
} as const;
