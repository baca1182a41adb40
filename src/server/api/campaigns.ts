import type { FastifyPluginAsync } from 'fastify';
import { campaignView } from '../../cli/campaign.js';
import { getCampaign, listCampaigns } from '../../domain/campaigns.js';
import { parseLocalTime } from '../../time.js';
import { actor, type ServerDeps } from '../deps.js';
import { previewCampaign } from '../preview.js';
import { parseCampaignBody } from './campaign-body.js';
import { campaignSchema, errorSchema, idParams } from './schemas.js';

/**
 * /api/v1/campaigns: the CLI's `campaign` commands over HTTP, through the
 * same domain functions and scheduler. The signed-in account is the actor:
 * it is the author of what it creates and cannot approve its own.
 */
export function campaignApi(deps: ServerDeps): FastifyPluginAsync {
  const { handle, scheduler, config } = deps;
  const view = (c: Parameters<typeof campaignView>[1]) => campaignView({ config, redis: handle }, c);
  const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema };
  const tags = ['campaigns'];

  return async (app) => {
    app.get('/campaigns', {
      schema: { tags, summary: 'List campaigns, newest first (as `crier campaign list --json`)', response: { 200: { type: 'array', items: campaignSchema }, ...errors } },
    }, async () => Promise.all((await listCampaigns(handle.redis, handle.prefix)).map(view)));

    app.post('/campaigns', {
      config: { role: 'editor' },
      schema: {
        tags,
        summary: 'Create a campaign from the same shape as a campaign file, as JSON (send_at in local time)',
        body: {
          type: 'object',
          required: ['title', 'kind', 'send_at', 'channels'],
          properties: {
            title: { type: 'string' },
            kind: { type: 'string', enum: ['newsletter', 'community', 'social', 'press'] },
            send_at: { type: 'string', description: '"YYYY-MM-DD HH:mm" local time' },
            timezone: { type: 'string' },
            essential: { type: 'boolean' },
            channels: { type: 'object', additionalProperties: { type: 'object' } },
          },
        },
        response: { 201: campaignSchema, ...errors },
      },
    }, async (req, reply) => {
      const draft = parseCampaignBody(req.body, deps.config, deps.now());
      const c = await scheduler.create(draft, { actor: actor(req).email });
      return reply.code(201).send(await view(c));
    });

    app.get<{ Params: { id: string } }>('/campaigns/:id', {
      schema: { tags, summary: 'One campaign with per-channel counts (as `crier campaign show --json`)', params: idParams, response: { 200: campaignSchema, ...errors } },
    }, async (req) => view(await getCampaign(handle.redis, handle.prefix, req.params.id)));

    app.post<{ Params: { id: string } }>('/campaigns/:id/approve', {
      config: { role: 'approver' },
      schema: { tags, summary: 'Approve as the signed-in account (never the author), or release a held essential campaign', params: idParams, response: { 200: campaignSchema, ...errors } },
    }, async (req) => view(await scheduler.approve(req.params.id, actor(req).email)));

    app.post<{ Params: { id: string } }>('/campaigns/:id/cancel', {
      config: { role: 'editor' },
      schema: { tags, summary: 'Cancel: it never starts, or stops sending', params: idParams, response: { 200: campaignSchema, ...errors } },
    }, async (req) => {
      await scheduler.cancel(req.params.id, actor(req).email);
      return view(await getCampaign(handle.redis, handle.prefix, req.params.id));
    });

    app.post<{ Params: { id: string }; Body: { at: string } }>('/campaigns/:id/reschedule', {
      config: { role: 'editor' },
      schema: {
        tags,
        summary: 'Move a scheduled, held or unapproved campaign to a new local time',
        params: idParams,
        body: { type: 'object', required: ['at'], additionalProperties: false, properties: { at: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}(:\\d{2})?$', description: '"YYYY-MM-DD HH:mm" in the campaign\'s zone' } } },
        response: { 200: campaignSchema, ...errors },
      },
    }, async (req) => {
      const current = await getCampaign(handle.redis, handle.prefix, req.params.id);
      const at = parseLocalTime(req.body.at, current.timezone, { field: 'at' });
      return view(await scheduler.reschedule(req.params.id, at, actor(req).email));
    });

    app.post<{ Params: { id: string } }>('/campaigns/:id/retry', {
      config: { role: 'editor' },
      schema: {
        tags,
        summary: 'Send the failed deliveries of a failed or partially failed campaign again',
        params: idParams,
        response: { 200: { type: 'object', properties: { deliveries: { type: 'integer' }, channels: { type: 'array', items: { type: 'string' } } } }, ...errors },
      },
    }, async (req) => scheduler.retry(req.params.id, actor(req).email));

    app.post<{ Params: { id: string } }>('/campaigns/:id/preview', {
      schema: {
        tags,
        summary: 'What each channel would send (email subject and HTML to a sample subscriber, posts with their weighted length)',
        params: idParams,
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                channel: { type: 'string' },
                subject: { type: 'string' },
                html: { type: 'string' },
                text: { type: 'string' },
                parts: { type: 'array', items: { type: 'object', properties: { text: { type: 'string' }, length: { type: 'integer' } } } },
                length: { type: 'integer' },
                limit: { type: 'integer' },
                problems: { type: 'array', items: { type: 'string' } },
              },
            },
          },
          ...errors,
        },
      },
    }, async (req) => {
      const c = await getCampaign(handle.redis, handle.prefix, req.params.id);
      return previewCampaign(deps.config, c.channels, deps.now());
    });
  };
}
