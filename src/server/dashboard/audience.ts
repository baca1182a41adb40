import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { checkListName, type ImportResult } from '../../domain/audience.js';
import { UserError } from '../../errors.js';
import { ObservationStore } from '../../domain/observations.js';
import { catalogueFor } from '../../metrics-config.js';
import { importCsv, listSummaries } from '../api/audience.js';
import { listGrowth } from '../measures-summary.js';
import { actor, type ServerDeps } from '../deps.js';
import { fragment, render } from './render.js';

/**
 * The audience page: lists and sizes, and CSV import with a live progress bar
 * (the import runs in this server process; the page polls it) and the
 * rejected rows to download.
 */

interface ImportJob {
  id: string;
  list: string;
  bytes: number;
  /** The file line the import has reached (the bar is lines done of lines in the file). */
  lines: number;
  totalLines: number;
  soFar: ImportResult;
  done: boolean;
  error?: string;
  rejectsName?: string;
}

const MAX_UPLOAD = 200 * 1024 * 1024;

export function dashboardAudience(deps: ServerDeps): FastifyPluginAsync {
  const jobs = new Map<string, ImportJob>();
  const rejectsDir = path.join(deps.config.dataDir, 'rejects');
  return async (app) => {
    app.get('/dashboard/audience', async (req, reply) => {
      const lists = await listSummaries(deps.handle);
      const catalogue = catalogueFor(deps.config.metrics, deps.config.configFile);
      const store = new ObservationStore(deps.handle.redis, deps.handle.prefix, catalogue, { zone: deps.config.timezone });
      const growth = await listGrowth(store, lists.map((l) => l.name), deps.now(), deps.config.timezone);
      return render(req, reply, 'audience', 'Audience', { lists, growth });
    });

    app.post('/dashboard/audience/import', { config: { role: 'editor' } }, async (req, reply) => {
      const who = actor(req).email;
      let list = '';
      let csv: Buffer | undefined;
      let filename = 'upload.csv';
      let error: string | undefined;
      try {
        for await (const part of req.parts({ limits: { fileSize: MAX_UPLOAD, files: 1 } })) {
          if (part.type === 'file') {
            csv = await part.toBuffer();
            filename = part.filename || filename;
          } else if (part.fieldname === 'list') {
            list = String(part.value).trim();
          }
        }
      } catch (err) {
        // busboy's own errors (no boundary, a body cut short) carry no status: they are a broken upload, not a fault here.
        if ((err as { statusCode?: number }).statusCode !== undefined) throw err;
        throw new UserError(`the upload is not a readable form (${(err as Error).message}): choose the file and send it again`, 'CRIER_ERR_INPUT', { field: 'file' });
      }
      try {
        checkListName(list);
        if (!csv || csv.length === 0) throw new UserError('choose a CSV file to import', 'CRIER_ERR_INPUT', { field: 'file' });
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        error = err.plain;
      }
      if (error || !csv) return fragment(req, reply, 'import', { job: undefined, error });
      const job: ImportJob = {
        id: randomBytes(8).toString('hex'),
        list,
        bytes: csv.length,
        lines: 0,
        totalLines: csv.toString('latin1').split('\n').filter((l) => l.trim()).length,
        soFar: { imported: 0, updated: 0, rejected: 0, suppressed: 0 },
        done: false,
      };
      jobs.set(job.id, job);
      void importCsv(deps, csv, list, who, `dashboard:${filename}`.slice(0, 200), (soFar, line) => {
        job.soFar = { ...soFar };
        job.lines = line;
      }).then(
        (r) => {
          job.soFar = r;
          job.lines = job.totalLines;
          job.rejectsName = r.rejectsFile ? path.basename(r.rejectsFile) : undefined;
          job.done = true;
        },
        (err: unknown) => {
          job.error = err instanceof UserError ? err.plain : 'the import failed (see the server log)';
          if (!(err instanceof UserError)) req.log.error({ err }, 'dashboard import failed');
          job.done = true;
        },
      );
      // Finished imports are forgotten after an hour.
      setTimeout(() => jobs.delete(job.id), 3600_000).unref();
      return fragment(req, reply, 'import', { job });
    });

    app.get<{ Params: { id: string } }>('/dashboard/audience/imports/:id', async (req, reply) => {
      const job = jobs.get(req.params.id);
      if (!job) return fragment(req, reply, 'import', { job: undefined, error: 'that import is no longer known (the server restarted or it finished over an hour ago)' });
      return fragment(req, reply, 'import', { job, pct: job.totalLines ? Math.min(100, Math.round((100 * job.lines) / job.totalLines)) : 0 });
    });

    app.get<{ Params: { name: string } }>('/dashboard/audience/rejects/:name', { config: { role: 'editor' } }, async (req, reply) => {
      const name = req.params.name;
      const file = path.join(rejectsDir, name);
      if (!/^[A-Za-z0-9._-]+\.rejects\.csv$/.test(name) || !existsSync(file)) throw new UserError('no such rejects file', 'CRIER_ERR_NOT_FOUND');
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(createReadStream(file));
    });
  };
}
