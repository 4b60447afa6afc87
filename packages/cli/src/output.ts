// Output directories and checkpoints, written so that nothing is lost or mixed on disk:
// - A run never writes into a directory that already holds files unless the user says --force;
//   then the directory's old contents are first moved, whole, to a sibling
//   `<dir>.replaced-<date>-<time>` (kept, never deleted: it is the user's to remove), so a run
//   that fails or is interrupted leaves only its own files in <dir>, never two runs' side by side.
// - Every file is written under a temporary name and renamed into place, so a file is either
//   its old self or complete, never half written.
// - metrics.json names the checkpoint its samples came from, by path and SHA-256.
// A checkpoint is one JSON file: the model and noise descriptions that rebuild the network, the
// training settings, and the parameters in saveParams' format.

import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { type RandomKey } from '@scorch/tensor';
import {
  type DatasetName, type ModelSpec, type NoiseSpec, type ObjectiveName, type SavedParams, type ScoreModel, type TrainProgress,
  OBJECTIVES, buildModel, isDatasetName, isObjectiveName, loadParamsInto, saveParams,
} from '@scorch/score';
import { UsageError } from './args.js';

export const CHECKPOINT_FILE = 'checkpoint.json';

/** Local time as YYYYMMDD-HHMMSS, for default run directory names. */
function timestamp(date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${two(date.getMonth() + 1)}${two(date.getDate())}-${two(date.getHours())}${two(date.getMinutes())}${two(date.getSeconds())}`;
}

/** A fresh directory name `<parent>/<stem>-<timestamp>` (with -2, -3, … if that exists). */
export function freshDirectory(parent: string, stem: string): string {
  const base = resolve(parent, `${stem}-${timestamp()}`);
  let dir = base;
  for (let k = 2; existsSync(dir); k++) dir = `${base}-${k}`;
  return dir;
}

/** Whether `path` is `dir` or lies inside it. */
function isWithin(path: string, dir: string): boolean {
  const r = relative(dir, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

export interface OutputDirectory {
  /** The absolute path: absent or empty; `writeFiles` creates it with the run's first file. */
  readonly path: string;
  /** Where --force moved the directory's previous contents, if it had any. */
  readonly movedAside?: string;
}

/**
 * Makes `dir` ready for a run, before any work: refuses (UsageError, exit 2) when it is a file,
 * or a directory with entries and `force` is off. With `force`, a non-empty directory is renamed
 * to a fresh sibling `<dir>.replaced-<date>-<time>` (kept); `protect` lists paths that must not be
 * moved that way (the working directory, the checkpoint being read). Nothing is created here, so
 * a run that fails before writing leaves no empty directory behind.
 */
export function prepareOutputDirectory(where: string, dir: string, force: boolean, protect: readonly string[] = []): OutputDirectory {
  const path = resolve(dir);
  let movedAside: string | undefined;
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new UsageError(`${where}: --out ${dir} is a file; expected a directory that is new or empty`);
    if (readdirSync(path).length > 0) {
      if (!force) {
        throw new UsageError(`${where}: --out ${dir} already exists and is not empty; choose a new directory, or pass --force to move its contents aside to ${basename(path)}.replaced-<date>-<time> first`);
      }
      const inside = [process.cwd(), ...protect].map((p) => resolve(p)).find((p) => isWithin(p, path));
      if (inside !== undefined) throw new UsageError(`${where}: --out ${dir} holds ${inside === resolve(process.cwd()) ? 'the current directory' : inside}, which --force would move aside; choose another directory`);
      movedAside = freshDirectory(dirname(path), `${basename(path)}.replaced`);
      renameSync(path, movedAside);
    }
  } else {
    // The directory is made with the run's first file, after the work: its nearest existing
    // ancestor must be a directory this process can write into, or the run would fail only then.
    let ancestor = dirname(path);
    while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
    if (!statSync(ancestor).isDirectory()) throw new UsageError(`${where}: --out ${dir} cannot be made: ${ancestor} is a file; expected a directory path that is new or empty`);
    try {
      accessSync(ancestor, constants.W_OK);
    } catch {
      throw new UsageError(`${where}: --out ${dir} cannot be made: ${ancestor} is not writable; expected a directory path that is new or empty`);
    }
  }
  return { path, movedAside };
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

/**
 * Writes each file under a temporary name beside it and renames it into place (a rename within
 * a directory is atomic), so an interrupted or failed write never leaves a truncated file.
 */
export function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const temporary = join(dir, `.${name}.writing-${process.pid}`);
    try {
      writeFileSync(temporary, content);
      renameSync(temporary, join(dir, name));
    } catch (e) {
      rmSync(temporary, { force: true, recursive: true });
      throw e;
    }
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

export interface Checkpoint {
  readonly format: 'scorch-checkpoint/v1';
  readonly data: DatasetName;
  readonly loss: ObjectiveName;
  readonly model: ModelSpec;
  readonly noise: NoiseSpec;
  /** Half-width of the square the data is plotted in (and Langevin chains start in). */
  readonly domain: number;
  readonly training: {
    readonly steps: number;
    readonly batch: number;
    readonly seed: number;
    readonly learningRate: number;
    readonly backend: string;
    readonly seconds: number;
    readonly history: readonly TrainProgress[];
  };
  /** Parameters and buffers (the Fourier frequencies of a conditional model), from saveParams. */
  readonly params: SavedParams;
}

export async function checkpointJson(fields: Omit<Checkpoint, 'format' | 'params'>, model: ScoreModel): Promise<string> {
  const params = JSON.parse(await saveParams({ ...model.params, ...model.buffers })) as SavedParams;
  const checkpoint: Checkpoint = { format: 'scorch-checkpoint/v1', ...fields, params };
  return `${readableJson(checkpoint)}\n`;
}

/**
 * Reads `--checkpoint PATH` (a run directory, or its checkpoint.json). Any problem is a usage
 * error: the path is the user's value, and it is wrong.
 */
export function readCheckpoint(where: string, path: string): { checkpoint: Checkpoint; dir: string; ref: CheckpointRef } {
  const full = resolve(path);
  const file = existsSync(full) && statSync(full).isDirectory() ? join(full, CHECKPOINT_FILE) : full;
  if (!existsSync(file)) {
    throw new UsageError(`${where}: --checkpoint ${path}: no ${existsSync(full) ? CHECKPOINT_FILE + ' in that directory' : 'such file or directory'}; expected a directory written by 'scorch train' (or its ${CHECKPOINT_FILE})`);
  }
  let parsed: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${where}: --checkpoint ${path}: ${file} is not valid JSON (${(e as Error).message}); expected a checkpoint written by 'scorch train'`);
  }
  const c = parsed as Partial<Checkpoint> | null;
  const problem =
    c === null || typeof c !== 'object' ? 'it is not a JSON object'
    : c.format !== 'scorch-checkpoint/v1' ? `its format is ${JSON.stringify(c.format)}, not 'scorch-checkpoint/v1'`
    : !isDatasetName(c.data) ? `its data set ${JSON.stringify(c.data)} is unknown`
    : !isObjectiveName(c.loss) ? `its loss ${JSON.stringify(c.loss)} is unknown`
    : !c.model || c.model.kind !== 'mlpScore' || !Array.isArray(c.model.hidden) ? 'its model description is missing or not an mlpScore'
    : !c.noise || typeof c.noise.kind !== 'string' ? 'its noise description is missing'
    : c.noise.kind !== OBJECTIVES[c.loss].family ? `its noise description is of kind ${JSON.stringify(c.noise.kind)}, but loss ${c.loss} trains with noise of kind '${OBJECTIVES[c.loss].family}'`
    : !c.training || typeof c.training !== 'object' || !Array.isArray(c.training.history) ? 'its training record (with its loss history) is missing'
    : !c.params || typeof c.params !== 'object' ? 'it holds no parameters'
    : !(typeof c.domain === 'number' && c.domain > 0) ? 'its plot domain is missing'
    : undefined;
  if (problem) throw new UsageError(`${where}: --checkpoint ${path}: ${problem}; expected a checkpoint written by 'scorch train'`);
  return { checkpoint: c as Checkpoint, dir: file === full ? resolve(full, '..') : full, ref: checkpointRef(file, text) };
}

/** The trained model of a checkpoint, on the default device. */
export function restoreModel(checkpoint: Checkpoint, key: RandomKey): ScoreModel {
  // The architecture is rebuilt from its description (any key: every value is then overwritten,
  // the Fourier frequencies included).
  const model = buildModel(checkpoint.model, checkpoint.noise, key);
  loadParamsInto({ ...model.params, ...model.buffers }, JSON.stringify(checkpoint.params));
  return model;
}
