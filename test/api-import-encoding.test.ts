import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAccount, createToken } from '../src/domain/accounts.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { buildServer } from '../src/server/index.js';
import { silentLogger, testConfig } from './helpers/context.js';

/** An import through the HTTP API says which lines were not UTF-8, as the CLI does. */

const corpus = (name: string): string => path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus', name);
let handle: RedisHandle;
let app: FastifyInstance;
let token: string;

beforeAll(async () => {
  const config = testConfig();
  handle = await connectRedis(config, silentLogger());
  app = await buildServer(config, handle, silentLogger());
  await app.ready();
  await addAccount(handle.redis, handle.prefix, 'editor@example.org', 'editor', new Date());
  token = await createToken(handle.redis, handle.prefix, 'editor@example.org', 'test', new Date());
});
afterAll(async () => {
  await app?.close();
  await handle?.close();
});

const importCsv = (list: string, body: Buffer) =>
  app.inject({ method: 'POST', url: `/api/v1/audience/lists/${list}/import`, headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, payload: body });

describe('POST /api/v1/audience/lists/:list/import', () => {
  it('a mixed file: encoding_note names the lines read as Windows-1252; UTF-8 names stay intact', async () => {
    const res = await importCsv('mixed', readFileSync(corpus('mixed-encoding.csv')));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      imported: 5,
      rejected: 0,
      encoding_note: 'lines 3, 5 are not valid UTF-8: read those lines as Windows-1252 and the rest of the file as UTF-8 (check the names on them)',
    });
  });

  it('a UTF-8 file has no encoding_note', async () => {
    const res = await importCsv('plain', Buffer.from('email,name,area,topics\nzoe@example.org,Zoë,Rugby,\n'));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).not.toHaveProperty('encoding_note');
  });
});
