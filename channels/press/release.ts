import { z } from 'zod';
import { contactLine } from '../../src/branding.js';
import type { Organisation } from '../../src/organisation.js';

/**
 * How a press release ends, the way a newsroom expects: "ENDS" after the
 * story, then the notes to editors (the campaign's `notes`), then who to call
 * (the organisation's press contact). Shared by the email to the media list
 * and the published page, so both say the same.
 */

/** `notes`: one Markdown text, or a list of notes (numbered, as newsrooms expect). */
export const notesSchema = z.union([z.string().trim().min(1), z.array(z.string().trim().min(1)).min(1)]).optional();

export type Notes = z.infer<typeof notesSchema>;

export function notesMarkdown(notes: Notes): string {
  if (notes === undefined) return '';
  return typeof notes === 'string' ? notes : notes.map((n, i) => `${i + 1}. ${n.replace(/\n+/g, ' ')}`).join('\n');
}

/** The Markdown that follows the body: ENDS, notes to editors, media enquiries. */
export function releaseTail(notes: Notes, org: Organisation | undefined): string {
  const parts = ['**ENDS**'];
  const n = notesMarkdown(notes);
  if (n) parts.push('## Notes to editors', n);
  const contact = contactLine(org?.pressContact);
  if (contact) parts.push(`**Media enquiries:** ${contact}`);
  return `\n\n${parts.join('\n\n')}\n`;
}

/** The notes as they were written in the campaign (store.ts keeps them with the release). */
export function parseNotes(value: unknown): Notes {
  const r = notesSchema.safeParse(value);
  return r.success ? r.data : undefined;
}
