import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * An SMTP relay that misbehaves the way real ones do, for the reliability
 * suite: it answers 451 (try again later) to every `tempfailEvery`-th message,
 * refuses recipients in `rejectDomain` with 550 at RCPT TO, and drops the
 * connection without answering at the end of every `dropEvery`-th message (the
 * message is not accepted). It counts what it accepted per recipient.
 */

export interface FaultySinkOptions {
  tempfailEvery?: number;
  rejectDomain?: string;
  dropEvery?: number;
}

export interface FaultySink {
  url: string;
  readonly accepted: number;
  readonly tempfailed: number;
  readonly dropped: number;
  readonly rejected: number;
  /** Accepted messages per recipient address. */
  readonly perRecipient: Map<string, number>;
  close(): Promise<void>;
}

class Reply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startFaultySink(opts: FaultySinkOptions = {}): Promise<FaultySink> {
  let seen = 0;
  let accepted = 0;
  let tempfailed = 0;
  let dropped = 0;
  let rejected = 0;
  const perRecipient = new Map<string, number>();
  const sockets = new Map<number, Socket>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 200,
    onRcptTo(address, _session, callback) {
      if (opts.rejectDomain && address.address.toLowerCase().endsWith(`@${opts.rejectDomain}`)) {
        rejected++;
        return callback(new Reply(550, 'No such user here'));
      }
      callback();
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        const n = ++seen;
        if (opts.dropEvery && n % opts.dropEvery === 0) {
          dropped++;
          sockets.get(session.remotePort)?.destroy();
          return;
        }
        if (opts.tempfailEvery && n % opts.tempfailEvery === 0) {
          tempfailed++;
          return callback(new Reply(451, 'Requested action aborted: try again later'));
        }
        accepted++;
        for (const to of session.envelope.rcptTo) perRecipient.set(to.address, (perRecipient.get(to.address) ?? 0) + 1);
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  server.server.on('connection', (socket: Socket) => {
    const port = socket.remotePort ?? 0;
    sockets.set(port, socket);
    socket.once('close', () => sockets.delete(port));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    get tempfailed() {
      return tempfailed;
    },
    get dropped() {
      return dropped;
    },
    get rejected() {
      return rejected;
    },
    perRecipient,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets.values()) s.destroy();
        server.close(() => resolve());
      }),
  };
}
