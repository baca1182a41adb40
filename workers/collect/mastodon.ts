import { PermanentError, type CollectorDefinition } from './types.js';

/** Placeholder: the mastodon collector is being built (issue 10). */
export const mastodonCollector: CollectorDefinition = {
  source: 'mastodon',
  description: 'mastodon (not built yet)',
  measures: [],
  cron: '20 * * * *',
  unconfigured: () => 'not built yet',
  create: () => ({
    source: 'mastodon',
    run: () => Promise.reject(new PermanentError('the mastodon collector is not built yet')),
  }),
};
