// Output directories and checkpoints. A run never writes into a directory that already holds
// files unless the user says --force (then files of the same names are replaced and others are
// left alone). A checkpoint is one JSON file: the model and noise descriptions that rebuild the
// network, the training settings, and the parameters in saveParams' format.

import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type RandomKey } from '@scorch/tensor';
import {
  type DatasetName, type ModelSpec, type NoiseSpec, type ObjectiveName, type SavedParams, type ScoreModel, type TrainProgress,
  buildModel, isDatasetName, isObjectiveName, loadParamsInto, saveParams,
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

/**
 * Makes `dir` ready to write into: creates it when missing; refuses (UsageError, exit 2) when it
 * is a file, or a directory with entries and `force` is off. Returns the absolute path.
 */
export function prepareOutputDirectory(where: string, dir: string, force: boolean): string {
  const path = resolve(dir);
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new UsageError(`${where}: --out ${dir} is a file; expected a directory that is new or empty`);
    if (readdirSync(path).length > 0 && !force) {
      throw new UsageError(`${where}: --out ${dir} already exists and is not empty; choose a new directory, or pass --force to write into it (files of the same names are replaced)`);
    }
  }
  mkdirSync(path, { recursive: true });
  return path;
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

export function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
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
export function readCheckpoint(where: string, path: string): { checkpoint: Checkpoint; dir: string } {
  const full = resolve(path);
  const file = existsSync(full) && statSync(full).isDirectory() ? join(full, CHECKPOINT_FILE) : full;
  if (!existsSync(file)) {
    throw new UsageError(`${where}: --checkpoint ${path}: no ${existsSync(full) ? CHECKPOINT_FILE + ' in that directory' : 'such file or directory'}; expected a directory written by 'scorch train' (or its ${CHECKPOINT_FILE})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
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
    : !c.params || typeof c.params !== 'object' ? 'it holds no parameters'
    : !(typeof c.domain === 'number' && c.domain > 0) ? 'its plot domain is missing'
    : undefined;
  if (problem) throw new UsageError(`${where}: --checkpoint ${path}: ${problem}; expected a checkpoint written by 'scorch train'`);
  return { checkpoint: c as Checkpoint, dir: file === full ? resolve(full, '..') : full };
}

/** The trained model of a checkpoint, on the default device. */
export function restoreModel(checkpoint: Checkpoint, key: RandomKey): ScoreModel {
  // The architecture is rebuilt from its description (any key: every value is then overwritten,
  // the Fourier frequencies included).
  const model = buildModel(checkpoint.model, checkpoint.noise, key);
  loadParamsInto({ ...model.params, ...model.buffers }, JSON.stringify(checkpoint.params));
  return model;
}
