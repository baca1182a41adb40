import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from './errors.js';

/**
 * Who publishes: the organisation's name, postal address, website, logo and
 * press contact, shown as the masthead and footer of every email and public
 * page. The `organisation` config key is either just the name (the older form)
 * or a mapping with the details.
 */

const text = (max: number) => z.string().trim().min(1).max(max);
const webUrl = z.string().url().refine((u) => /^https?:\/\//i.test(u), 'expected an http(s) URL');

const details = z
  .object({
    name: text(200),
    /** One line, or several separated by newlines or commas as it should appear on a letter. */
    address: text(500).optional(),
    website: webUrl.optional(),
    /** An image file (PNG, JPEG, GIF, WebP; relative to the config file, else to the working directory) served at /organisation/logo, or an http(s) URL. */
    logo: text(1000).optional(),
    press_contact: z
      .object({ name: text(200).optional(), email: z.string().email().optional(), phone: text(50).optional() })
      .strict()
      .optional(),
  })
  .strict();

export const organisationSchema = z.union([text(200).transform((name) => ({ name })), details]).optional();

export type OrganisationInput = z.infer<typeof organisationSchema>;

export interface PressContact {
  name?: string;
  email?: string;
  phone?: string;
}

export interface Organisation {
  name: string;
  /** Address lines, in order. */
  address: string[];
  website?: string;
  /** An image file on this machine (served at /organisation/logo), or undefined. */
  logoFile?: string;
  /** An http(s) URL of the logo given in the config. */
  logoUrl?: string;
  pressContact?: PressContact;
}

/** What is shown when no organisation is configured. */
export const DEFAULT_ORGANISATION_NAME = 'Press releases';

export const LOGO_PATH = '/organisation/logo';

export const LOGO_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
};

/** The organisation as the rest of Crier reads it; `configFile` anchors a relative logo path. */
export function resolveOrganisation(input: OrganisationInput, configFile: string | undefined, cwd: string): Organisation | undefined {
  if (!input) return undefined;
  const full: z.infer<typeof details> = input;
  const address = (full.address ?? '')
    .split(/\n|,/)
    .map((l) => l.trim())
    .filter(Boolean);
  const logo = full.logo;
  const isUrl = logo !== undefined && /^https?:\/\//i.test(logo);
  const base = configFile ? path.dirname(configFile) : cwd;
  let logoFile: string | undefined;
  if (logo && !isUrl) {
    const where = { file: configFile, field: 'organisation.logo' };
    if (!LOGO_TYPES[path.extname(logo).toLowerCase()]) throw new UserError(`the logo must be a PNG, JPEG, GIF or WebP file (or an http(s) URL), got ${logo}`, 'CRIER_ERR_CONFIG', where);
    // Beside the config file first, then the working directory: a copied example config keeps working.
    const candidates = [...new Set([path.resolve(base, logo), path.resolve(cwd, logo)])];
    logoFile = candidates.find((f) => existsSync(f));
    if (!logoFile) throw new UserError(`logo file not found (looked for ${candidates.join(' and ')})`, 'CRIER_ERR_CONFIG', where);
  }
  return {
    name: full.name,
    address,
    ...(full.website ? { website: full.website } : {}),
    ...(logo && isUrl ? { logoUrl: logo } : {}),
    ...(logoFile ? { logoFile } : {}),
    ...(full.press_contact && Object.keys(full.press_contact).length > 0 ? { pressContact: full.press_contact } : {}),
  };
}

/** The logo's address for emails and pages (absolute, since emails need that), or undefined. */
export function logoHref(org: Organisation | undefined, publicUrl: string): string | undefined {
  if (!org) return undefined;
  if (org.logoUrl) return org.logoUrl;
  return org.logoFile ? `${publicUrl}${LOGO_PATH}` : undefined;
}

/** The masthead's and footer's colour on emails and pages (white text on it passes WCAG AAA). */
export const BRAND_COLOUR = '#1d3557';

/** "www.example.org" for https://www.example.org/ */
export function websiteLabel(url: string): string {
  return url.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
}
