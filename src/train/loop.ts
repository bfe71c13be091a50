// The optimizer loop shared by SFT and DPO: seeded data order per epoch (optionally length-bucketed), micro-batches with gradient accumulation,
// warmup + decay, global-norm clipping, a NaN/Inf guard, metrics per optimizer step, and a hook for checkpoints.
// The objective is a function of one micro-batch; it never knows about steps, schedules or files.

import { NonFiniteError } from "../core/errors.js";
import { yieldToEventLoop } from "../core/interrupt.js";
import { Rng } from "../core/rng.js";
import { type AdamW, clipGradNorm, gradNorm, zeroGrad } from "../engine/optim.js";
import type { Tensor } from "../engine/tensor.js";
import { evalMetric, METRICS } from "./metrics.js";
import { learningRate, type ScheduleKind } from "./schedule.js";

export interface LoopConfig {
  epochs: number; // passes over the data
  maxSteps: number | null; // stop after this many optimizer steps (null: epochs decide)
  batchSize: number; // items per micro-batch
  gradAccum: number; // micro-batches per optimizer step
  lr: number; // peak learning rate
  schedule: ScheduleKind; // decay after warmup
  warmupRatio: number; // fraction of the steps spent warming up
  weightDecay: number; // AdamW's decoupled decay
  maxGradNorm: number; // clip the global gradient norm to this (0: no clipping)
  seed: number; // data order
  bucket?: number; // length-bucketed batches: sort by length within windows of this many micro-batches (absent/0: off)
  explodeFactor?: number; // a step loss beyond this many times max(1, |first step's loss|) stops the run (default 100)
}

/** How far a loss may grow past max(1, |the first step's|) before the loop calls it exploding (LoopConfig.explodeFactor). */
export const EXPLODE_FACTOR = 100;

/** What one micro-batch contributes: backward() already ran on its share of the loss. */
export interface MicroResult {
  loss: number; // this micro-batch's share of the step's loss
  tokens: number; // tokens the model read, prompt and completion, padding not (TRL's num_tokens counts these)
  sums: Record<string, number>; // metric sums over the micro-batch's items (divided by the step's item count)
  /** Metrics of the micro-batch alone, averaged over the step's micro-batches (as TRL's log() averages them). */
  means?: Record<string, number>;
}

/** Adds a micro-batch's sums and means into `acc`: sums add up, means are added and counted for meansOf. */
function addMicro(acc: { sums: Record<string, number>; means: Record<string, number>; micro: number }, r: MicroResult) {
  for (const [k, v] of Object.entries(r.sums)) acc.sums[k] = (acc.sums[k] ?? 0) + v;
  for (const [k, v] of Object.entries(r.means ?? {})) acc.means[k] = (acc.means[k] ?? 0) + v;
  acc.micro++;
}

/** The sums as they are and the means averaged over the micro-batches: one record's metrics. */
function metricsOf(acc: { sums: Record<string, number>; means: Record<string, number>; micro: number }) {
  const means = Object.fromEntries(Object.entries(acc.means).map(([k, v]) => [k, v / acc.micro]));
  return { ...acc.sums, ...means };
}

/**
 * The objective: runs forward and backward on `items` (inside a tidy scope, set by the caller), scaling the loss
 * by `weight` = 1 / (units in the whole optimizer step) so that accumulation equals one large batch. A unit is an
 * item (a DPO pair) unless `unitsOf` says otherwise (SFT counts completion tokens).
 */
export interface Objective<T> {
  run(items: T[], indices: number[], weight: number): MicroResult;
  /** The same loss and metrics without gradients (held-out data). */
  evaluate?(items: T[], indices: number[], weight: number): MicroResult;
  unitsOf?(item: T): number;
  /** An item's length in tokens (its row's width), for length-bucketed batches. */
  lengthOf?(item: T): number;
}

/** Loss and metrics of `objective` over all of `items` without gradients, as TRL names them: "eval_loss", ... */
export function evaluateAll<T>(
  items: T[],
  objective: Objective<T>,
  batchSize: number,
  tidy: <R>(fn: () => R) => R,
): StepRecord {
  if (!objective.evaluate) throw new Error("this objective has no evaluate()");
  const units = items.reduce((a, it) => a + (objective.unitsOf?.(it) ?? 1), 0);
  const acc = { sums: { [METRICS.loss]: 0 } as Record<string, number>, means: {}, micro: 0 };
  for (let i = 0; i < items.length; i += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, items.length - i) }, (_, j) => i + j);
    const r = tidy(() =>
      objective.evaluate!(
        idx.map((j) => items[j]),
        idx,
        1 / units,
      ),
    );
    acc.sums[METRICS.loss] += r.loss;
    addMicro(acc, r);
  }
  return Object.fromEntries(Object.entries(metricsOf(acc)).map(([k, v]) => [evalMetric(k), v]));
}

export interface LoopState {
  step: number; // optimizer steps done
  epoch: number; // the epoch the next step reads from
  cursor: number; // items of that epoch already consumed
  tokens: number; // tokens trained on so far (TRL's num_tokens)
}

export interface StepRecord {
  [key: string]: number;
}

export interface LoopHooks {
  /** After each optimizer step, with TRL-named metrics. */
  onStep?(record: StepRecord, state: LoopState): void;
  /** Whether to stop early (e.g. a signal); checked between steps. */
  shouldStop?(): boolean;
}

/** The epoch's item order: a seeded permutation, the same on every run and after every resume. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng((seed * 1000003 + epoch * 7919) >>> 0);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/**
 * Length-bucketed order (LoopConfig.bucket): the epoch's seeded permutation, cut into windows of `window`
 * micro-batches; each window sorted by length (longest first, ties by index) and cut into micro-batches of similar
 * lengths, so padding is small; then the full micro-batches shuffled with a second seeded stream, the one short
 * micro-batch (if any) kept last so that every batch stays whole. A pure function of its arguments, like
 * epochOrder: a resumed run recomputes the same order from (seed, epoch).
 */
export function bucketedOrder(
  lengths: number[],
  seed: number,
  epoch: number,
  batchSize: number,
  window: number,
): number[] {
  const base = epochOrder(lengths.length, seed, epoch);
  const span = batchSize * window;
  const sorted: number[] = [];
  for (let i = 0; i < base.length; i += span) {
    sorted.push(...base.slice(i, i + span).sort((a, b) => lengths[b] - lengths[a] || a - b));
  }
  const full = Math.floor(sorted.length / batchSize);
  const batches = new Rng((seed * 1000003 + epoch * 7919 + 0x2545f491) >>> 0).shuffle(
    Array.from({ length: full }, (_, i) => i),
  );
  return [
    ...batches.flatMap((b) => sorted.slice(b * batchSize, (b + 1) * batchSize)),
    ...sorted.slice(full * batchSize),
  ];
}

/** The epoch's item order under `c`: epochOrder, or bucketedOrder when c.bucket is set (lengths from lengthOf). */
export function dataOrder<T>(items: T[], c: LoopConfig, epoch: number, lengthOf?: (item: T) => number): number[] {
  if (!c.bucket) return epochOrder(items.length, c.seed, epoch);
  if (!lengthOf) throw new Error("length-bucketed batches need an objective with lengthOf()");
  return bucketedOrder(items.map(lengthOf), c.seed, epoch, c.batchSize, c.bucket);
}

export function stepsPerEpoch(n: number, c: LoopConfig): number {
  return Math.ceil(n / (c.batchSize * c.gradAccum));
}

export function totalSteps(n: number, c: LoopConfig): number {
  const all = stepsPerEpoch(n, c) * c.epochs;
  return c.maxSteps === null ? all : Math.min(all, c.maxSteps);
}

/**
 * Runs optimizer steps from `state` until the epochs or maxSteps are done (or shouldStop says so).
 * Returns the state after the last step. Parameters' .grad buffers are reused across steps.
 */
export function runLoop<T>(
  items: T[],
  params: Tensor[],
  opt: AdamW,
  c: LoopConfig,
  objective: Objective<T>,
  tidy: <R>(fn: () => R) => R,
  state: LoopState,
  hooks: LoopHooks = {},
): LoopState {
  const it = loopSteps(items, params, opt, c, objective, tidy, state, hooks);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/**
 * runLoop that gives the event loop a turn after every optimizer step, so that a signal handler (Ctrl-C) can run
 * and ask shouldStop to end the loop within a step. Same steps, same numbers.
 */
export async function runLoopAsync<T>(
  items: T[],
  params: Tensor[],
  opt: AdamW,
  c: LoopConfig,
  objective: Objective<T>,
  tidy: <R>(fn: () => R) => R,
  state: LoopState,
  hooks: LoopHooks = {},
): Promise<LoopState> {
  const it = loopSteps(items, params, opt, c, objective, tidy, state, hooks);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await yieldToEventLoop();
  }
}

/** The loop itself, one optimizer step per iteration: yields the state after each step, returns the last. */
function* loopSteps<T>(
  items: T[],
  params: Tensor[],
  opt: AdamW,
  c: LoopConfig,
  objective: Objective<T>,
  tidy: <R>(fn: () => R) => R,
  state: LoopState,
  hooks: LoopHooks,
): Generator<LoopState, LoopState> {
  const total = totalSteps(items.length, c);
  const warmup = Math.round(c.warmupRatio * total);
  const perStep = c.batchSize * c.gradAccum;
  let s = { ...state };
  let epochOf = { epoch: -1, order: [] as number[] }; // the current epoch's order, computed once per epoch
  let firstLoss: number | null = null; // this process's first step: the scale "exploding" is measured against
  while (s.step < total && !hooks.shouldStop?.()) {
    if (s.cursor >= items.length) s = { ...s, epoch: s.epoch + 1, cursor: 0 };
    if (epochOf.epoch !== s.epoch)
      epochOf = { epoch: s.epoch, order: dataOrder(items, c, s.epoch, objective.lengthOf?.bind(objective)) };
    const stepIdx = epochOf.order.slice(s.cursor, s.cursor + perStep);
    const t0 = performance.now();
    const units = stepIdx.reduce((a, i) => a + (objective.unitsOf?.(items[i]) ?? 1), 0);
    zeroGrad(params);
    let loss = 0;
    let tokens = 0;
    const acc = { sums: {}, means: {}, micro: 0 };
    for (let m = 0; m < stepIdx.length; m += c.batchSize) {
      const idx = stepIdx.slice(m, m + c.batchSize);
      const r = tidy(() =>
        objective.run(
          idx.map((i) => items[i]),
          idx,
          1 / units,
        ),
      );
      loss += r.loss;
      tokens += r.tokens;
      addMicro(acc, r);
    }
    // The guards run before opt.step, so the weights never take a step from a bad loss or gradient.
    if (!Number.isFinite(loss))
      throw new NonFiniteError(s.step + 1, `non-finite loss (${loss})`, "lower the learning rate or check the data");
    firstLoss ??= loss;
    const limit = (c.explodeFactor ?? EXPLODE_FACTOR) * Math.max(1, Math.abs(firstLoss));
    if (Math.abs(loss) > limit) {
      throw new NonFiniteError(
        s.step + 1,
        `exploding loss (${loss}: over ${limit}, ${c.explodeFactor ?? EXPLODE_FACTOR}x ` +
          `the first step's ${firstLoss})`,
        "lower the learning rate, or keep gradient clipping on (--max-grad-norm 1)",
      );
    }
    // Without clipping the norm is still measured: a NaN/Inf gradient would otherwise reach the weights.
    const norm = c.maxGradNorm > 0 ? clipGradNorm(params, c.maxGradNorm) : gradNorm(params);
    if (!Number.isFinite(norm))
      throw new NonFiniteError(s.step + 1, `non-finite gradient norm (${norm})`, "lower the learning rate");
    const lr = learningRate({ kind: c.schedule, peak: c.lr, warmupSteps: warmup, totalSteps: total }, s.step);
    opt.step(lr);
    s = { ...s, step: s.step + 1, cursor: s.cursor + stepIdx.length, tokens: s.tokens + tokens };
    const seconds = (performance.now() - t0) / 1000;
    const record: StepRecord = {
      [METRICS.step]: s.step,
      [METRICS.epoch]: s.epoch + s.cursor / items.length,
      [METRICS.loss]: loss,
      ...metricsOf(acc),
      [METRICS.gradNorm]: norm,
      [METRICS.learningRate]: lr,
      [METRICS.numTokens]: s.tokens,
      [METRICS.tokensPerSecond]: tokens / seconds,
    };
    hooks.onStep?.(record, s);
    yield s;
  }
  return s;
}
