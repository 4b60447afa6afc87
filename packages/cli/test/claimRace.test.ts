// The moment two runs claim one --out at once, replayed without the race: the directory is absent
// when the second run looks (existsSync, mocked here to say so once), and the first run's claim
// file is there, made but not yet written (empty), when the second creates its own. This ordering
// needs only a preemption between the first run's open and write of its claim, which a loaded
// machine gives now and then (two runs started at once in cli.test.ts).

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

/** Paths whose next existsSync says absent, once. */
const absentOnce = new Set<string>();
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const existsSync = (path: Parameters<typeof fs.existsSync>[0]) => (absentOnce.delete(String(path)) ? false : fs.existsSync(path));
  return { ...fs, default: { ...fs, existsSync }, existsSync };
});

const { CLAIM_FILE, prepareOutputDirectory } = await import('../src/output.js');
const { UsageError } = await import('../src/args.js');

describe('a directory claimed by another run between the check and the claim', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'scorch-claim-race-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('whose claim names no process yet is refused as being claimed, not as written by process "unknown"', () => {
    const dir = join(scratch, 'race');
    mkdirSync(dir);
    writeFileSync(join(dir, CLAIM_FILE), '');
    absentOnce.add(dir);
    let message = '';
    try {
      prepareOutputDirectory('scorch train', dir, false);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      message = (e as Error).message;
    }
    expect(message).toBe(
      `scorch train: --out ${dir} is being claimed by another scorch run (its ${CLAIM_FILE} names no process yet); choose another directory, or remove ${join(dir, CLAIM_FILE)} if no scorch run is writing there`,
    );
    // The other run's claim is left as it was.
    expect(readFileSync(join(dir, CLAIM_FILE), 'utf8')).toBe('');
  });

  it('whose claim names its process is refused naming it', () => {
    const dir = join(scratch, 'race-written');
    mkdirSync(dir);
    writeFileSync(join(dir, CLAIM_FILE), `${process.pid}\n`);
    absentOnce.add(dir);
    expect(() => prepareOutputDirectory('scorch train', dir, false)).toThrow(
      `scorch train: --out ${dir} is being written by another scorch run (process ${process.pid}); choose another directory`,
    );
  });

  it('that gained a file of the user\'s instead is refused, keeps no claim, and holds only that file', () => {
    const dir = join(scratch, 'race-file');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    absentOnce.add(dir);
    expect(() => prepareOutputDirectory('scorch train', dir, false)).toThrow(`scorch train: --out ${dir} already exists and is not empty`);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });
});
