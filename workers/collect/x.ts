import { PermanentError, type CollectorDefinition } from './types.js';

/** Placeholder: the x collector is being built (issue 10). */
export const xCollector: CollectorDefinition = {
  source: 'x',
  description: 'x (not built yet)',
  measures: [],
  cron: '10 */6 * * *',
  unconfigured: () => 'not built yet',
  create: () => ({
    source: 'x',
    run: () => Promise.reject(new PermanentError('the x collector is not built yet')),
  }),
};
