// What every library stage (sft, dpo, sample, verify, buildPairs, evaluate) is handed instead of reaching for it:
// where to log, how to show progress, and a signal that asks it to stop at its next safe point. The CLI passes a
// stderr logger, terminal progress bars and a signal tied to Ctrl-C/SIGTERM (src/cli/context.ts); a TypeScript
// caller passes what it likes, or nothing (silent, never stopped).

import type { StopSignal } from "./interrupt.js";

/** A progress display for one loop: counts done, a note beside them, closed once. */
export interface ProgressSink {
  set(done: number): void;
  tick(n?: number): void;
  note(text: string): void;
  finish(): void;
}

export type ProgressFactory = (label: string, o: { total?: number; start?: number; unit?: string }) => ProgressSink;

export interface StageContext {
  /** Lines for the user: what a stage did, warnings about its input. Default: none. */
  log?: (msg: string) => void;
  /** A progress display per long loop (training steps, samples, lines). Default: none. */
  progress?: ProgressFactory;
  /**
   * Stops the stage at its next safe point (after a training step with a checkpoint, after an fsynced batch of
   * samples): it then throws InterruptedError saying what exists. The reason may name the signal ("SIGTERM").
   */
  signal?: AbortSignal;
}

const SILENT: ProgressSink = { set() {}, tick() {}, note() {}, finish() {} };

/** The context's progress display, or one that shows nothing. */
export function progressOf(
  ctx: StageContext,
  label: string,
  o: { total?: number; start?: number; unit?: string } = {},
): ProgressSink {
  return ctx.progress ? ctx.progress(label, o) : SILENT;
}

/** The signal that asked the stage to stop, or null while it should go on. */
export function stopOf(ctx: StageContext): StopSignal | null {
  const s = ctx.signal;
  if (!s?.aborted) return null;
  return s.reason === "SIGTERM" ? "SIGTERM" : "SIGINT";
}

export function logOf(ctx: StageContext): (msg: string) => void {
  return ctx.log ?? (() => {});
}
