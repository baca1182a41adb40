/**
 * Standard output that may go away: `crier campaign list | head` closes the
 * pipe after ten lines. The next write fails with EPIPE; without a listener
 * Node crashes with a stack trace. Instead the command stops at its next line
 * (`OutputClosed`, which main turns into a quiet exit 0, as `git log | head`
 * does) and still closes its Redis connection on the way out.
 */

export class OutputClosed extends Error {
  constructor() {
    super('standard output was closed by its reader');
    this.name = 'OutputClosed';
  }
}

let closed = false;

/** Installs the listener once, before any command writes. */
export function watchStdout(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
      closed = true;
      return;
    }
    throw err;
  });
}

/** One line to stdout; throws OutputClosed once the reader has gone. */
export function writeLine(line: string): boolean {
  if (closed || process.stdout.destroyed) throw new OutputClosed();
  return process.stdout.write(`${line}\n`);
}

/** As writeLine, waiting for the reader when the pipe is full (a big export never piles up in memory). */
export async function writeLineAsync(line: string): Promise<void> {
  if (writeLine(line)) return;
  const out = process.stdout;
  // Whichever comes first: room in the pipe, or the reader going away (error or close).
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    out.on('drain', done).on('close', done).on('error', done);
  });
  if (closed || out.destroyed) throw new OutputClosed();
}
