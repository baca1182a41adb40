import { PermanentError, type CollectorDefinition } from './types.js';

/** Placeholder: the email collector is being built (issue 10). */
export const emailCollector: CollectorDefinition = {
  source: 'email',
  description: 'email (not built yet)',
  measures: [],
  cron: '50 * * * *',
  unconfigured: () => 'not built yet',
  create: () => ({
    source: 'email',
    run: () => Promise.reject(new PermanentError('the email collector is not built yet')),
  }),
};
