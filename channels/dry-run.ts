import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The one filename sanitiser for everything Crier writes under a directory
 * (outbox, previews): keeps a campaign id or recipient id from escaping it or
 * hiding as a dot-file, and keeps the name short enough for any filesystem.
 */
export function safeFileName(part: string): string {
  return part.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_').slice(0, 120) || '_';
}

/**
 * Writes what a channel would have sent to `<outboxDir>/<name>.json` and
 * returns the file path. The name is made file-safe; `.json` is added unless
 * present. Written to a temp file then renamed, so a reader never sees half a
 * file and a retried delivery simply replaces its earlier output.
 */
export function writeOutboxJson(outboxDir: string, name: string, payload: unknown): string {
  mkdirSync(outboxDir, { recursive: true });
  const base = safeFileName(name.endsWith('.json') ? name.slice(0, -'.json'.length) : name);
  const file = path.join(outboxDir, `${base}.json`);
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(payload, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}
