// Where the CLI writes: the process's streams in normal use, captured strings in tests. Progress
// displays check `stdout.isTTY` to choose between a redrawn bar and plain periodic lines.

import type { ProgressSink } from './progress.js';

export interface Io {
  readonly stdout: ProgressSink;
  readonly stderr: ProgressSink;
  /** One line on stdout. */
  out(line: string): void;
  /** One line on stderr. */
  err(line: string): void;
}

export function streamIo(stdout: ProgressSink, stderr: ProgressSink): Io {
  return {
    stdout,
    stderr,
    out: (line) => void stdout.write(`${line}\n`),
    err: (line) => void stderr.write(`${line}\n`),
  };
}

/**
 * The process's streams. A reader that goes away (`scorch sample … | head -1`) closes the pipe:
 * Node ignores SIGPIPE, so the next write raised an unhandled EPIPE error that killed the run
 * with a stack trace and without its files (a training run without its checkpoint). Now a closed
 * stream drops what is written to it and the run goes on to write its files, as it would with its
 * output sent to /dev/null.
 */
export function processIo(): Io {
  return streamIo(closableSink(process.stdout), closableSink(process.stderr));
}

/** `stream` as a sink that drops writes once its reader has closed the pipe (EPIPE). */
export function closableSink(stream: NodeJS.WritableStream & { readonly isTTY?: boolean; readonly columns?: number }): ProgressSink {
  let closed = false;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
  });
  return {
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
    write: (text: string) => (closed ? true : stream.write(text)),
  };
}
