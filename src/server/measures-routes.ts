import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { ObservationStore } from '../domain/observations.js';
import { exportObservations, type ExportFormat } from '../domain/metrics-io.js';
import { parsePeriod } from '../domain/periods.js';
import { composeDigest } from '../digest/send.js';
import { weekBefore } from '../digest/model.js';
import { previewHtml } from '../digest/render.js';
import { UserError } from '../errors.js';
import { catalogueFor } from '../metrics-config.js';
import { errorSchema } from './api/schemas.js';
import { render } from './dashboard/render.js';
import type { ServerDeps } from './deps.js';
import { sparkline, summariseMeasure } from './measures-summary.js';

/**
 * Measures of success: /api/v1/measures (catalogue), /api/v1/measures/observations
 * and /api/v1/measures/export (as `crier metrics export`), and the dashboard page
 * grouped by the strategy's headings.
 */

function storeOf(deps: ServerDeps) {
  const catalogue = catalogueFor(deps.config.metrics, deps.config.configFile);
  return { catalogue, store: new ObservationStore(deps.handle.redis, deps.handle.prefix, catalogue, { zone: deps.config.timezone }) };
}

const rangeQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    measure: { type: 'string', pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)+$' },
    from: { type: 'string', description: 'a period: YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn (local time)' },
    to: { type: 'string', description: 'a period, inclusive' },
  },
} as const;

function range(deps: ServerDeps, q: { from?: string; to?: string }) {
  const zone = deps.config.timezone;
  const from = q.from ? parsePeriod(q.from, zone, { field: 'from' }).start : undefined;
  const to = q.to ? parsePeriod(q.to, zone, { field: 'to' }).end : undefined;
  if (from && to && to <= from) throw new UserError('"to" is before "from"', 'CRIER_ERR_INPUT', { field: 'to' });
  return { from, to };
}

export function measuresApi(deps: ServerDeps): FastifyPluginAsync {
  const tags = ['measures'];
  const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema };
  return async (app) => {
    app.get('/measures', {
      schema: { tags, summary: 'The catalogue of measures (as `crier metrics measures`)', response: { 200: { type: 'array', items: { type: 'object', additionalProperties: true } }, ...errors } },
    }, async () => storeOf(deps).catalogue.list());

    app.get<{ Querystring: { measure?: string; from?: string; to?: string } }>('/measures/observations', {
      schema: { tags, summary: "A measure's observations, oldest first; a period with none is simply absent (missing is not zero)", querystring: { ...rangeQuery, required: ['measure'] }, response: { 200: { type: 'array', items: { type: 'object', additionalProperties: true } }, ...errors } },
    }, async (req) => {
      const { catalogue, store } = storeOf(deps);
      const m = catalogue.require(req.query.measure!, { field: 'measure' });
      return store.range(m.name, range(deps, req.query));
    });

    app.get<{ Querystring: { measure?: string; from?: string; to?: string; format?: ExportFormat } }>('/measures/export', {
      schema: {
        tags,
        summary: 'Observations as CSV or NDJSON (as `crier metrics export`)',
        querystring: { ...rangeQuery, properties: { ...rangeQuery.properties, format: { type: 'string', enum: ['csv', 'ndjson'] } } },
        response: errors,
      },
    }, async (req, reply) => {
      const { catalogue, store } = storeOf(deps);
      if (req.query.measure) catalogue.require(req.query.measure, { field: 'measure' });
      const { from, to } = range(deps, req.query);
      const format = req.query.format ?? 'csv';
      const out = new PassThrough();
      void exportObservations(store, catalogue, { from, to, measures: req.query.measure ? [req.query.measure] : undefined, format }, async (line) => {
        if (!out.write(`${line}\n`)) await once(out, 'drain');
      }).then(
        () => out.end(),
        (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
      );
      return reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson').send(out);
    });
  };
}

export function digestPreviewApi(deps: ServerDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { week?: string; format?: 'html' | 'text' } }>('/measures/digest', {
      schema: {
        tags: ['measures'],
        summary: 'Preview of the weekly digest (as `crier digest --preview`): HTML with the trend pictures inline, or its plain-text part; sends nothing',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { week: { type: 'string', pattern: '^\\d{4}-W\\d{2}$', description: 'YYYY-Www (default: last week)' }, format: { type: 'string', enum: ['html', 'text'] } },
        },
        response: { 400: errorSchema, 401: errorSchema },
      },
    }, async (req, reply) => {
      const zone = deps.config.timezone;
      const week = req.query.week ? parsePeriod(req.query.week, zone, { field: 'week' }, 'week') : weekBefore(deps.now(), zone);
      const r = await composeDigest({ config: deps.config, redis: deps.handle.redis, log: deps.log, now: deps.now }, week);
      if (req.query.format === 'text') return reply.type('text/plain; charset=utf-8').send(r.text);
      // The digest is our own HTML, but it is shown as a document, never inside the dashboard.
      return reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; img-src data:; style-src 'unsafe-inline'").send(previewHtml(r));
    });
  };
}

export function measuresPage(deps: ServerDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/dashboard/measures', async (req, reply) => {
      const { catalogue, store } = storeOf(deps);
      const now = deps.now();
      const headings = await Promise.all(
        catalogue.byHeading().map(async ([heading, measures]) => ({
          heading,
          rows: await Promise.all(measures.map(async (m) => {
            const s = await summariseMeasure(store, m, now, deps.config.timezone);
            return { ...s, chart: sparkline(s.trend) };
          })),
        })),
      );
      return render(req, reply, 'measures', 'Measures of success', { headings, zone: deps.config.timezone, fmt: (v: number | null, unit: string) => formatValue(v, unit) });
    });
  };
}

export function formatValue(v: number | null, unit: string): string {
  if (v === null) return 'no data';
  const n = v.toLocaleString('en-GB', { maximumFractionDigits: 1 });
  if (unit === 'percent') return `${n}%`;
  if (unit === 'gbp') return `£${n}`;
  if (unit === 'seconds') return `${n} s`;
  return n;
}
