import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { audienceAuditHook } from '../../cli/subscribers.js';
import { audienceKeys, checkListName, countAudience, exportList, forgetSubscriber, importSubscribers, listNames, type ImportResult } from '../../domain/audience.js';
import type { RedisHandle } from '../../redis/connection.js';
import { actor, type ServerDeps } from '../deps.js';
import { errorSchema, listParams } from './schemas.js';

/** /api/v1/audience: lists and their sizes, CSV import and export, erasure; each change audited as the signed-in account. */

export interface ListSummary {
  name: string;
  /** Everyone on the list, unsubscribed included. */
  members: number;
  subscribed: number;
  unsubscribed: number;
}

export async function listSummaries(handle: RedisHandle): Promise<ListSummary[]> {
  const k = audienceKeys(handle.prefix);
  return Promise.all(
    (await listNames(handle.redis, handle.prefix)).map(async (name) => {
      const [members, subscribed] = await Promise.all([handle.redis.zcard(k.list(name)), countAudience(handle.redis, handle.prefix, { list: name })]);
      return { name, members, subscribed, unsubscribed: members - subscribed };
    }),
  );
}

/** Imports CSV bytes through the same streaming importer as `crier subscribers import` (it reads files, so the bytes land in one first). */
export async function importCsv(deps: ServerDeps, csv: Buffer, list: string, who: string, source: string, onProgress?: (soFar: Readonly<ImportResult>, line: number) => void): Promise<ImportResult> {
  const dir = path.join(deps.config.dataDir, 'uploads');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${randomBytes(8).toString('hex')}.csv`);
  await writeFile(file, csv, { mode: 0o600 });
  try {
    return await importSubscribers(deps.handle.redis, deps.handle.prefix, file, list, {
      source,
      rejectsDir: path.join(deps.config.dataDir, 'rejects'),
      onEvent: audienceAuditHook({ redis: deps.handle }, who),
      onProgress,
    });
  } finally {
    await rm(file, { force: true });
  }
}

const MAX_CSV_BYTES = 200 * 1024 * 1024;

export function audienceApi(deps: ServerDeps): FastifyPluginAsync {
  const { handle } = deps;
  const tags = ['audience'];
  const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema };
  return async (app) => {
    app.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'buffer', bodyLimit: MAX_CSV_BYTES }, (_req, body, done) => done(null, body));

    app.get('/audience/lists', {
      schema: {
        tags,
        summary: 'Every list with its size: members, subscribed, unsubscribed',
        response: { 200: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, members: { type: 'integer' }, subscribed: { type: 'integer' }, unsubscribed: { type: 'integer' } } } }, ...errors },
      },
    }, async () => listSummaries(handle));

    app.post<{ Params: { list: string }; Querystring: { source?: string }; Body: Buffer }>('/audience/lists/:list/import', {
      config: { role: 'editor' },
      bodyLimit: MAX_CSV_BYTES,
      schema: {
        tags,
        summary: 'Import subscribers from CSV (body text/csv; columns email,name,area,topics), as `crier subscribers import`',
        params: listParams,
        querystring: { type: 'object', additionalProperties: false, properties: { source: { type: 'string', maxLength: 200, description: 'consent source recorded on new subscribers (default api-import)' } } },
        response: {
          200: { type: 'object', properties: { imported: { type: 'integer' }, updated: { type: 'integer' }, rejected: { type: 'integer' }, suppressed: { type: 'integer' }, rejects_file: { type: 'string' }, encoding_note: { type: 'string', description: 'set when some lines were not UTF-8: which, and how they were read' } } },
          ...errors,
        },
      },
    }, async (req, reply) => {
      if (!Buffer.isBuffer(req.body) || req.body.length === 0) return reply.code(400).send({ code: 'CRIER_ERR_INPUT', message: 'send the CSV as the body with Content-Type: text/csv' });
      const r = await importCsv(deps, req.body, checkListName(req.params.list), actor(req).email, req.query.source ?? 'api-import');
      return { imported: r.imported, updated: r.updated, rejected: r.rejected, suppressed: r.suppressed, ...(r.rejectsFile ? { rejects_file: path.basename(r.rejectsFile) } : {}), ...(r.encodingNote ? { encoding_note: r.encodingNote } : {}) };
    });

    app.get<{ Params: { list: string } }>('/audience/lists/:list/export', {
      config: { role: 'editor' },
      schema: { tags, summary: 'The list as CSV (as `crier subscribers export`)', params: listParams, response: errors },
    }, async (req, reply) => {
      // Streamed with backpressure: a big list never sits in memory. An unknown list fails before the first line.
      const out = new PassThrough();
      let started = () => {};
      const first = new Promise<void>((resolve) => (started = resolve));
      const run = exportList(handle.redis, handle.prefix, checkListName(req.params.list), async (line) => {
        started();
        if (!out.write(`${line}\n`)) await once(out, 'drain');
      });
      await Promise.race([first, run]);
      run.then(() => out.end(), (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${req.params.list}.csv"`).send(out);
    });

    app.post<{ Body: { email: string } }>('/audience/forget', {
      config: { role: 'editor' },
      schema: {
        tags,
        summary: 'Erase a subscriber (GDPR): personal data removed, a hash kept on the suppression list',
        body: { type: 'object', required: ['email'], additionalProperties: false, properties: { email: { type: 'string', minLength: 3, maxLength: 254 } } },
        response: { 200: { type: 'object', properties: { forgotten: { type: 'boolean' } } }, ...errors },
      },
    }, async (req) => {
      const found = await forgetSubscriber(handle.redis, handle.prefix, req.body.email, { onEvent: audienceAuditHook({ redis: handle }, actor(req).email) });
      return { forgotten: found };
    });
  };
}
