import type { Config, PurdahWindow } from '../config.js';
import type { Campaign } from './campaigns.js';
import { campaignEmbargo } from './embargo.js';

/**
 * The pre-election period (purdah): configured windows hold campaigns that
 * would go out inside them. An approver releases an essential one for the
 * windows holding it (`crier campaign release ID`); nothing else lets a
 * campaign through, not even an approval given before the window began.
 */

export function purdahReason(config: Config, at: Date): string {
  const w = purdahWindowAt(config, at);
  return w ? `${w.reason} (${w.from.toISOString()} – ${w.to.toISOString()}); held until released by an approver (essential campaigns: crier campaign release ID) or rescheduled` : '';
}

function purdahWindowAt(config: Config, at: Date): PurdahWindow | undefined {
  return config.purdah.find((p) => at >= p.from && at < p.to);
}

/** A window's identity, as recorded by a release. */
export function windowKey(w: PurdahWindow): string {
  return `${w.from.toISOString()}/${w.to.toISOString()}`;
}

/**
 * The pre-election windows that hold the campaign if it goes now: one covering
 * now, and one covering the embargo instant when the campaign publishes an
 * embargoed release (its publication falls inside the window even if send_at
 * does not).
 */
export function holdingWindows(config: Config, c: Campaign, now: Date): Array<{ window: PurdahWindow; reason: string }> {
  const out: Array<{ window: PurdahWindow; reason: string }> = [];
  const here = purdahWindowAt(config, now);
  if (here) out.push({ window: here, reason: purdahReason(config, now) });
  const embargo = campaignEmbargo(c);
  const there = embargo && embargo > now ? purdahWindowAt(config, embargo) : undefined;
  if (there && there !== here) out.push({ window: there, reason: `the embargo (${embargo!.toISOString()}) falls in the ${purdahReason(config, embargo!)}` });
  return out;
}

/**
 * Why the campaign must wait, or ''. Only a release given for the very window
 * that holds it lets an essential campaign through: an approval given weeks
 * earlier, before the window, does not.
 */
export function holdReason(config: Config, c: Campaign, now: Date): string {
  const released = new Set(c.releasedFor ?? []);
  return holdingWindows(config, c, now).find((h) => !(c.essential && released.has(windowKey(h.window))))?.reason ?? '';
}
