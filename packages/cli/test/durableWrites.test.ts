// writeFiles (checkpoints, metrics, samples) flushes each file to the disk before renaming it
// into place, and the directory after: --checkpoint-every promises that a run cut short by a
// power loss can be resumed from the last checkpoint, and a rename that reaches the disk before
// the file's data leaves an empty checkpoint.json where the previous one was. The calls are
// recorded through a mock of node:fs (the real functions still run), since a power loss cannot be.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

type Call = [name: string, ...args: unknown[]];
const calls: Call[] = [];
/** Errors to throw instead of a call, by function name and first argument (a path or descriptor). */
const failures: { name: string; target: (arg: unknown) => boolean; code: string }[] = [];

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const recorded = <F extends (...args: never[]) => unknown>(name: string, f: F): F =>
    ((...args: Parameters<F>) => {
      const failure = failures.find((x) => x.name === name && x.target(args[0]));
      if (failure) {
        calls.push([`${name} threw`, ...args]);
        throw Object.assign(new Error(`${failure.code}: ${name} (test)`), { code: failure.code });
      }
      const result = f(...args);
      calls.push([name, ...args, result]);
      return result;
    }) as F;
  const spied = {
    openSync: recorded('openSync', fs.openSync),
    writeFileSync: recorded('writeFileSync', fs.writeFileSync),
    fsyncSync: recorded('fsyncSync', fs.fsyncSync),
    closeSync: recorded('closeSync', fs.closeSync),
    renameSync: recorded('renameSync', fs.renameSync),
  };
  return { ...fs, ...spied, default: { ...fs, ...spied } };
});

const { writeFiles } = await import('../src/output.js');

describe('writeFiles flushes to the disk', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'scorch-durable-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  beforeEach(() => {
    calls.length = 0;
    failures.length = 0;
  });
  const temporary = (dir: string, name: string) => join(dir, `.${name}.writing-${process.pid}`);

  it('the temporary file before renaming it into place, and the directory after', () => {
    const dir = join(scratch, 'run');
    writeFiles(dir, { 'checkpoint.json': 'first' });
    writeFiles(dir, { 'checkpoint.json': 'second', 'metrics.json': '{}' });
    expect(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).toBe('second');
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.json', 'metrics.json']);
    // Each file's calls, from the open of its temporary name: every recorded call carries its
    // arguments, then its result (a descriptor, for openSync).
    const opens = calls.flatMap((c, i) => (c[0] === 'openSync' && String(c[1]).includes('.writing-') ? [i] : []));
    expect(opens.map((i) => calls[i]![1])).toEqual([temporary(dir, 'checkpoint.json'), temporary(dir, 'checkpoint.json'), temporary(dir, 'metrics.json')]);
    opens.forEach((open, k) => {
      const path = String(calls[open]![1]);
      const name = path === temporary(dir, 'metrics.json') ? 'metrics.json' : 'checkpoint.json';
      const fd = calls[open]!.at(-1);
      const upTo = k + 1 < opens.length ? opens[k + 1]! : calls.length;
      const own = calls.slice(open, upTo).map((c) => c[0] === 'openSync' && c[1] === dir ? ['open directory', c.at(-1)] : c);
      // Written, flushed and closed, then renamed; then the directory opened, flushed and closed,
      // all before the next file is begun.
      const dirFd = own.find((c) => c[0] === 'open directory')?.[1];
      expect(own.map((c) => c[0]), name).toEqual(['openSync', 'writeFileSync', 'fsyncSync', 'closeSync', 'renameSync', 'open directory', 'fsyncSync', 'closeSync']);
      expect(own.map((c) => (c[0] === 'renameSync' ? [c[1], c[2]] : c[1])), name).toEqual([path, fd, fd, fd, [path, join(dir, name)], dirFd, dirFd, dirFd]);
    });
  });

  it('where the platform cannot open or flush a directory, the file is still written', () => {
    for (const [name, code] of [['openSync', 'EISDIR'], ['openSync', 'EACCES'], ['fsyncSync', 'EINVAL'], ['fsyncSync', 'EPERM']] as const) {
      const dir = join(scratch, `no-directory-sync-${name}-${code}`);
      failures.length = 0;
      calls.length = 0;
      // The directory's descriptor is the one opened on `dir`; recorded calls hold the results.
      const dirFds = () => calls.filter((c) => c[0] === 'openSync' && c[1] === dir).map((c) => c.at(-1));
      failures.push({ name, code, target: name === 'openSync' ? (arg) => arg === dir : (arg) => dirFds().includes(arg) });
      expect(() => writeFiles(dir, { 'checkpoint.json': code })).not.toThrow();
      expect(readFileSync(join(dir, 'checkpoint.json'), 'utf8'), code).toBe(code);
      expect(calls.some((c) => c[0] === `${name} threw`), code).toBe(true);
      // Every descriptor opened was closed.
      const opened = calls.filter((c) => c[0] === 'openSync').map((c) => c.at(-1));
      const closed = calls.filter((c) => c[0] === 'closeSync').map((c) => c[1]);
      expect(closed.sort(), code).toEqual(opened.sort());
    }
  });

  it('a file that cannot be flushed is not renamed into place: the previous one stays, and the error is thrown', () => {
    const dir = join(scratch, 'fails');
    writeFiles(dir, { 'checkpoint.json': 'old' });
    const fds = () => calls.filter((c) => c[0] === 'openSync' && c[1] === temporary(dir, 'checkpoint.json')).map((c) => c.at(-1));
    calls.length = 0;
    failures.push({ name: 'fsyncSync', code: 'EIO', target: (arg) => fds().includes(arg) });
    expect(() => writeFiles(dir, { 'checkpoint.json': 'new' })).toThrow(/^EIO/);
    expect(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['checkpoint.json']);
    expect(calls.some((c) => c[0] === 'renameSync')).toBe(false);
    // And an error flushing the directory that is not the platform's refusal is not hidden.
    failures.length = 0;
    calls.length = 0;
    const dirFds = () => calls.filter((c) => c[0] === 'openSync' && c[1] === dir).map((c) => c.at(-1));
    failures.push({ name: 'fsyncSync', code: 'EIO', target: (arg) => dirFds().includes(arg) });
    expect(() => writeFiles(dir, { 'checkpoint.json': 'newer' })).toThrow(/^EIO/);
  });
});
