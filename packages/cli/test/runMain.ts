// main() run in this process with its output captured: how the CLI tests run a command without a
// child process (the real bin, for signals and exit paths, is spawned by cli.test.ts).

import { type Io, streamIo } from '../src/io.js';
import { main } from '../src/main.js';

/** An Io whose stdout (a TTY or not) and stderr are kept as text. */
export function captureIo(tty = false): Io & { stdoutText: () => string; stderrText: () => string } {
  let out = '';
  let err = '';
  const io = streamIo({ write: (s: string) => (out += s), isTTY: tty }, { write: (s: string) => (err += s) });
  return Object.assign(io, { stdoutText: () => out, stderrText: () => err });
}

/** Runs `scorch ...argv` in this process: its exit status and what it wrote. */
export async function runMain(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo();
  const code = await main(argv, io);
  return { code, stdout: io.stdoutText(), stderr: io.stderrText() };
}
