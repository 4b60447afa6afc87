// makeDirectories replaces mkdirSync(path, { recursive: true }) in the CLI: Node 20's recursive
// mkdir retries the parent for ever where mkdir fails with ENOENT under an existing directory
// (/proc, some FUSE mounts), and `scorch train --out /proc/x` hung. Failures are injected through
// a mock of node:fs (the real functions run otherwise), since such a file system is not at hand
// everywhere; the CLI test of --out /proc/… runs where Linux's /proc is.

import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

/** mkdir calls to fail, by path, with the given code. */
const failures = new Map<string, string>();
const attempts: string[] = [];

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const mkdirSync = ((path: string, options?: unknown) => {
    attempts.push(String(path));
    const code = failures.get(String(path));
    // 'RACE': another process makes the directory between the look and this mkdir.
    if (code === 'RACE') fs.mkdirSync(path, options as never);
    if (code === 'RACE') throw Object.assign(new Error(`EEXIST: mkdir '${path}' (test)`), { code: 'EEXIST' });
    if (code !== undefined) throw Object.assign(new Error(`${code}: mkdir '${path}' (test)`), { code });
    return fs.mkdirSync(path, options as never);
  }) as typeof fs.mkdirSync;
  return { ...fs, mkdirSync, default: { ...fs, mkdirSync } };
});

const { makeDirectories } = await import('../src/output.js');

const scratch = mkdtempSync(join(tmpdir(), 'scorch-mkdir-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
beforeEach(() => {
  failures.clear();
  attempts.length = 0;
});

describe('makeDirectories', () => {
  it('makes every missing directory and returns the outermost it made, as the recursive mkdir does', () => {
    const deep = join(scratch, 'a', 'b', 'c');
    expect(makeDirectories(deep)).toBe(join(scratch, 'a'));
    expect(statSync(deep).isDirectory()).toBe(true);
    expect(makeDirectories(deep)).toBeUndefined();
    expect(makeDirectories(join(scratch, 'a', 'b', 'd'))).toBe(join(scratch, 'a', 'b', 'd'));
  });

  it('throws mkdir\'s ENOENT under an existing directory once, where the recursive form loops for ever', () => {
    const parent = join(scratch, 'refusing');
    const inner = join(parent, 'x', 'y');
    makeDirectories(parent);
    attempts.length = 0;
    failures.set(join(parent, 'x'), 'ENOENT');
    expect(() => makeDirectories(inner)).toThrow(/ENOENT: mkdir '.*refusing\/x' \(test\)/);
    expect(attempts).toEqual([join(parent, 'x')]);
  });

  it('leaves nothing half made when a deeper directory is refused', () => {
    const top = join(scratch, 'half');
    const inner = join(top, 'b', 'c');
    failures.set(inner, 'ENOSPC');
    expect(() => makeDirectories(inner)).toThrow(/ENOSPC/);
    expect(attempts).toEqual([top, join(top, 'b'), inner]);
    expect(existsSync(top)).toBe(false);
  });

  it('takes a directory another process made meanwhile (EEXIST) as there, and does not return it as made', () => {
    const raced = join(scratch, 'raced');
    const run = join(raced, 'run');
    failures.set(raced, 'RACE');
    expect(makeDirectories(run)).toBe(run);
    expect(attempts).toEqual([raced, run]);
    expect(statSync(run).isDirectory()).toBe(true);
  });

  it('fails as mkdir does (EEXIST) where a file stands at the path', () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'mine');
    expect(() => makeDirectories(file)).toThrow(/EEXIST/);
  });
});
