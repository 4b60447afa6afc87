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

export function processIo(): Io {
  return streamIo(process.stdout, process.stderr);
}
