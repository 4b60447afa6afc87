// Drawing for the playground: the data sample, the learned score field as arrows on a grid, the
// Langevin particles, and the loss curve. Plain 2-D canvas: the numbers come from the session,
// this module only maps them to pixels.

import { type ScoreField, VIEW_EXTENT } from './session.js';

export const BACKGROUND = '#0e1116';
const GRID_LINE = 'rgba(255, 255, 255, 0.07)';
const DATA_COLOUR = 'rgba(96, 165, 250, 0.55)';
const PARTICLE_COLOUR = '#fb923c';

export interface Scene {
  data: Float32Array | null;
  field: ScoreField | null;
  particles: Float32Array | null;
}

/** Sizes the canvas's backing store to its CSS box times the device pixel ratio (crisp lines). */
function fitToDisplay(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const context = canvas.getContext('2d');
  if (!context) throw new Error('playground: this browser gives no 2-D canvas context');
  return context;
}

export function drawScene(canvas: HTMLCanvasElement, scene: Scene): void {
  const ctx = fitToDisplay(canvas);
  const size = Math.min(canvas.width, canvas.height);
  const scale = size / (2 * VIEW_EXTENT);
  const toX = (x: number) => (x + VIEW_EXTENT) * scale;
  const toY = (y: number) => (VIEW_EXTENT - y) * scale;

  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, canvas.width, canvas.height);

  ctx.strokeStyle = GRID_LINE;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let v = -VIEW_EXTENT; v <= VIEW_EXTENT; v++) {
    ctx.moveTo(toX(v), 0);
    ctx.lineTo(toX(v), size);
    ctx.moveTo(0, toY(v));
    ctx.lineTo(size, toY(v));
  }
  ctx.stroke();

  const dot = Math.max(1.5, size / 400);
  if (scene.data) drawPoints(ctx, scene.data, toX, toY, dot, DATA_COLOUR);
  if (scene.field) drawField(ctx, scene.field, toX, toY, scale);
  if (scene.particles) drawPoints(ctx, scene.particles, toX, toY, dot * 1.4, PARTICLE_COLOUR);
}

function drawPoints(ctx: CanvasRenderingContext2D, xy: Float32Array, toX: (x: number) => number, toY: (y: number) => number, radius: number, colour: string): void {
  ctx.fillStyle = colour;
  ctx.beginPath();
  for (let i = 0; i + 1 < xy.length; i += 2) {
    const x = toX(xy[i]!);
    const y = toY(xy[i + 1]!);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    ctx.moveTo(x + radius, y);
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
  }
  ctx.fill();
}

/**
 * Arrows along s_θ. Scores span orders of magnitude (large far from the data, small on it), so an
 * arrow's length grows with the square root of |s| relative to the largest on the grid, and its
 * colour (dim teal to bright yellow) carries the magnitude as well.
 */
function drawField(ctx: CanvasRenderingContext2D, field: ScoreField, toX: (x: number) => number, toY: (y: number) => number, scale: number): void {
  const { points, scores } = field;
  let largest = 0;
  for (let i = 0; i + 1 < scores.length; i += 2) {
    const m = Math.hypot(scores[i]!, scores[i + 1]!);
    if (Number.isFinite(m)) largest = Math.max(largest, m);
  }
  if (largest === 0) return;
  const cellPixels = ((2 * VIEW_EXTENT) / field.size) * scale;
  const longest = cellPixels * 0.9;
  ctx.lineWidth = Math.max(1, cellPixels / 22);
  for (let i = 0; i + 1 < scores.length; i += 2) {
    const sx = scores[i]!;
    const sy = scores[i + 1]!;
    const magnitude = Math.hypot(sx, sy);
    if (!Number.isFinite(magnitude) || magnitude === 0) continue;
    const relative = Math.sqrt(magnitude / largest);
    const length = longest * relative;
    // Screen y points down, data y up.
    const ux = sx / magnitude;
    const uy = -sy / magnitude;
    const cx = toX(points[i]!);
    const cy = toY(points[i + 1]!);
    const x0 = cx - (ux * length) / 2;
    const y0 = cy - (uy * length) / 2;
    const x1 = cx + (ux * length) / 2;
    const y1 = cy + (uy * length) / 2;
    const head = Math.min(length * 0.4, cellPixels * 0.25);
    ctx.strokeStyle = magnitudeColour(relative);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - head * (ux * 0.87 - uy * 0.5), y1 - head * (uy * 0.87 + ux * 0.5));
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - head * (ux * 0.87 + uy * 0.5), y1 - head * (uy * 0.87 - ux * 0.5));
    ctx.stroke();
  }
}

/** t in [0, 1] ↦ a colour from teal (small scores) to yellow (the largest). */
function magnitudeColour(t: number): string {
  const hue = 175 - 120 * t;
  const light = 45 + 15 * t;
  return `hsla(${hue.toFixed(0)}, 80%, ${light.toFixed(0)}%, ${(0.55 + 0.45 * t).toFixed(2)})`;
}

/** At most this many losses are sorted for the curve's range (every one below it). */
const RANGE_SAMPLE = 4096;

/**
 * The loss per step, with its range written at the left edge. Its cost is bounded by the canvas
 * and one pass over the losses: a history longer than the canvas is wide is drawn as each pixel
 * column's min–max, and the range comes from at most RANGE_SAMPLE losses evenly spaced (sorting
 * and stroking a million-step history took ~1 s a redraw).
 */
export function drawLossCurve(canvas: HTMLCanvasElement, losses: readonly number[]): void {
  const ctx = fitToDisplay(canvas);
  const { width, height } = canvas;
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);
  const n = losses.length;
  const stride = Math.max(1, Math.floor(n / RANGE_SAMPLE));
  const sample: number[] = [];
  for (let i = 0; i < n; i += stride) if (Number.isFinite(losses[i]!)) sample.push(losses[i]!);
  if (sample.length < 2) return;
  // Clip the first few steps' spike so the rest of the curve is readable: 2nd–98th percentile.
  sample.sort((a, b) => a - b);
  const low = sample[Math.floor(0.02 * (sample.length - 1))]!;
  const high = sample[Math.ceil(0.98 * (sample.length - 1))]!;
  const span = high - low || 1;
  const pad = 6 * (window.devicePixelRatio || 1);
  const toX = (i: number) => pad + ((width - 2 * pad) * i) / (n - 1);
  const toY = (v: number) => pad + (height - 2 * pad) * (1 - (Math.min(Math.max(v, low), high) - low) / span);
  ctx.strokeStyle = '#a3e635';
  ctx.lineWidth = Math.max(1, (window.devicePixelRatio || 1) * 1.2);
  ctx.beginPath();
  const columns = Math.max(1, Math.floor(width - 2 * pad));
  if (n <= 2 * columns) {
    let started = false;
    losses.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      if (!started) ctx.moveTo(toX(i), toY(v));
      else ctx.lineTo(toX(i), toY(v));
      started = true;
    });
  } else {
    let started = false;
    for (let c = 0; c < columns; c++) {
      let min = Infinity;
      let max = -Infinity;
      for (let i = Math.floor((c * n) / columns), end = Math.floor(((c + 1) * n) / columns); i < end; i++) {
        const v = losses[i]!;
        if (!Number.isFinite(v)) continue;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (min > max) continue; // no finite loss in this column
      const x = pad + c + 0.5;
      if (!started) ctx.moveTo(x, toY(max));
      else ctx.lineTo(x, toY(max));
      ctx.lineTo(x, toY(min));
      started = true;
    }
  }
  ctx.stroke();
  ctx.fillStyle = 'rgba(255, 255, 255, 0.6)';
  ctx.font = `${11 * (window.devicePixelRatio || 1)}px system-ui, sans-serif`;
  // The range's top at the right and its bottom at the left: a falling curve stays clear of both.
  ctx.textAlign = 'right';
  ctx.fillText(formatLoss(high), width - pad, pad + 10 * (window.devicePixelRatio || 1));
  ctx.textAlign = 'left';
  ctx.fillText(formatLoss(low), pad, height - pad);
}

export function formatLoss(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(2) : v.toFixed(a < 1 ? 4 : 3);
}
