import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/**
 * A real SMTP server in the test process (127.0.0.1, random port; by default no
 * auth and no TLS, optionally STARTTLS or implicit TLS with a password) that collects what arrives. It can be scripted to answer 4xx/5xx for
 * chosen recipients or for the next N messages, to exercise retries.
 */

export interface SinkMessage {
  from: string;
  to: string[];
  raw: Buffer;
  /** Parsed with mailparser; absent when the sink was started with parse: false. */
  parsed?: ParsedMail;
  /** The message came over TLS (implicit or after STARTTLS). */
  secure: boolean;
  /** The authenticated user, if the client logged in. */
  user?: string;
}

export interface SmtpSinkOptions {
  /** Parse each message with mailparser (default true; turn off for benchmarks). */
  parse?: boolean;
  /** Keep messages in `messages` (default true; off keeps only `count`). */
  keep?: boolean;
  /** 'starttls' offers STARTTLS on a plain port; 'implicit' speaks TLS from the first byte (smtps). */
  tls?: { mode: 'starttls' | 'implicit'; key: string; cert: string };
  /** Require this login (PLAIN/LOGIN, over TLS only). */
  auth?: { user: string; pass: string };
  /** Listen on this port (default: a free one); a test can start the relay late on a port Crier already uses. */
  port?: number;
}

export interface SmtpSink {
  readonly port: number;
  /** SMTP_URL for Crier. */
  readonly url: string;
  readonly messages: SinkMessage[];
  /** Messages accepted so far (counted even when not kept). */
  readonly count: number;
  /** Messages refused so far by a scripted reply. */
  readonly refused: number;
  /** SMTP connections opened so far (a pooled client reuses them). */
  readonly connections: number;
  /** Logins refused so far (wrong user or password). */
  readonly authFailures: number;
  /** Answer RCPT TO for this address with `code text` (every time, until cleared). */
  rejectRecipient(email: string, code: number, text?: string): void;
  clearRejections(): void;
  /** Answer the end of DATA for every `n`th message with `code text` (a greylisting relay); 0 stops it. */
  deferEvery(n: number, code?: number, text?: string): void;
  /** Answer the end of DATA for the next `n` messages with `code text`. */
  failNext(n: number, code: number, text?: string): void;
  /** Resolves once at least `n` messages have been accepted. */
  waitFor(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

function defaultText(code: number): string {
  return code >= 500 ? 'Requested action not taken: mailbox unavailable' : 'Requested action aborted: try again later';
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const parse = opts.parse ?? true;
  const keep = opts.keep ?? true;
  const messages: SinkMessage[] = [];
  const rejections = new Map<string, SmtpReply>();
  const script: SmtpReply[] = [];
  let count = 0;
  let refused = 0;
  let connections = 0;
  let authFailures = 0;
  let every: { n: number; reply: SmtpReply } | undefined;
  let seen = 0;
  let waiters: Array<() => void> = [];

  const disabled = [...(opts.tls ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])];
  const server = new SMTPServer({
    authOptional: !opts.auth,
    // Without TLS a test can still check logins (never done outside tests).
    allowInsecureAuth: !opts.tls,
    disabledCommands: disabled,
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert, secure: opts.tls.mode === 'implicit' } : {}),
    onAuth(auth, _session, callback) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) callback(null, { user: auth.username });
      else {
        authFailures += 1;
        callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
      }
    },
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
    size: 25 * 1024 * 1024,
    onConnect(_session, callback) {
      connections += 1;
      callback();
    },
    onRcptTo(address, _session, callback) {
      const reply = rejections.get(address.address.toLowerCase());
      if (reply) {
        refused += 1;
        callback(reply);
        return;
      }
      callback();
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        seen += 1;
        const reply = script.shift() ?? (every && seen % every.n === 0 ? every.reply : undefined);
        if (reply) {
          refused += 1;
          callback(reply);
          return;
        }
        const raw = Buffer.concat(chunks);
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const to = session.envelope.rcptTo.map((r) => r.address);
        const finish = (parsed?: ParsedMail): void => {
          count += 1;
          if (keep) messages.push({ from, to, raw, parsed, secure: session.secure, ...(typeof session.user === 'string' ? { user: session.user } : {}) });
          callback();
          const ready = waiters;
          waiters = [];
          for (const w of ready) w();
        };
        if (!parse) {
          finish();
          return;
        }
        simpleParser(raw).then(finish, (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))));
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A client that drops a connection must not crash the test process.
  server.on('error', () => {});
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    url: `${opts.tls?.mode === 'implicit' ? 'smtps' : 'smtp'}://${opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@` : ''}127.0.0.1:${port}`,
    messages,
    get count() {
      return count;
    },
    get refused() {
      return refused;
    },
    get connections() {
      return connections;
    },
    get authFailures() {
      return authFailures;
    },
    rejectRecipient(email, code, text) {
      rejections.set(email.toLowerCase(), new SmtpReply(code, text ?? defaultText(code)));
    },
    clearRejections() {
      rejections.clear();
    },
    deferEvery(n, code = 451, text) {
      every = n > 0 ? { n, reply: new SmtpReply(code, text ?? defaultText(code)) } : undefined;
    },
    failNext(n, code, text) {
      for (let i = 0; i < n; i += 1) script.push(new SmtpReply(code, text ?? defaultText(code)));
    },
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (count < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`smtp sink: expected ${n} messages, got ${count}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return messages;
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
