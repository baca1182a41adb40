import type { FastifyRequest } from 'fastify';
import { maskRequestUrl } from '../redact.js';

/** What a request log line says about the request: fastify's usual fields, with unsubscribe tokens masked. */
export function requestForLog(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: maskRequestUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}
