import { PermanentError, type CollectorDefinition } from './types.js';

/** Placeholder: the media collector is being built (issue 10). */
export const mediaCollector: CollectorDefinition = {
  source: 'media',
  description: 'media (not built yet)',
  measures: [],
  cron: '40 * * * *',
  unconfigured: () => 'not built yet',
  create: () => ({
    source: 'media',
    run: () => Promise.reject(new PermanentError('the media collector is not built yet')),
  }),
};
