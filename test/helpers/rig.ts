import { createLogger } from '../../src/log.js';
import { buildServer } from '../../src/server/index.js';
import { testConfig } from './context.js';
import { startCrier, type TestCrier } from './crier.js';
import { freePort } from './redis-server.js';
import { startSmtpSink, type SmtpSink } from './smtp-sink.js';

/** Crier with its workers and HTTP server on 127.0.0.1, mailing a real in-process SMTP sink. */
export interface Rig {
  crier: TestCrier;
  sink: SmtpSink;
  /** http://127.0.0.1:<port>, also the config's PUBLIC_URL (unsubscribe links point here). */
  baseUrl: string;
  close(): Promise<void>;
}

/** PUBLIC_URL must be known when the config is made, so the server's port is chosen first. */
export async function startRig(yaml = ''): Promise<Rig> {
  const sink = await startSmtpSink();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = testConfig({ env: { SMTP_URL: sink.url, PUBLIC_URL: baseUrl, PORT: String(port) }, yaml });
  const crier = await startCrier(config);
  const server = await buildServer(config, crier.handle, createLogger('silent'));
  await server.listen({ port, host: '127.0.0.1' });
  return {
    crier,
    sink,
    baseUrl,
    async close() {
      await server.close();
      await crier.close();
      await sink.close();
    },
  };
}
