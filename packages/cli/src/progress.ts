// Progress reporting for long loops (training, sampling). On a terminal: one bar redrawn in place
// with steps/s, the latest loss and the ETA. Elsewhere (CI logs, pipes): a plain line at every 10%
// of the run, so logs stay readable and short.

export interface ProgressSink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Seconds as m:ss (or h:mm:ss). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function formatLoss(loss: number): string {
  if (!Number.isFinite(loss)) return String(loss);
  const a = Math.abs(loss);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? loss.toExponential(3) : loss.toFixed(4);
}

/** Width of the bar on a terminal wide enough for it, and the narrowest bar drawn at all. */
const BAR_WIDTH = 24;
const BAR_WIDTH_MIN = 6;

export class Progress {
  private readonly started = performance.now();
  private lastDraw = 0;
  private nextPlainFraction = 0.1;
  private loss: number | undefined;
  private done = 0;
  private finished = false;

  /** `total` undefined: the length is not known in advance (no bar, no ETA). */
  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly sink: ProgressSink,
  ) {}

  /** Records that `done` steps are complete (and the loss last read, if any). */
  update(done: number, loss?: number): void {
    this.done = done;
    if (loss !== undefined) this.loss = loss;
    const now = performance.now();
    if (this.sink.isTTY) {
      // Redrawing more than ~10 times a second only costs time.
      if (now - this.lastDraw < 100 && done !== this.total) return;
      this.lastDraw = now;
      this.sink.write(`\r\x1b[2K${this.barLine()}`);
      return;
    }
    if (this.total === undefined) return;
    const fraction = done / this.total;
    if (fraction + 1e-9 >= this.nextPlainFraction && done < this.total) {
      while (this.nextPlainFraction <= fraction + 1e-9) this.nextPlainFraction += 0.1;
      this.sink.write(`${this.line(undefined)}\n`);
    }
  }

  /** Ends the display: the final state on its own line. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.sink.write(`${this.sink.isTTY ? '\r\x1b[2K' : ''}${this.line(undefined)}\n`);
  }

  /**
   * The redrawn line, narrower than the terminal (`sink.columns`, when known): a line that fills
   * or passes the last column wraps, and '\r' then returns to its last row only, so every redraw
   * would leave the rest behind. The bar narrows first; below BAR_WIDTH_MIN it goes, and what
   * still does not fit is cut.
   */
  private barLine(): string {
    const columns = this.sink.columns;
    const full = this.line(BAR_WIDTH);
    if (columns === undefined || !(columns > 0) || full.length < columns) return full;
    const narrowed = BAR_WIDTH - (full.length - (columns - 1));
    const line = narrowed >= BAR_WIDTH_MIN ? this.line(narrowed) : this.line(undefined);
    return line.slice(0, Math.max(0, columns - 1));
  }

  /** The status line, with a bar `barWidth` characters wide (undefined: no bar). */
  private line(barWidth: number | undefined): string {
    const withBar = barWidth !== undefined;
    const elapsed = (performance.now() - this.started) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const parts: string[] = [];
    if (this.total !== undefined) {
      const fraction = this.total === 0 ? 1 : Math.min(1, this.done / this.total);
      const width = barWidth ?? 0;
      const filled = Math.round(fraction * width);
      const percent = `${String(Math.floor(fraction * 100)).padStart(3)}%`;
      parts.push(withBar ? `${this.label} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${percent}` : `${this.label}: ${percent}`);
      parts.push(`${this.done}/${this.total} steps`);
    } else {
      parts.push(`${this.label}: ${this.done} steps`);
    }
    parts.push(`${rate.toFixed(1)} steps/s`);
    if (this.loss !== undefined) parts.push(`loss ${formatLoss(this.loss)}`);
    if (this.total !== undefined && this.done < this.total) parts.push(`ETA ${rate > 0 ? formatDuration((this.total - this.done) / rate) : '?'}`);
    else parts.push(`${formatDuration(elapsed)} elapsed`);
    return parts.join(' · ');
  }
}
