// A progress bar with rate and ETA on stderr. On a terminal it redraws one line (at most every 100 ms); otherwise
// (a pipe, a log file, CI) it prints a plain line now and then (every 10 s) and once at the end.

export interface ProgressOptions {
  /** Items expected; unknown totals show a count and rate, no bar or ETA. */
  total?: number;
  stream?: NodeJS.WriteStream;
  /** Force terminal (true) or plain-line (false) drawing; default: whether the stream is a TTY. */
  tty?: boolean;
  /** Unit word after the counts ("lines", "problems"). */
  unit?: string;
  /** Items already done before this process started (a resumed run): the rate and ETA count only what follows. */
  start?: number;
  /** Milliseconds clock (default performance.now); tests pass their own. */
  now?: () => number;
}

export class Progress {
  private done: number;
  private readonly start: number;
  private readonly now: () => number;
  private readonly t0: number;
  private lastDraw = -Infinity;
  private finished = false;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly total: number | undefined;
  private readonly unit: string;

  constructor(
    readonly label: string,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.total = opts.total !== undefined && opts.total > 0 ? opts.total : undefined;
    this.unit = opts.unit ?? "";
    this.start = opts.start ?? 0;
    this.done = this.start;
    this.now = opts.now ?? (() => performance.now());
    this.t0 = this.now();
  }

  private extra = "";

  /** Extra status shown after the label (e.g. the current loss). */
  note(text: string): void {
    this.extra = text;
  }

  tick(n = 1): void {
    this.set(this.done + n);
  }

  set(done: number): void {
    this.done = done;
    const now = this.now();
    if (now - this.lastDraw < (this.tty ? 100 : 10_000)) return;
    this.lastDraw = now;
    this.draw(false);
  }

  /** Draws the final state and ends the line. Safe to call twice. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.draw(true);
  }

  /** The status text without terminal control codes (also what plain mode prints). */
  line(): string {
    const secs = (this.now() - this.t0) / 1000;
    const rate = secs > 0 ? (this.done - this.start) / secs : 0;
    const unit = this.unit ? ` ${this.unit}` : "";
    const parts = [this.label];
    if (this.extra) parts.push(this.extra);
    if (this.total !== undefined) {
      const frac = Math.min(1, this.done / this.total);
      const width = 24;
      const full = Math.round(frac * width);
      parts.push(
        `[${"#".repeat(full)}${".".repeat(width - full)}]`,
        `${(frac * 100).toFixed(0).padStart(3)}%`,
        `${this.done}/${this.total}${unit}`,
      );
    } else {
      parts.push(`${this.done}${unit}`);
    }
    parts.push(`${formatRate(rate)}/s`);
    if (this.total !== undefined && rate > 0 && this.done < this.total)
      parts.push(`ETA ${formatDuration((this.total - this.done) / rate)}`);
    else parts.push(`in ${formatDuration(secs)}`);
    return parts.join(" ");
  }

  private draw(final: boolean): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${this.line()}${final ? "\n" : ""}`);
    else this.stream.write(`${this.line()}\n`);
  }
}

function formatRate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
