import path from 'node:path';
import type { Command } from 'commander';
import type { Delivery, Recipient } from '../../channels/adapter.js';
import { channelDefinition } from '../../channels/registry.js';
import { withOverrides } from '../config.js';
import { getRecipients } from '../domain/audience.js';
import { getCampaign } from '../domain/campaigns.js';
import { campaignEmbargo, channelStartsAt } from '../domain/embargo.js';
import { deriveKey } from '../keys.js';
import { formatLocal } from '../time.js';
import { audienceBatches } from '../../workers/plan.js';
import { withContext } from './context.js';

// The phone number is from Ofcom's range reserved for drama: it belongs to nobody.
const SAMPLE: Recipient = { id: 'preview', email: 'sample.subscriber@example.org', name: 'Sample Subscriber', area: '', topics: [], phone: '+447700900000' };

/**
 * `crier campaign preview ID [--out DIR]`: writes exactly what each channel
 * would send (for audience channels, to the first subscriber it would reach)
 * using every adapter's dry-run, whatever credentials are configured.
 */
export function registerPreviewCommand(campaign: Command): void {
  campaign
    .command('preview')
    .argument('<id>')
    .option('--out <dir>', 'where to write the preview files (default: <data dir>/preview/<id>)')
    .description('write what each channel would send, without sending')
    .action(async (id: string, opts: { out?: string }) => {
      await withContext(async (ctx) => {
        const c = await getCampaign(ctx.redis.redis, ctx.redis.prefix, id);
        const out = path.resolve(opts.out ?? path.join(ctx.config.dataDir, 'preview', id));
        const dry = withOverrides(ctx.config, {
          outboxDir: out,
          smtpUrl: undefined,
          twitter: { apiBase: ctx.config.twitter.apiBase },
          mastodon: {},
          webhook: { ...ctx.config.webhook, url: undefined },
          community: {},
          facebook: { ...ctx.config.facebook, pageId: undefined, pageToken: undefined },
          notify: { baseUrl: ctx.config.notify.baseUrl },
        });
        const embargo = campaignEmbargo(c);
        if (embargo && embargo > c.sendAt) ctx.out(`embargo    ${formatLocal(embargo, c.timezone)} ${c.timezone}: only the media list's EMBARGOED email goes before it`);
        for (const [channel, raw] of Object.entries(c.channels)) {
          const def = channelDefinition(channel)!;
          const content = { ...raw };
          delete content.url; // a webhook url in the campaign would make a real POST
          delete content.url_sealed;
          let recipient: Recipient | undefined;
          let recipients = 0;
          if (def.audience) {
            recipient = SAMPLE;
            // Counted only where the channel sums up the whole send (one pass over the audience).
            for await (const { ids } of audienceBatches(ctx.redis.redis, ctx.redis.prefix, def.audience(content), def.summary ? ctx.config.batch_size : 10)) {
              if (recipient === SAMPLE) recipient = (await getRecipients(ctx.redis.redis, ctx.redis.prefix, ids, deriveKey(ctx.config.secret, 'suppression'))).find((r) => r !== null) ?? SAMPLE;
              recipients += ids.length;
              if (!def.summary) break;
            }
          }
          const adapter = def.create(dry);
          try {
            const delivery: Delivery = { campaignId: c.id, campaignTitle: c.title, kind: c.kind, channel, content, recipient, key: `${c.id}:${channel}:preview` };
            const r = await adapter.send(delivery, { log: ctx.log, now: () => new Date() });
            const at = channelStartsAt(c, channel);
            const waits = at > c.sendAt ? `  (waits for the embargo: goes at ${formatLocal(at, c.timezone)} ${c.timezone})` : '';
            ctx.out(`${channel.padEnd(10)} ${r.outboxFile ?? '(no file)'}${recipient ? `  (to ${recipient.email})` : ''}${waits}`);
            if (def.summary) ctx.out(`${''.padEnd(10)} ${def.summary(content, recipients, ctx.config)}`);
          } finally {
            await adapter.close();
          }
        }
      });
    });
}
