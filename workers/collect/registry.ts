import type { Config } from '../../src/config.js';
import type { CollectorDefinition } from './types.js';
import { emailCollector } from './email.js';
import { facebookCollector } from './facebook.js';
import { mastodonCollector } from './mastodon.js';
import { mediaCollector } from './media.js';
import { websiteCollector } from './website.js';
import { xCollector } from './x.js';
import { youtubeCollector } from './youtube.js';

/**
 * Every collector Crier knows, in the order `crier metrics status` lists them.
 * A new source is one import and one line here (plus its file beside this one).
 */
const definitions: CollectorDefinition[] = [
  xCollector,
  mastodonCollector,
  websiteCollector,
  mediaCollector,
  emailCollector,
  facebookCollector,
  youtubeCollector,
];

const bySource = new Map(definitions.map((d) => [d.source, d]));

export function collectorDefinition(source: string): CollectorDefinition | undefined {
  return bySource.get(source);
}

export function collectorSources(): string[] {
  return [...bySource.keys()];
}

export function collectorDefinitions(): readonly CollectorDefinition[] {
  return definitions;
}

/** The cron a source runs on: `metrics.collectors.<source>.cron`, else its default. */
export function collectorCron(config: Config, def: CollectorDefinition): string {
  return config.metrics.collectors[def.source]?.cron ?? def.cron;
}

/** False when `metrics.collectors.<source>.enabled: false`. */
export function collectorEnabled(config: Config, def: CollectorDefinition): boolean {
  return config.metrics.collectors[def.source]?.enabled ?? true;
}
