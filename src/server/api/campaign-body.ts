import type { Config } from '../../config.js';
import { parseCampaign, type CampaignDraft } from '../../domain/campaign-file.js';
import { UserError } from '../../errors.js';

/**
 * A campaign sent as JSON (the API, the composer) → the same validated draft
 * a campaign file gives: JSON is YAML, so it goes through the one parser.
 * Fields that name files on the server (`body_file`, image `file`s) are
 * refused: over HTTP the body is written inline.
 */

export const SOURCE = 'request body';

export function parseCampaignBody(body: unknown, config: Config, now: Date): CampaignDraft {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const channels = (body as { channels?: unknown }).channels;
    if (channels && typeof channels === 'object') {
      const problems: UserError[] = [];
      for (const [name, content] of Object.entries(channels as Record<string, unknown>)) {
        if (!content || typeof content !== 'object') continue;
        for (const field of ['body_file', 'images']) {
          if (field in content) {
            problems.push(new UserError(`${field} names files on the server and is not accepted over HTTP: put the text in "body" (images: use a campaign file and the CLI)`, 'CRIER_ERR_INPUT', { field: `channels.${name}.${field}` }));
          }
        }
      }
      if (problems.length) throw UserError.all(problems);
    }
  }
  try {
    return parseCampaign(JSON.stringify(body ?? null, null, 2), SOURCE, config, { now });
  } catch (err) {
    // Lines of a re-serialised body mean nothing to the sender: keep the field names only.
    if (err instanceof UserError) throw UserError.all([err, ...err.more].map((e) => new UserError(e.plain, e.code, { field: e.where.field ?? undefined })));
    throw err;
  }
}

/** Each mistake as {field, message}, for JSON error bodies. */
export function errorList(err: UserError): Array<{ field?: string; message: string }> {
  return [err, ...err.more].map((e) => ({ ...(e.where.field ? { field: e.where.field } : {}), message: e.plain }));
}
