// Output directories and checkpoints, written so that nothing is lost or mixed on disk:
// - A run claims its directory before any work (see prepareOutputDirectory), so two runs started
//   at once (into one --out, or a default name made in the same second) never share a directory.
// - A run never writes into a directory that already holds files unless the user says --force;
//   then the directory's old contents are first moved, whole, to a sibling
//   `<dir>.replaced-<date>-<time>` (kept, never deleted: it is the user's to remove), so a run
//   that fails or is interrupted leaves only its own files in <dir>, never two runs' side by side.
// - Every file is written under a temporary name, flushed to the disk (fsync) and renamed into
//   place, and the directory is flushed after the rename, so a file is either its old self or
//   complete, never half written, even after a power loss.
// - metrics.json names the checkpoint its samples came from, by path and SHA-256.
// A checkpoint is one JSON file: the model and noise descriptions that rebuild the network, the
// training settings, the parameters in saveParams' format and (from format v2) Adam's state, so
// that `scorch train --resume` can continue the run.

import { createHash, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { type RandomKey, zerosLike } from '@scorch/tensor';
import {
  type DatasetName, type ModelSpec, type NoiseSpec, type ObjectiveName, type Optimizer, type OptimizerState, type Params, type SavedParams, type ScoreModel, type TrainProgress,
  OBJECTIVES, buildModel, isDatasetName, isObjectiveName, loadParamsInto, saveParams,
} from '@scorch/score';
import { type FlagSpec, UsageError, expectation, fitsFlag } from './args.js';
import { batchFlag, lrFlag, seedFlag } from './flags.js';

export const CHECKPOINT_FILE = 'checkpoint.json';

/** Local time as YYYYMMDD-HHMMSS, for default run directory names. */
function timestamp(date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${two(date.getMonth() + 1)}${two(date.getDate())}-${two(date.getHours())}${two(date.getMinutes())}${two(date.getSeconds())}`;
}

/**
 * mkdirSync(path, { recursive: true }), one directory at a time: Node 20's recursive form retries
 * the parent for ever where mkdir fails with ENOENT under an existing directory (/proc, some FUSE
 * mounts), so `--out /proc/x` hung. Throws mkdir's own error there. Returns the first directory
 * made, or undefined when `path` was already a directory, as the recursive form does.
 */
export function makeDirectories(path: string): string | undefined {
  const missing: string[] = [];
  for (let p = resolve(path); !existsSync(p); p = dirname(p)) {
    missing.push(p);
    if (dirname(p) === p) break;
  }
  if (missing.length === 0) {
    // Already there: a directory is fine; anything else fails as mkdir does (EEXIST).
    if (!statSync(path).isDirectory()) mkdirSync(path);
    return undefined;
  }
  missing.reverse();
  const made: string[] = [];
  for (const d of missing) {
    try {
      mkdirSync(d);
      made.push(d);
    } catch (e) {
      // Made meanwhile by another process (two runs making scorch-runs/ at once): fine.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      // Nothing half made stays behind: what this call made is removed, innermost first.
      // A failed removal must not replace mkdir's error, which is the one to report.
      try {
        if (made.length > 0) removeMadeDirectories(made[made.length - 1]!, made[0]);
      } catch {
        // Left as it is: the error below names what failed.
      }
      throw e;
    }
  }
  return made[0];
}

/** A fresh directory name `<parent>/<stem>-<timestamp>` (with -2, -3, … if that exists). */
export function freshDirectory(parent: string, stem: string): string {
  const base = resolve(parent, `${stem}-${timestamp()}`);
  let dir = base;
  for (let k = 2; existsSync(dir); k++) dir = `${base}-${k}`;
  return dir;
}

/** Whether `path` is `dir` or lies inside it. */
export function isWithin(path: string, dir: string): boolean {
  const r = relative(dir, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * The file a run keeps in its output directory while it works there: its claim on the directory,
 * one line holding its process id and, where the platform tells them (Linux's /proc), the boot
 * and the start time of that process, then a token of the claim's own (see ClaimRecord). A second
 * run finds it and stays out, unless the process it names has ended (or is another process that
 * has since been given the same id: its start time or the boot differs); release() removes it. A run
 * stopped by a signal (Ctrl-C, SIGTERM, SIGHUP) before it wrote anything removes it with the
 * directory; one stopped after writing leaves it beside its files, which marks them as an
 * interrupted run's (prepareOutputDirectory says so when refusing the directory). While training,
 * the run catches the first signal instead (see OutputDirectory.catchSignals): it saves its
 * checkpoint and releases the directory, which then holds the checkpoint only.
 */
export const CLAIM_FILE = '.scorch-run';

export interface OutputDirectory {
  /** The absolute path: made and claimed (it holds only CLAIM_FILE) until the run writes. */
  readonly path: string;
  /** Where --force moved the directory's previous contents, if it had any. */
  readonly movedAside?: string;
  /**
   * Ends the run's claim, whether it succeeded or failed: removes CLAIM_FILE, and the directory
   * itself (with any parents the claim made) when the run wrote nothing into it. A directory that
   * is no longer this run's (see owned) is left as it is, with the other run's claim.
   */
  release(): void;
  /**
   * Whether the directory is still this run's: the directory it claimed (not one made anew at its
   * path after it was removed), holding this run's claim (not another run's, nor none).
   */
  owned(): boolean;
  /**
   * Writes `files` into the directory (writeFiles), after checking that it is still this run's;
   * when it is not, writes nothing and throws a DirectoryTakenError.
   */
  write(files: Readonly<Record<string, string>>): void;
  /**
   * Writes `files` into a fresh sibling `<dir>.orphaned-<date>-<time>` (for a run whose directory
   * was taken: see DirectoryTakenError), and returns its path.
   */
  rescue(files: Readonly<Record<string, string>>): string;
  /**
   * Until the returned function is called, the first stop signal (Ctrl-C, SIGTERM, SIGHUP) calls
   * `onStop` instead of ending the process, so that the run can finish its step and save what it
   * has (training does); a second signal ends the process as any signal does (see claim).
   */
  catchSignals(onStop: (signal: NodeJS.Signals) => void): () => void;
}

/** The exit status of a process ended by `signal`, as a shell reports it: 128 + its number (130 for SIGINT). */
export function signalExitStatus(signal: NodeJS.Signals): number {
  return 128 + (osConstants.signals[signal] ?? 0);
}

/** Whether the process `pid` is running (on this machine). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * What a claim file says: the claiming process's id, and (from claims written with them) the
 * boot it ran in and its start time, which tell it from a later process given the same id. A
 * claim written before these were recorded holds the id alone.
 */
interface ClaimRecord {
  readonly pid: number;
  /** /proc/sys/kernel/random/boot_id when the claim was made. */
  readonly boot?: string;
  /** The process's start time, in clock ticks after boot (field 22 of /proc/<pid>/stat). */
  readonly start?: string;
}

/** The boot id of this machine's running kernel, or undefined where the platform does not say (no /proc). */
function bootId(): string | undefined {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return /^[\w-]+$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The start time of process `pid` (field 22 of /proc/<pid>/stat, clock ticks after boot), or undefined where it cannot be read. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2, the command name, is in parentheses and may hold spaces and parentheses itself:
    // the fields after its last ')' are fields 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
    const start = fields[22 - 3];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** The text of this process's claim file: one line, read by claimRecord (and, its process id, by versions that read that alone). */
function claimText(): string {
  const boot = bootId();
  const start = processStart(process.pid);
  return `${process.pid}${boot ? ` boot=${boot}` : ''}${start ? ` start=${start}` : ''} claim=${randomBytes(8).toString('hex')}\n`;
}

/** What the claim file text `text` says, or undefined when it names no process (it is being written). */
function claimRecord(text: string): ClaimRecord | undefined {
  const pid = Number.parseInt(text, 10);
  if (!(Number.isSafeInteger(pid) && pid > 0)) return undefined;
  return { pid, boot: /\bboot=(\S+)/.exec(text)?.[1], start: /\bstart=(\S+)/.exec(text)?.[1] };
}

/**
 * Whether the process that made `claim` is running (on this machine): its id is held, and, where
 * the claim and the platform both say, by the same process (the same boot and start time), not
 * a later one given a dead run's id (after a reboot, ids are handed out from small numbers again).
 */
function isClaimLive(claim: ClaimRecord): boolean {
  if (!isRunning(claim.pid)) return false;
  if (claim.boot !== undefined) {
    const boot = bootId();
    if (boot !== undefined && boot !== claim.boot) return false;
  }
  if (claim.start !== undefined) {
    const start = processStart(claim.pid);
    if (start !== undefined && start !== claim.start) return false;
  }
  return true;
}

/** What `dir`'s CLAIM_FILE says, or undefined when there is none, it is unreadable, or it names no process yet. */
function claimant(dir: string): ClaimRecord | undefined {
  try {
    return claimRecord(readFileSync(join(dir, CLAIM_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/** How to free a directory whose claim is no live run's after all (a process given a dead run's id, where the claim cannot tell). */
const removeClaimHint = (path: string): string => `; if no scorch run is writing there, remove ${join(path, CLAIM_FILE)}`;

/**
 * A run's output directory was removed, or taken by another run, while the run worked: nothing
 * more is written into it (see OutputDirectory.write). An error of the run (exit status 1), not
 * of its flags.
 */
export class DirectoryTakenError extends Error {
  constructor(readonly where: string, readonly dir: string) {
    super(`--out ${dir} was removed, or taken by another scorch run, while this run worked; this run wrote nothing more there`);
    this.name = 'DirectoryTakenError';
  }
}

/**
 * The first directory at or under `dir` that a running scorch run has claimed (a sample's default
 * --out lies inside its checkpoint's run directory), or undefined. Symbolic links are not followed.
 */
function liveClaimWithin(dir: string): { path: string; pid: number | undefined } | undefined {
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.some((e) => e.name === CLAIM_FILE && e.isFile())) {
    // A claim that names no process yet is being made (see prepareOutputDirectory): live too.
    const claim = claimant(dir);
    if (claim === undefined || isClaimLive(claim)) return { path: dir, pid: claim?.pid };
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const found = liveClaimWithin(join(dir, entry.name));
    if (found) return found;
  }
  return undefined;
}

/** Refuses a directory that cannot be made: its nearest existing ancestor must be a writable directory. */
function checkCanMake(where: string, dir: string, path: string): void {
  // existsSync follows links: a link to nowhere is "absent", yet nothing can be made in its place.
  let link = false;
  try {
    link = lstatSync(path).isSymbolicLink();
  } catch {
    // Nothing there (ENOENT), or a file on the way (ENOTDIR, refused below).
  }
  if (link) {
    throw new UsageError(`${where}: --out ${dir} is a symbolic link to ${readlinkSync(path)}, which does not exist; expected a directory path that is new or empty`);
  }
  let ancestor = dirname(path);
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  if (!statSync(ancestor).isDirectory()) throw new UsageError(`${where}: --out ${dir} cannot be made: ${ancestor} is a file; expected a directory path that is new or empty`);
  try {
    accessSync(ancestor, constants.W_OK);
  } catch {
    throw new UsageError(`${where}: --out ${dir} cannot be made: ${ancestor} is not writable; expected a directory path that is new or empty`);
  }
}

/** The refusal of a directory whose claim file another run has made but not yet written. */
function beingClaimed(where: string, dir: string, path: string): UsageError {
  return new UsageError(`${where}: --out ${dir} is being claimed by another scorch run (its ${CLAIM_FILE} names no process yet); choose another directory, or remove ${join(path, CLAIM_FILE)} if no scorch run is writing there`);
}

/**
 * Claims `path` for this run: makes it (`exclusive`: it must not exist yet) and creates
 * CLAIM_FILE in it with the exclusive flag, so of two runs claiming one directory at once exactly
 * one succeeds. Returns undefined when `exclusive` and the directory appeared meanwhile.
 */
function claim(where: string, dir: string, path: string, exclusive: boolean): OutputDirectory | undefined {
  let made: string | undefined;
  try {
    if (exclusive) {
      made = makeDirectories(dirname(path));
      try {
        mkdirSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
        throw e;
      }
      made ??= path;
    } else {
      made = makeDirectories(path);
    }
  } catch (e) {
    // What checkCanMake cannot foresee: a file system that refuses the directory (/proc, a
    // read-only mount, a full disk). Refused before any work, like the cases it does see.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined) throw e;
    removeMadeDirectories(dirname(path), made);
    throw new UsageError(`${where}: --out ${dir} cannot be made: ${(e as Error).message}; expected a directory path that is new or empty`);
  }
  const claimFile = join(path, CLAIM_FILE);
  const text = claimText();
  // The directory claimed, as the file system knows it: one made anew at its path is another.
  let identity: { dev: number; ino: number } | undefined;
  const owned = () => {
    try {
      const now = statSync(path);
      return identity !== undefined && now.dev === identity.dev && now.ino === identity.ino && readFileSync(claimFile, 'utf8') === text;
    } catch {
      return false;
    }
  };
  const release = () => {
    stopWatchingSignals();
    // A directory taken by another run (or removed and made anew) is not this run's to touch.
    if (!owned()) return;
    rmSync(claimFile, { force: true });
    removeMadeDirectories(path, made);
  };
  try {
    writeFileSync(claimFile, text, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another run claimed it since the caller looked; its claim may not name it yet (made, then
    // written), as prepareOutputDirectory also says.
    const other = claimant(path);
    if (other === undefined) throw beingClaimed(where, dir, path);
    throw new UsageError(`${where}: --out ${dir} is being written by another scorch run (process ${other.pid}); choose another directory${removeClaimHint(path)}`);
  }
  const { dev, ino } = statSync(path);
  identity = { dev, ino };
  // Another process may have written into the directory between the check and the claim.
  if (readdirSync(path).length > 1) {
    rmSync(claimFile, { force: true });
    throw new UsageError(`${where}: --out ${dir} already exists and is not empty; choose a new directory, or pass --force to move its contents aside to ${basename(path)}.replaced-<date>-<time> first`);
  }
  // A signal ends the process at once (what the user asked for), but first a run that has written
  // nothing takes its claim and directory back, as release() would; the signal is then raised
  // again with no listener, so the process ends by it (exit status 128 + its number in a shell).
  // Listeners run only when the event loop turns: long loops yield (turnEventLoop, @scorch/score).
  let catcher: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (catcher) {
      // Caught once (see catchSignals): the next signal ends the process.
      const caught = catcher;
      catcher = undefined;
      caught(signal);
      return;
    }
    stopWatchingSignals();
    try {
      const entries = readdirSync(path);
      if (entries.length === 1 && entries[0] === CLAIM_FILE) release();
    } catch {
      // Nothing to take back.
    }
    process.kill(process.pid, signal);
  };
  const stopWatchingSignals = () => {
    for (const signal of STOP_SIGNALS) process.removeListener(signal, onSignal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  const catchSignals = (onStop: (signal: NodeJS.Signals) => void) => {
    catcher = onStop;
    return () => {
      if (catcher === onStop) catcher = undefined;
    };
  };
  const write = (files: Readonly<Record<string, string>>) => {
    if (!owned()) throw new DirectoryTakenError(where, dir);
    writeFiles(path, files);
  };
  const rescue = (files: Readonly<Record<string, string>>) => {
    // Made exclusively, as a default run directory is: no other run shares it. Its parent may be
    // gone (the run's directory taken by removing scorch-runs/): made again, as claim makes it.
    makeDirectories(dirname(path));
    for (;;) {
      const orphan = freshDirectory(dirname(path), `${basename(path)}.orphaned`);
      try {
        mkdirSync(orphan);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw e;
      }
      writeFiles(orphan, files);
      return orphan;
    }
  };
  return { path, release, owned, write, rescue, catchSignals };
}

/** Removes what a claim made (`made`, the outermost, up to `path`), innermost first, as long as it is empty. */
function removeMadeDirectories(path: string, made: string | undefined): void {
  if (made === undefined) return;
  for (let d = path; isWithin(d, made); d = dirname(d)) {
    if (!existsSync(d) || readdirSync(d).length > 0) break;
    rmdirSync(d);
  }
}

/** The signals that stop a run (Ctrl-C, kill's default, a closed terminal). */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Makes `dir` ready for a run, before any work, and claims it (see CLAIM_FILE): refuses
 * (UsageError, exit 2) when it is a file, a directory another run is writing into, or a directory
 * with entries and `force` is off. With `force`, a non-empty directory is renamed to a fresh
 * sibling `<dir>.replaced-<date>-<time>` (kept); `protect` lists paths that must not be moved that
 * way (the working directory, the checkpoint being read). `dir` given as { parent, stem } is a
 * fresh `<parent>/<stem>-<date>-<time>` of this run's own (see freshDirectory). The caller must
 * call release() when the run ends, so a run that fails before writing leaves no directory behind.
 */
export function prepareOutputDirectory(
  where: string, dir: string | { readonly parent: string; readonly stem: string }, force: boolean, protect: readonly string[] = [],
): OutputDirectory {
  if (typeof dir !== 'string') {
    // Two runs naming their directory in the same second take -2, -3, …: whichever makes the
    // name first has it.
    for (;;) {
      const path = freshDirectory(dir.parent, dir.stem);
      checkCanMake(where, path, path);
      const claimed = claim(where, path, path, true);
      if (claimed) return claimed;
    }
  }
  const path = resolve(dir);
  let movedAside: string | undefined;
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new UsageError(`${where}: --out ${dir} is a file; expected a directory that is new or empty`);
    let entries = readdirSync(path);
    if (entries.includes(CLAIM_FILE)) {
      const other = claimant(path);
      if (other !== undefined && isClaimLive(other)) {
        throw new UsageError(`${where}: --out ${dir} is being written by another scorch run (process ${other.pid}); choose another directory${removeClaimHint(path)}`);
      }
      // A claim names its process once its writer has written it: one that names none yet is a
      // run claiming the directory this very moment (the file is made, then written), not one
      // that died, so it must not be taken for stale and removed.
      if (other === undefined) throw beingClaimed(where, dir, path);
    }
    // A killed run's half-written files are no one's: a directory holding nothing else is free.
    // They are removed where they are a run's (its claim is there) or when this run takes the
    // directory; a directory of the user's that is refused keeps every file, whatever its name.
    const abandoned = abandonedWrites(path, entries);
    const others = entries.filter((name) => !abandoned.includes(name));
    const empty = others.length === 0 || (others.length === 1 && others[0] === CLAIM_FILE);
    if (empty || entries.includes(CLAIM_FILE)) {
      const removed = removeFiles(path, abandoned);
      entries = entries.filter((name) => !removed.includes(name));
    }
    if (empty) {
      // The claim of a run that was killed before it wrote anything: nothing of the user's.
      rmSync(join(path, CLAIM_FILE), { force: true });
      entries = entries.filter((name) => name !== CLAIM_FILE);
    }
    if (entries.length > 0) {
      if (!force) {
        const what = entries.includes(CLAIM_FILE) ? 'holds the files of an interrupted scorch run' : 'already exists and is not empty';
        throw new UsageError(`${where}: --out ${dir} ${what}; choose a new directory, or pass --force to move its contents aside to ${basename(path)}.replaced-<date>-<time> first`);
      }
      const inside = [process.cwd(), ...protect].map((p) => resolve(p)).find((p) => isWithin(p, path));
      if (inside !== undefined) throw new UsageError(`${where}: --out ${dir} holds ${inside === resolve(process.cwd()) ? 'the current directory' : inside}, which --force would move aside; choose another directory`);
      // A run writing further down (a sample into <run>/samples-…) would, once its directory
      // was moved, make it again inside this run's and write there.
      const busy = liveClaimWithin(path);
      if (busy) throw new UsageError(`${where}: --out ${dir} holds ${busy.path}, which another scorch run (process ${busy.pid ?? 'unknown'}) is writing into; --force would move it aside mid-run; choose another directory${removeClaimHint(busy.path)}`);
      movedAside = freshDirectory(dirname(path), `${basename(path)}.replaced`);
      renameSync(path, movedAside);
    }
  } else {
    checkCanMake(where, dir, path);
  }
  return { ...claim(where, dir, path, false)!, movedAside };
}

/**
 * JSON for people and tools alike: objects one key per line, arrays (of numbers, points, history
 * entries) on a single line, so a checkpoint's settings read at a glance above its parameters.
 */
export function readableJson(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return JSON.stringify(value);
  const inner = `${indent}  `;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${readableJson(v, inner)}`).join(',\n')}\n${indent}}`;
}

/** The temporary name writeFiles writes `name` under, in process `pid`, before renaming it. */
const temporaryName = (name: string, pid: number): string => `.${name}.writing-${pid}`;
const TEMPORARY_PATTERN = /^\..+\.writing-(\d+)$/;

/**
 * Removes from `dir` the temporary files (see writeFiles) of processes that are no longer
 * running: a run killed (SIGKILL, a power loss) while writing a file leaves its temporary file,
 * which no process will finish or rename. The file it was to replace is untouched (its old
 * self, or absent), so nothing is lost; a temporary file of a running process is kept. Returns
 * the names removed. A directory that cannot be read or written is left as it is.
 */
export function removeAbandonedWrites(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return removeFiles(dir, abandonedWrites(dir, entries));
}

/** Removes `names` from `dir`; returns those removed (one gone meanwhile, or not ours to remove, is left). */
function removeFiles(dir: string, names: readonly string[]): string[] {
  return names.filter((name) => {
    try {
      rmSync(join(dir, name));
      return true;
    } catch {
      return false;
    }
  });
}

/** Of `entries` (the names in `dir`), the temporary files (plain files) of writers whose process has ended. */
function abandonedWrites(dir: string, entries: readonly string[]): string[] {
  return entries.filter((name) => {
    const pid = Number(TEMPORARY_PATTERN.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isRunning(pid)) return false;
    try {
      return lstatSync(join(dir, name)).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Writes each file under a temporary name beside it and renames it into place (a rename within
 * a directory is atomic), so an interrupted or failed write never leaves a truncated file. The
 * temporary file is flushed to the disk before the rename and the directory after it: without
 * that, after a power loss the rename can be on the disk before the data (an empty file where
 * the previous one was, on XFS or ext4 without auto_da_alloc).
 */
export function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  makeDirectories(dir);
  for (const [name, content] of Object.entries(files)) {
    const temporary = join(dir, temporaryName(name, process.pid));
    try {
      const fd = openSync(temporary, 'w');
      try {
        writeFileSync(fd, content);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, join(dir, name));
    } catch (e) {
      rmSync(temporary, { force: true, recursive: true });
      throw e;
    }
    syncDirectory(dir);
  }
}

/**
 * Errors of opening or flushing a directory where the platform or file system does not allow it
 * (Windows opens no directory, some file systems flush none): the rename is then as durable as
 * that system makes it.
 */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** Flushes `dir`'s entries (a rename in it) to the disk, where the platform can. */
function syncDirectory(dir: string): void {
  const unsupported = (e: unknown) => DIRECTORY_SYNC_UNSUPPORTED.has(String((e as NodeJS.ErrnoException | null)?.code));
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (e) {
    if (unsupported(e)) return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!unsupported(e)) throw e;
  } finally {
    closeSync(fd);
  }
}

/** Which checkpoint a run's samples came from: its file and the SHA-256 of its contents. */
export interface CheckpointRef {
  readonly path: string;
  readonly sha256: string;
}

export function checkpointRef(path: string, contents: string): CheckpointRef {
  return { path: resolve(path), sha256: createHash('sha256').update(contents).digest('hex') };
}

/** metrics.json: the metrics with the checkpoint they belong to, right after the format. */
export function metricsJson(metrics: { readonly format: string }, checkpoint: CheckpointRef): string {
  const { format, ...rest } = metrics;
  return `${readableJson({ format, checkpoint, ...rest })}\n`;
}

/** The checkpoint format written now; CHECKPOINT_FORMATS are those read. */
export const CHECKPOINT_FORMAT = 'scorch-checkpoint/v2';
/** v1 (before v2 added the optimiser's state and totalSteps) is read for sampling, not resumed. */
export const CHECKPOINT_FORMATS = ['scorch-checkpoint/v1', CHECKPOINT_FORMAT] as const;

/**
 * The optimiser's state in a checkpoint: `Optimizer.stateDict()` with each slot's tensors in
 * saveParams' format. The random stream needs nothing more: step n's key is foldIn(the seed's
 * training key, n), so the step count (`step`) is where the stream stands.
 */
export type SavedOptimizerState = Omit<OptimizerState, 'state'> & { readonly state: Readonly<Record<string, SavedParams>> };

export interface Checkpoint {
  readonly format: (typeof CHECKPOINT_FORMATS)[number];
  readonly data: DatasetName;
  readonly loss: ObjectiveName;
  readonly model: ModelSpec;
  readonly noise: NoiseSpec;
  /** Half-width of the square the data is plotted in (and Langevin chains start in). */
  readonly domain: number;
  readonly training: {
    /** Steps trained. */
    readonly steps: number;
    /**
     * The steps the run was started for (its --steps, the learning-rate schedule's length): more
     * than `steps` when it stopped early (--stop-after, a stop signal, or a --checkpoint-every
     * checkpoint written while training). From v2; a v1 run trained all its steps.
     */
    readonly totalSteps?: number;
    readonly batch: number;
    readonly seed: number;
    readonly learningRate: number;
    /** Steps between loss reads (--log-every): a resumed run reads as the run did. From v2. */
    readonly logEvery?: number;
    /**
     * Where it trained: the backend's description ('cpu', 'webgpu (…)'); for a run resumed on
     * another backend than it began on, the backends in order, in words (see `backends`).
     */
    readonly backend: string;
    /**
     * Only in a run trained on more than one backend (resumed on another): each backend's
     * description and the steps it trained, in order, from step 1 to `steps`.
     */
    readonly backends?: readonly BackendSegment[];
    // No wall-clock time: a checkpoint is the model and how it was trained, so two runs with the
    // same flags and seed write the same bytes (the time is in metrics.json).
    readonly history: readonly TrainProgress[];
  };
  /** Parameters and buffers (the Fourier frequencies of a conditional model), from saveParams. */
  readonly params: SavedParams;
  /** Adam's state after `training.steps` steps, to continue the run (v2; absent from v1). */
  readonly optimizer?: SavedOptimizerState;
}

/** Steps `firstStep` to `lastStep` (1-based, inclusive) of a run, trained on `backend` (its description). */
export interface BackendSegment {
  readonly backend: string;
  readonly firstStep: number;
  readonly lastStep: number;
}

/** The backends a checkpoint's run trained on, in order (one, covering every step, unless it moved). */
export function backendSegments(training: Checkpoint['training']): readonly BackendSegment[] {
  return training.backends ?? [{ backend: training.backend, firstStep: 1, lastStep: training.steps }];
}

/**
 * Backends in words, for checkpoints, metrics and reports: 'cpu (steps 1–12), then webgpu (…)
 * (steps 13–30)'; one alone is its description (with its steps only when `withSteps`).
 */
export function describeBackends(segments: readonly BackendSegment[], withSteps = false): string {
  if (segments.length === 1 && !withSteps) return segments[0]!.backend;
  const steps = (s: BackendSegment) => (s.firstStep === s.lastStep ? `step ${s.firstStep}` : `steps ${s.firstStep}–${s.lastStep}`);
  return segments.map((s) => `${s.backend} (${steps(s)})`).join(', then ');
}

/**
 * The checkpoint of `model` trained by `optimizer` (its state saved beside the parameters, all
 * read from the device at this call).
 */
export async function checkpointJson(fields: Omit<Checkpoint, 'format' | 'params' | 'optimizer'>, model: ScoreModel, optimizer: Optimizer): Promise<string> {
  const { kind, options, step, counts, state } = optimizer.stateDict!();
  // Every read is issued before the first await, as saveParams does: the file holds one moment.
  const slots = Object.keys(state);
  const reads = [saveParams({ ...model.params, ...model.buffers }), ...slots.map((slot) => saveParams(state[slot]!))];
  const [params, ...saved] = (await Promise.all(reads)).map((text) => JSON.parse(text) as SavedParams);
  const checkpoint: Checkpoint = {
    format: CHECKPOINT_FORMAT, ...fields, params: params!,
    optimizer: { kind, options, step, counts, state: Object.fromEntries(slots.map((slot, i) => [slot, saved[i]!])) },
  };
  return `${readableJson(checkpoint)}\n`;
}

/** Whether `v` is a finite number above 0. */
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/**
 * What is wrong with a checkpoint's noise description, read from JSON, for a model trained with
 * `loss` (whose noise family it is already known to match); undefined when it is whole.
 */
function noiseProblem(noise: Record<string, unknown>, loss: ObjectiveName): string | undefined {
  const list = (v: unknown, length?: number) => Array.isArray(v) && v.length > 0 && (length === undefined || v.length === length) && v.every(isPositive);
  switch (noise.kind) {
    case 'levels':
      if (!list(noise.sigmas)) return 'its noise levels (noise.sigmas) are not a list of positive numbers';
      // The models and samplers take σ₁ > … > σ_L (annealed Langevin runs them in this order).
      return (noise.sigmas as number[]).every((sigma, i, sigmas) => i === 0 || sigma < sigmas[i - 1]!) ? undefined : 'its noise levels (noise.sigmas) are not in decreasing order, σ₁ > … > σ_L';
    case 'single':
      // Training computes in float32: a σ it holds only as 0 or ∞ was refused as --sigma (checkDsmSigma).
      return isPositive(noise.sigma) && isPositive(Math.fround(noise.sigma)) ? undefined : 'its noise level (noise.sigma) is not a positive number that float32 holds';
    case 'kde':
      return list(noise.bandwidth, 2) && isPositive(noise.points) && Number.isInteger(noise.points) ? undefined : 'its kernel density estimate (noise.bandwidth, noise.points) is not two positive widths and a point count';
    case 'sde':
      if (noise.sde !== loss) return `its SDE is ${JSON.stringify(noise.sde)}, but loss ${loss} trains with the ${loss} SDE`;
      if (loss === 've') return isPositive(noise.sigmaMin) && isPositive(noise.sigmaMax) && noise.sigmaMin < noise.sigmaMax ? undefined : 'its SDE\'s noise scales (noise.sigmaMin < noise.sigmaMax) are not positive numbers in order';
      return isPositive(noise.betaMin) && isPositive(noise.betaMax) && noise.betaMin < noise.betaMax ? undefined : 'its SDE\'s rates (noise.betaMin < noise.betaMax) are not positive numbers in order';
    default:
      return undefined;
  }
}

/** What is wrong with `training[field]` for `flag`, which took that value in the run; undefined when it fits. */
function notTheFlags(training: object, field: string, flag: FlagSpec): string | undefined {
  const value = (training as Record<string, unknown>)[field];
  return fitsFlag(flag, value) ? undefined : `its training record's ${field} (training.${field}) is ${JSON.stringify(value) ?? 'missing'}, not ${expectation(flag)} as --${flag.name} takes`;
}

/** What is wrong with the values of train's flags a training record holds (batch, seed, learningRate); undefined when they fit. */
function trainingFlagsProblem(training: object): string | undefined {
  const fields = [['batch', batchFlag], ['seed', seedFlag], ['learningRate', lrFlag]] as const;
  return fields.map(([field, flag]) => notTheFlags(training, field, flag)).find((p) => p !== undefined);
}

/** Whether `backends`, read from JSON, is a list of segments that cover steps 1 to `steps` in order. */
function backendsFit(backends: unknown, steps: number): boolean {
  if (!Array.isArray(backends) || backends.length === 0) return false;
  let next = 1;
  for (const s of backends as Partial<BackendSegment>[]) {
    if (s === null || typeof s !== 'object' || typeof s.backend !== 'string' || s.firstStep !== next || !Number.isSafeInteger(s.lastStep) || !(s.lastStep! >= s.firstStep)) return false;
    next = s.lastStep! + 1;
  }
  return next === steps + 1;
}

/**
 * Reads `--checkpoint PATH` (a run directory, or its checkpoint.json; `flag` names the flag in
 * messages). Any problem is a usage error: the path is the user's value, and it is wrong.
 */
export function readCheckpoint(where: string, path: string, flag = 'checkpoint'): { checkpoint: Checkpoint; dir: string; ref: CheckpointRef } {
  const full = resolve(path);
  const file = existsSync(full) && statSync(full).isDirectory() ? join(full, CHECKPOINT_FILE) : full;
  if (!existsSync(file)) {
    throw new UsageError(`${where}: --${flag} ${path}: no ${existsSync(full) ? CHECKPOINT_FILE + ' in that directory' : 'such file or directory'}; expected a directory written by 'scorch train' (or its ${CHECKPOINT_FILE})`);
  }
  let parsed: unknown;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    // A directory where the file should be (EISDIR), or a file this process may not read.
    throw new UsageError(`${where}: --${flag} ${path}: ${file} cannot be read (${(e as Error).message}); expected a checkpoint written by 'scorch train'`);
  }
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${where}: --${flag} ${path}: ${file} is not valid JSON (${(e as Error).message}); expected a checkpoint written by 'scorch train'`);
  }
  const c = parsed as Partial<Checkpoint> | null;
  const problem =
    c === null || typeof c !== 'object' ? 'it is not a JSON object'
    : !(CHECKPOINT_FORMATS as readonly unknown[]).includes(c.format) ? `its format is ${JSON.stringify(c.format)}, not ${CHECKPOINT_FORMATS.map((f) => `'${f}'`).join(' or ')}`
    : !isDatasetName(c.data) ? `its data set ${JSON.stringify(c.data)} is unknown`
    : !isObjectiveName(c.loss) ? `its loss ${JSON.stringify(c.loss)} is unknown`
    : !c.model || c.model.kind !== 'mlpScore' || !Array.isArray(c.model.hidden) ? 'its model description is missing or not an mlpScore'
    : !c.noise || typeof c.noise.kind !== 'string' ? 'its noise description is missing'
    : c.noise.kind !== OBJECTIVES[c.loss].family ? `its noise description is of kind ${JSON.stringify(c.noise.kind)}, but loss ${c.loss} trains with noise of kind '${OBJECTIVES[c.loss].family}'`
    : noiseProblem(c.noise as unknown as Record<string, unknown>, c.loss) !== undefined ? noiseProblem(c.noise as unknown as Record<string, unknown>, c.loss)
    : !c.training || typeof c.training !== 'object' || !Array.isArray(c.training.history) ? 'its training record (with its loss history) is missing'
    : !(Number.isSafeInteger(c.training.steps) && c.training.steps >= 1 && Number.isSafeInteger(c.training.batch) && c.training.batch >= 1) ? 'its training record\'s steps and batch are not positive integers'
    // The values of train's flags it records (a resumed run trains with them): each one the flag takes.
    : trainingFlagsProblem(c.training) !== undefined ? trainingFlagsProblem(c.training)
    : typeof c.training.backend !== 'string' ? 'its training record\'s backend (training.backend) is not a description of a backend'
    : c.training.backends !== undefined && !backendsFit(c.training.backends, c.training.steps)
      ? "its training record's backends (training.backends) are not a list of { backend, firstStep, lastStep } covering its steps in order"
    : c.training.totalSteps !== undefined && !(Number.isSafeInteger(c.training.totalSteps) && c.training.totalSteps >= c.training.steps) ? 'its training record\'s totalSteps is not an integer at least its steps'
    : c.training.logEvery !== undefined && !(Number.isSafeInteger(c.training.logEvery) && c.training.logEvery >= 1) ? 'its training record\'s logEvery is not a positive integer'
    : !c.training.history.every((h) => h !== null && typeof h === 'object' && Number.isSafeInteger(h.step) && h.step >= 1 && Number.isFinite(h.loss))
      ? 'its loss history (training.history) is not a list of { step, loss } entries with finite losses'
    : !c.params || typeof c.params !== 'object' ? 'it holds no parameters'
    : !isPositive(c.domain) ? 'its plot domain is missing'
    : c.format !== 'scorch-checkpoint/v1' && (c.optimizer === null || typeof c.optimizer !== 'object' || c.optimizer.state === null || typeof c.optimizer.state !== 'object')
      ? "its optimiser's state (optimizer, with its state tensors) is missing"
    : undefined;
  if (problem) throw new UsageError(`${where}: --${flag} ${path}: ${problem}; expected a checkpoint written by 'scorch train'`);
  return { checkpoint: c as Checkpoint, dir: file === full ? resolve(full, '..') : full, ref: checkpointRef(file, text) };
}

/**
 * Loads a checkpoint's optimiser state into `optimizer` (made with the run's options) for
 * `params` (the restored model's, on their device), so that its next step is the run's next.
 * Throws (as the library does) when the state does not fit them.
 */
export function restoreOptimizer(saved: SavedOptimizerState, optimizer: Optimizer, params: Params): void {
  if (!optimizer.loadStateDict) throw new Error(`${optimizer.name} cannot load a saved state`);
  // Adam's second moment is an average of squares: a negative or NaN entry (an edited file) made
  // every later step's √v̂ NaN, and the resumed run trained into NaN parameters. (A NaN is saved
  // as the string 'NaN', as saveParams writes every non-finite number.)
  const secondMoment = saved.kind === 'adam' ? (saved.state as Record<string, { tensors?: Record<string, { data?: unknown }> }>).v?.tensors : undefined;
  for (const [name, entry] of Object.entries(secondMoment ?? {})) {
    const data = entry?.data;
    const at = Array.isArray(data) ? data.findIndex((x) => (typeof x === 'number' && x < 0) || x === '-Infinity' || x === 'NaN') : -1;
    if (at >= 0) throw new Error(`restoreOptimizer: Adam's second moment (state 'v') of '${name}' holds ${String((data as unknown[])[at])} at index ${at}; it is an average of squares, never negative or NaN`);
  }
  const state: Record<string, Params> = {};
  try {
    for (const [slot, tensors] of Object.entries(saved.state)) {
      // Tensors of the parameters' shapes, dtypes and device, which loadParamsInto fills (and
      // checks: every name, shape and dtype of the slot must be the parameters').
      state[slot] = Object.fromEntries(Object.entries(params).map(([name, p]) => [name, zerosLike(p)]));
      loadParamsInto(state[slot]!, JSON.stringify(tensors));
    }
    optimizer.loadStateDict({ ...saved, state }, params);
  } finally {
    for (const slot of Object.values(state)) for (const t of Object.values(slot)) t.dispose();
  }
}

/** The trained model of a checkpoint, on the default device. */
export function restoreModel(checkpoint: Checkpoint, key: RandomKey): ScoreModel {
  // The architecture is rebuilt from its description (any key: every value is then overwritten,
  // the Fourier frequencies included).
  const model = buildModel(checkpoint.model, checkpoint.noise, key);
  loadParamsInto({ ...model.params, ...model.buffers }, JSON.stringify(checkpoint.params));
  return model;
}
