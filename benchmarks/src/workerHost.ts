// Starting engine workers and talking to them: the Node workers run one esbuild bundle of
// worker.ts (built once per run, workspace packages from source, npm packages resolved from
// benchmarks/), the PyTorch worker runs under Debian's Python. Each request waits for its reply
// with a time limit; a worker that dies or overruns is killed, and its error carries the tail of
// its stderr, which is also kept in a log file for the whole run.

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { EngineSpec } from './engines.js';
import { REPLY_PREFIX, type Reply, type RequestBody } from './protocol.js';

/** Where a run's scratch files go by default: inputs, logs, partial results (ignored by git). */
export const scratchDir = (repoRoot: string): string => join(repoRoot, 'benchmarks', '.tmp');

/**
 * Bundles worker.ts into benchmarks/.tmp/worker-<pid>.mjs and returns its path (the caller
 * removes it). It must live under benchmarks/ so that the peers resolve from benchmarks/
 * node_modules; the process id keeps concurrent runs (a test beside a benchmark) apart.
 */
export async function bundleWorker(repoRoot: string): Promise<string> {
  const { build } = (await import('esbuild')) as typeof import('esbuild');
  // The one list of workspace packages (scripts/workspace.mjs), loaded at run time: it is plain JS.
  const workspace = (await import(pathToFileURL(join(repoRoot, 'scripts', 'workspace.mjs')).href)) as { workspaceAliases: Record<string, string> };
  const outfile = join(scratchDir(repoRoot), `worker-${process.pid}.mjs`);
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(repoRoot, 'benchmarks', 'src', 'worker.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    alias: workspace.workspaceAliases,
    logLevel: 'warning',
  });
  return outfile;
}

/** The Python that has Debian's torch: SCORCH_BENCH_PYTHON, else /usr/bin/python3, else python3. */
export function pythonExecutable(): string {
  return process.env.SCORCH_BENCH_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
}

export class EngineWorker {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private readonly stderrTail: string[] = [];
  private readonly logFile: WriteStream;
  private exited: string | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: { cwd: string; env: Record<string, string>; logPath: string },
  ) {
    mkdirSync(dirname(opts.logPath), { recursive: true });
    this.logFile = createWriteStream(opts.logPath);
    this.child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onStdout(line));
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.logFile.write(`${line}\n`);
      this.stderrTail.push(line);
      if (this.stderrTail.length > 8) this.stderrTail.shift();
    });
    this.child.on('error', (e) => this.fail(`could not start ${command}: ${e.message}`));
    // A worker that died before its exit event was handled: writing to it fails with EPIPE, which
    // without a listener would end the whole run (an unhandled 'error' event) instead of the request.
    this.child.stdin!.on('error', (e) => this.fail(`stopped reading its requests (${e.message})`));
    this.child.on('exit', (code, signal) => this.fail(`the worker exited (${signal ?? `status ${code}`})`));
  }

  private onStdout(line: string): void {
    if (!line.startsWith(REPLY_PREFIX)) {
      this.logFile.write(`[stdout] ${line}\n`);
      return;
    }
    let reply: Reply;
    try {
      reply = JSON.parse(line.slice(REPLY_PREFIX.length)) as Reply;
    } catch (e) {
      // Thrown here it would end the run from inside the stream's handler; the protocol is broken,
      // so the worker's requests fail and it is stopped.
      this.fail(`sent a reply that is not JSON (${(e as Error).message}): ${line.slice(REPLY_PREFIX.length, REPLY_PREFIX.length + 120)}`);
      this.kill();
      return;
    }
    const waiting = this.pending.get(reply.id);
    if (!waiting) return;
    this.pending.delete(reply.id);
    clearTimeout(waiting.timer);
    if (reply.ok) waiting.resolve(reply.result);
    else waiting.reject(new WorkerError(reply.error));
  }

  private fail(why: string): void {
    if (this.exited) return;
    const tail = this.stderrTail.filter((l) => l.trim()).slice(-3).join(' | ');
    this.exited = tail ? `${why}; its last messages: ${tail}` : why;
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new WorkerError(this.exited));
    }
    this.pending.clear();
  }

  /** The worker process's id (its main thread's, on Linux), once started. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  /** Sends a request and waits at most `timeoutMs` for its reply (then kills the worker). */
  request<T>(message: RequestBody, timeoutMs: number): Promise<T> {
    if (this.exited) return Promise.reject(new WorkerError(this.exited));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WorkerError(`no reply to '${message.op}' within ${Math.round(timeoutMs / 1000)} s`));
        this.kill();
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.stdin!.write(`${JSON.stringify({ ...message, id })}\n`);
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Asks the worker to exit, and kills it if it has not within a few seconds. */
  async close(): Promise<void> {
    if (this.alive) {
      await this.request({ op: 'exit' }, 5_000).catch(() => undefined);
      await new Promise<void>((resolve) => {
        if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          this.kill();
          resolve();
        }, 3_000);
        this.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.logFile.end();
  }
}

/**
 * Starts the worker for `spec`, its stderr logged to `<scratch>/logs/<engine>.log`; a Node worker
 * gets `nodeFlags` before its script.
 */
export function startWorker(spec: EngineSpec, repoRoot: string, workerBundle: string, scratch: string, nodeFlags: readonly string[] = []): EngineWorker {
  const logPath = join(scratch, 'logs', `${spec.id}.log`);
  if (spec.worker.runtime === 'node') {
    return new EngineWorker(spec.id, process.execPath, [...nodeFlags, workerBundle, spec.worker.engine], { cwd: repoRoot, env: {}, logPath });
  }
  const script = join(repoRoot, 'benchmarks', 'src', 'engines', 'torch_worker.py');
  return new EngineWorker(spec.id, pythonExecutable(), ['-u', script, ...spec.worker.args], { cwd: repoRoot, env: spec.worker.env, logPath });
}
