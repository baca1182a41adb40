import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * The SMTP sink as its own process (forked by bench/procs.ts), so that neither
 * side of a ratio shares a thread with it. It accepts every message, reads it
 * to the end and counts it; with SINK_DELAY_MS it answers each message that
 * much later, as a real relay does. With SINK_RECORD=1 it also keeps each
 * message's arrival time and X-Crier-Campaign header (scheduling precision).
 *
 * Talks to its parent over IPC: {type:'stats'} → {count, bytes, firstAt, lastAt};
 * {type:'arrivals'} → {arrivals: [[epochMs, campaign], …]}; {type:'reset'}.
 */

const delayMs = Number(process.env.SINK_DELAY_MS ?? 0);
const record = process.env.SINK_RECORD === '1';
let count = 0;
let bytes = 0;
let firstAt = 0;
let lastAt = 0;
let arrivals: Array<[number, string]> = [];

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  disableReverseLookup: true,
  logger: false,
  closeTimeout: 500,
  size: 0,
  onData(stream, _session, callback) {
    let head = '';
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (record && head.length < 8192) head += chunk.toString('latin1');
    });
    stream.on('end', () => {
      const done = () => {
        const now = Date.now();
        count++;
        if (firstAt === 0) firstAt = now;
        lastAt = now;
        if (record) arrivals.push([now, /^X-Crier-Campaign:\s*(\S+)/im.exec(head)?.[1] ?? '']);
        callback();
      };
      if (delayMs > 0) setTimeout(done, delayMs);
      else done();
    });
  },
});
server.on('error', () => undefined);

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'stats') process.send?.({ type: 'stats', count, bytes, firstAt, lastAt });
  else if (msg.type === 'arrivals') process.send?.({ type: 'arrivals', arrivals });
  else if (msg.type === 'reset') {
    count = 0;
    bytes = 0;
    firstAt = 0;
    lastAt = 0;
    arrivals = [];
    process.send?.({ type: 'reset' });
  }
});
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.server.address() as AddressInfo).port });
});
