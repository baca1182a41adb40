import { PermanentError, type CollectorDefinition } from './types.js';

/** Placeholder: the website collector is being built (issue 10). */
export const websiteCollector: CollectorDefinition = {
  source: 'website',
  description: 'website (not built yet)',
  measures: [],
  cron: '30 * * * *',
  unconfigured: () => 'not built yet',
  create: () => ({
    source: 'website',
    run: () => Promise.reject(new PermanentError('the website collector is not built yet')),
  }),
};
