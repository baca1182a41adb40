import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObservationStore } from '../src/domain/observations.js';
import { parsePeriod } from '../src/domain/periods.js';
import { previewHtml } from '../src/digest/render.js';
import { composeDigest } from '../src/digest/send.js';
import { catalogueFor } from '../src/metrics-config.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { chromiumPath, launchChromium } from './helpers/chromium.js';
import { testConfig, silentLogger } from './helpers/context.js';
import { seedDemo } from './helpers/digest-demo.js';
import { ROOT } from './helpers/dist.js';

/**
 * The digest as a reader sees it, in headless Chromium: at desktop width and
 * at a phone's (390 px), every trend picture loads and nothing needs sideways
 * scrolling. With CRIER_WRITE_DOCS=1 it also writes docs/digest.png and
 * docs/digest-phone.png (the README shows them).
 */

const executable = chromiumPath();

describe.skipIf(!executable)('the digest in headless Chromium', () => {
  let handle: RedisHandle;
  let browser: Browser;
  let html = '';

  beforeAll(async () => {
    const config = testConfig({ yaml: 'organisation: Office of the Police and Crime Commissioner\nmetrics:\n  targets:\n    x.followers: 5000\n    website.visits: 4500\n    media.mentions: 12\n    website.bounce_rate: 45\n' });
    handle = await connectRedis(config, silentLogger());
    const week = parsePeriod('2026-W48', config.timezone);
    const store = new ObservationStore(handle.redis, config.redis_prefix, catalogueFor(config.metrics), { zone: config.timezone });
    await seedDemo(store, handle.redis, config.redis_prefix, week);
    const r = await composeDigest({ config, redis: handle.redis, log: silentLogger(), now: () => new Date('2026-11-30T08:00:00Z') }, week);
    html = previewHtml(r);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await handle?.close();
  });

  for (const [name, width] of [['digest', 680], ['digest-phone', 390]] as const) {
    it(`${name}: ${width} px wide, pictures loaded, no sideways scrolling`, async () => {
      const page = await browser.newPage({ viewport: { width, height: 900 }, deviceScaleFactor: width < 500 ? 2 : 1 });
      try {
        await page.route('**/*', (route) => (route.request().url().startsWith('data:') ? route.continue() : route.abort()));
        await page.setContent(html, { waitUntil: 'load' });
        const state = await page.evaluate(() => ({
          images: [...document.images].map((i) => i.complete && i.naturalWidth > 0),
          scrollWidth: document.documentElement.scrollWidth,
          text: document.body.innerText,
        }));
        expect(state.images.length).toBeGreaterThan(10);
        expect(state.images.every(Boolean)).toBe(true);
        expect(state.scrollWidth).toBeLessThanOrEqual(width);
        expect(state.text).toContain('Measures of success');
        if (process.env.CRIER_WRITE_DOCS === '1') {
          mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
          const shot = await page.screenshot({ fullPage: true, clip: width < 500 ? { x: 0, y: 0, width, height: 1700 } : undefined });
          writeFileSync(path.join(ROOT, 'docs', `${name}.png`), shot);
        }
      } finally {
        await page.close();
      }
    });
  }
});
