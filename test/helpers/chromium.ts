import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Headless Chromium for browser tests: Debian's `chromium` package (or the
 * binary named by CHROMIUM_PATH), driven by playwright-core. Playwright's own
 * browser downloads are never used.
 */

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/** Quiet, offline, loopback-only: nothing phones home while a test runs. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium executable (CHROMIUM_PATH when set, else /usr/bin/chromium), or undefined when it is not there. */
export function chromiumPath(): string | undefined {
  const candidate = process.env.CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
  return existsSync(candidate) ? candidate : undefined;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium not found (apt-get install chromium, or set CHROMIUM_PATH)');
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}
