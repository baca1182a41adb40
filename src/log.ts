import pino, { type Logger } from 'pino';

export type { Logger };

/** The root logger; everything else gets a child with its context bound. Secrets are redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'crier' },
      redact: {
        paths: ['secret', 'password', 'pass', 'token', 'authorization', '*.secret', '*.password', '*.pass', '*.token', '*.authorization', 'smtpUrl', 'redisUrl'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination(2),
  );
}
