import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { DateTime } from 'luxon';
import { campaignView, type CampaignView } from '../../cli/campaign.js';
import { roleAtLeast } from '../../domain/accounts.js';
import { getCampaign, listCampaigns, type Campaign } from '../../domain/campaigns.js';
import { UserError } from '../../errors.js';
import { errorList, parseCampaignBody } from '../api/campaign-body.js';
import { actor, type ServerDeps } from '../deps.js';
import { previewCampaign } from '../preview.js';
import { formToCampaign, type ComposeForm } from './compose-form.js';
import { fragment, render } from './render.js';

/** Calendar, campaign list, composer with live preview, and the campaign page with live progress. */

const FINAL = new Set(['sent', 'partially_failed', 'failed', 'cancelled']);
const STATUS_LABEL: Record<string, string> = {
  draft: 'Draft',
  awaiting_approval: 'Awaiting approval',
  scheduled: 'Scheduled',
  held: 'Held (pre-election period)',
  sending: 'Sending',
  sent: 'Sent',
  partially_failed: 'Partly failed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

interface CalendarDay {
  iso: string;
  label: string;
  weekday: string;
  inRange: boolean;
  today: boolean;
  items: Array<{ id: string; title: string; time: string; status: string; statusLabel: string }>;
}

export function calendarDays(campaigns: Campaign[], zone: string, view: 'month' | 'week', anchor: DateTime, now: Date) {
  const start = view === 'month' ? anchor.startOf('month').startOf('week') : anchor.startOf('week');
  const end = view === 'month' ? anchor.endOf('month').endOf('week') : anchor.endOf('week');
  const today = DateTime.fromJSDate(now, { zone }).toISODate();
  const days: CalendarDay[] = [];
  const byIso = new Map<string, CalendarDay>();
  for (let d = start; d <= end; d = d.plus({ days: 1 })) {
    const iso = d.toISODate()!;
    const day: CalendarDay = { iso, label: d.toFormat(view === 'week' ? 'ccc d LLL' : 'd'), weekday: d.toFormat('cccc d LLLL'), inRange: view === 'week' || d.month === anchor.month, today: iso === today, items: [] };
    days.push(day);
    byIso.set(iso, day);
  }
  for (const c of [...campaigns].sort((a, b) => a.sendAt.getTime() - b.sendAt.getTime())) {
    const local = DateTime.fromJSDate(c.sendAt, { zone });
    byIso.get(local.toISODate()!)?.items.push({ id: c.id, title: c.title, time: local.toFormat('HH:mm'), status: c.status, statusLabel: STATUS_LABEL[c.status] ?? c.status });
  }
  const step = view === 'month' ? { months: 1 } : { weeks: 1 };
  return {
    days,
    heading: view === 'month' ? anchor.toFormat('LLLL yyyy') : `Week of ${start.toFormat('d LLLL yyyy')}`,
    prev: anchor.minus(step).toISODate()!,
    next: anchor.plus(step).toISODate()!,
    weekdays: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'],
  };
}

export function dashboardCampaigns(deps: ServerDeps): FastifyPluginAsync {
  const { handle, scheduler, config } = deps;
  const zone = config.timezone;
  const local = (iso: string) => DateTime.fromISO(iso, { zone }).toFormat('ccc d LLL yyyy, HH:mm');

  const campaignPage = async (req: FastifyRequest, v: CampaignView) => {
    const account = actor(req);
    const canApprove = roleAtLeast(account.role, 'approver') && account.email !== v.author && (v.status === 'awaiting_approval' || v.status === 'held');
    const canCancel = roleAtLeast(account.role, 'editor') && ['awaiting_approval', 'scheduled', 'held', 'sending'].includes(v.status);
    const channels = Object.entries(v.channels).map(([name, n]) => {
      const total = n.sent + n.failed + n.pending + n.skipped;
      const pct = (x: number) => (total ? Math.round((1000 * x) / total) / 10 : 0);
      return { name, ...n, total, pct: { sent: pct(n.sent), failed: pct(n.failed), skipped: pct(n.skipped) } };
    });
    return {
      c: v,
      when: `${local(v.send_at)} (${zone})`,
      statusLabel: STATUS_LABEL[v.status] ?? v.status,
      final: FINAL.has(v.status),
      channels,
      canApprove,
      ownCampaign: account.email === v.author,
      canCancel,
    };
  };

  const composeData = (form: Partial<ComposeForm>, extra: Record<string, unknown> = {}) => ({
    f: form,
    previews: previewCampaign(config, formToCampaign(form).channels, deps.now()),
    zone,
    ...extra,
  });

  return async (app) => {
    app.get('/dashboard', async (_req, reply) => reply.redirect('/dashboard/calendar', 303));

    app.get<{ Querystring: { view?: string; date?: string } }>('/dashboard/calendar', async (req, reply) => {
      const view = req.query.view === 'week' ? 'week' : 'month';
      const parsed = req.query.date ? DateTime.fromISO(req.query.date, { zone }) : undefined;
      const anchor = parsed?.isValid ? parsed : DateTime.fromJSDate(deps.now(), { zone });
      const cal = calendarDays(await listCampaigns(handle.redis, handle.prefix), zone, view, anchor, deps.now());
      return render(req, reply, 'calendar', `Calendar: ${cal.heading}`, { view, cal, date: anchor.toISODate(), zone });
    });

    app.get('/dashboard/campaigns', async (req, reply) => {
      const all = await listCampaigns(handle.redis, handle.prefix);
      const rows = all.map((c) => ({ id: c.id, title: c.title, kind: c.kind, status: c.status, statusLabel: STATUS_LABEL[c.status] ?? c.status, when: local(c.sendAt.toISOString()), author: c.author }));
      return render(req, reply, 'campaigns', 'Campaigns', { rows });
    });

    app.get('/dashboard/compose', { config: { role: 'editor' } }, async (req, reply) => {
      const at = DateTime.fromJSDate(deps.now(), { zone }).plus({ hours: 1 }).startOf('hour');
      const form: Partial<ComposeForm> = { kind: 'newsletter', send_at: at.toFormat("yyyy-MM-dd'T'HH:mm"), ch_email: 'on', email_list: 'newsletter' };
      return render(req, reply, 'compose', 'New campaign', composeData(form));
    });

    app.post<{ Body: Partial<ComposeForm> }>('/dashboard/compose/preview', { config: { role: 'editor' } }, async (req, reply) =>
      fragment(req, reply, 'preview', { previews: previewCampaign(config, formToCampaign(req.body ?? {}).channels, deps.now()) }),
    );

    app.post<{ Body: Partial<ComposeForm> }>('/dashboard/campaigns', { config: { role: 'editor' } }, async (req, reply) => {
      const form = req.body ?? {};
      try {
        const draft = parseCampaignBody(formToCampaign(form), config, deps.now());
        const c = await scheduler.create(draft, { actor: actor(req).email });
        return reply.redirect(`/dashboard/campaigns/${c.id}?created=1`, 303);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        return render(req, reply, 'compose', 'New campaign', composeData(form, { errors: errorList(err) }), 400);
      }
    });

    app.get<{ Params: { id: string }; Querystring: { created?: string } }>('/dashboard/campaigns/:id', async (req, reply) => {
      const c = await getCampaign(handle.redis, handle.prefix, req.params.id);
      const data = await campaignPage(req, await campaignView({ config, redis: handle }, c));
      return render(req, reply, 'campaign', c.title, { ...data, created: req.query.created === '1', previews: previewCampaign(config, c.channels, deps.now()) });
    });

    // Polled by htmx every 2 s while the campaign is not finished; a finished one answers without the poll trigger.
    app.get<{ Params: { id: string } }>('/dashboard/campaigns/:id/progress', async (req, reply) => {
      const c = await getCampaign(handle.redis, handle.prefix, req.params.id);
      return fragment(req, reply, 'progress', await campaignPage(req, await campaignView({ config, redis: handle }, c)));
    });

    const act = (name: 'approve' | 'cancel', run: (id: string, who: string) => Promise<unknown>) => async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
      let error: string | undefined;
      try {
        await run(req.params.id, actor(req).email);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        error = err.plain;
      }
      const c = await getCampaign(handle.redis, handle.prefix, req.params.id);
      const data = { ...(await campaignPage(req, await campaignView({ config, redis: handle }, c))), error, done: error ? undefined : name };
      if (req.headers['hx-request']) return fragment(req, reply, 'progress', data); // htmx swaps only 2xx: the error is in the fragment
      return reply.redirect(`/dashboard/campaigns/${c.id}`, 303);
    };
    app.post('/dashboard/campaigns/:id/approve', { config: { role: 'approver' } }, act('approve', (id, who) => scheduler.approve(id, who)));
    app.post('/dashboard/campaigns/:id/cancel', { config: { role: 'editor' } }, act('cancel', (id, who) => scheduler.cancel(id, who)));
  };
}
