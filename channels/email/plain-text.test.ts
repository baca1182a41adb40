import { describe, expect, it } from 'vitest';
import { testConfig } from '../../test/helpers/context.js';
import { markdownToText } from './markdown.js';
import { composeEmail } from './message.js';

/** The plain-text part says what the HTML part shows: autolinks stay, only HTML tags go. */

const body = [
  'Write to <press@example.org> or see <https://example.org/a?b=1>.',
  '',
  'A <br> break, <span class="x">kept text</span>, x < y > z and <img src="logo.png" alt="" /> gone.',
].join('\n');

describe('plain-text part', () => {
  it('keeps <press@example.org> and <https://…> autolinks (the HTML part shows them as links)', () => {
    const mail = composeEmail(testConfig(), {
      subject: 'Contact',
      markdown: body,
      list: 'newsletter',
      campaignId: 'c1',
      key: 'c1:email:0',
      recipient: { id: 'r1', email: 'ada@example.org', name: 'Ada', area: '', topics: [] },
      now: new Date('2026-12-01T09:00:00Z'),
    });
    expect(String(mail.html)).toContain('<a href="mailto:press@example.org">press@example.org</a>');
    expect(String(mail.html)).toContain('<a href="https://example.org/a?b=1">https://example.org/a?b=1</a>');
    expect(String(mail.text)).toContain('Write to <press@example.org> or see <https://example.org/a?b=1>.');
  });

  it('still removes real HTML tags, open, closing and self-closing', () => {
    expect(markdownToText(body, 'Ada').split('\n').at(-1)).toBe('A  break, kept text, x < y > z and  gone.');
  });
});
