// The DPO objective over token-level pairs: one forward of chosen and rejected rows together, reference
// log-probs precomputed once (or from a live reference model), a weighted mix of losses from the table.
//
// Legend: P pairs in a micro-batch.

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import type { Backend } from "../backend/backend.js";
import { yieldToEventLoop } from "../core/interrupt.js";
import { add, scale, slice, sum, sumAll } from "../engine/ops.js";
import { backward } from "../engine/autograd.js";
import { noGrad, tensor, tidy, type Tensor } from "../engine/tensor.js";
import { type Batch, collate, type Example } from "./batch.js";
import { meanOf, positionStats, targetPositions } from "./logit-stats.js";
import { LOSSES, type LossName, type PairLogps } from "./losses.js";
import { forwardLogps, type CausalLM } from "./logps.js";
import type { MicroResult, Objective } from "./loop.js";
import { METRICS } from "./metrics.js";

/** A preference pair in token ids. For Step-DPO, prompt holds the question and the previous steps. */
export interface TokenPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

/** Reference log-probs per pair index. */
export interface RefLogps {
  chosen: Float64Array;
  rejected: Float64Array;
}

export interface DpoOptions {
  beta: number;
  labelSmoothing: number;
  dpopLambda?: number; // dpop's lambda (losses.ts)
  losses: { name: LossName; weight: number }[];
  padId: number;
}

function rows(pairs: TokenPair[]): Example[] {
  return [
    ...pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen })),
    ...pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected })),
  ];
}

/** (2P) summed completion log-probs: chosen rows first, then rejected; with the batch and its logits (2P, T, V). */
function pairLogps(
  model: CausalLM,
  pairs: TokenPair[],
  padId: number,
  be?: Backend,
): { logps: Tensor; lengths: number[]; batch: Batch; logits: Tensor } {
  const batch = collate(rows(pairs), padId, be);
  const { logits, logps } = forwardLogps(model, batch);
  return { logps: sum(logps, 1), lengths: batch.lengths, batch, logits };
}

/**
 * TRL's token metrics of one micro-batch of P pairs (DPOTrainer.compute_loss): entropy over the completion tokens of
 * chosen and rejected rows, logits/chosen and logits/rejected the mean logit over each side's completion tokens,
 * mean_token_accuracy over the chosen completion tokens.
 */
function tokenMetrics(logits: Tensor, batch: Batch, P: number): Record<string, number> {
  const T = batch.ids.shape[1];
  const targets = batch.targets.toArray();
  const chosen = positionStats(logits, targetPositions(targets, T, 0, P), targets);
  const rejected = positionStats(logits, targetPositions(targets, T, P, 2 * P), targets);
  return {
    [METRICS.entropy]: meanOf([...chosen.entropy, ...rejected.entropy]),
    [METRICS.logitsChosen]: meanOf(chosen.meanLogit),
    [METRICS.logitsRejected]: meanOf(rejected.meanLogit),
    [METRICS.meanTokenAccuracy]: meanOf(chosen.correct),
  };
}

/** The reference pass: no gradients, batched, once before training. */
export function precomputeRefLogps(
  ref: CausalLM,
  pairs: TokenPair[],
  padId: number,
  batchSize: number,
  onProgress?: (done: number) => void,
): RefLogps {
  const it = refLogpsBatches(ref, pairs, padId, batchSize, onProgress);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/**
 * precomputeRefLogps that gives the event loop a turn after every batch and stops (returns null) when `shouldStop`
 * says so: a Ctrl-C during a long reference pass is heard within a batch. Same numbers.
 */
export async function precomputeRefLogpsAsync(
  ref: CausalLM,
  pairs: TokenPair[],
  padId: number,
  batchSize: number,
  onProgress?: (done: number) => void,
  shouldStop?: () => boolean,
): Promise<RefLogps | null> {
  const it = refLogpsBatches(ref, pairs, padId, batchSize, onProgress);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await yieldToEventLoop();
    if (shouldStop?.()) return null;
  }
}

/** The reference pass one batch per iteration; returns every pair's log-probs. */
function* refLogpsBatches(
  ref: CausalLM,
  pairs: TokenPair[],
  padId: number,
  batchSize: number,
  onProgress?: (done: number) => void,
): Generator<number, RefLogps> {
  const out: RefLogps = { chosen: new Float64Array(pairs.length), rejected: new Float64Array(pairs.length) };
  for (let i = 0; i < pairs.length; i += batchSize) {
    const chunk = pairs.slice(i, i + batchSize);
    const v = tidy(() => noGrad(() => pairLogps(ref, chunk, padId).logps.toArray()));
    chunk.forEach((_, j) => {
      out.chosen[i + j] = v[j];
      out.rejected[i + j] = v[chunk.length + j];
    });
    const done = Math.min(pairs.length, i + batchSize);
    onProgress?.(done);
    yield done;
  }
  return out;
}

/** A reference: precomputed log-probs, or a live model evaluated without gradients each micro-batch. */
export type Reference = { kind: "precomputed"; logps: RefLogps } | { kind: "live"; model: CausalLM };

export function dpoObjective(policy: CausalLM, ref: Reference, o: DpoOptions): Objective<TokenPair> {
  const forward = (pairs: TokenPair[], indices: number[], weight: number, train: boolean): MicroResult => {
    const P = pairs.length;
    const { logps, lengths, batch, logits } = pairLogps(policy, pairs, o.padId);
    const dtype = logps.dtype;
    let refVals: number[];
    if (ref.kind === "precomputed") {
      refVals = [...indices.map((i) => ref.logps.chosen[i]), ...indices.map((i) => ref.logps.rejected[i])];
    } else {
      refVals = Array.from(noGrad(() => pairLogps(ref.model, pairs, o.padId).logps.toArray()));
    }
    const x: PairLogps = {
      chosen: slice(logps, 0, 0, P),
      rejected: slice(logps, 0, P, P),
      refChosen: tensor(refVals.slice(0, P), [P], dtype),
      refRejected: tensor(refVals.slice(P), [P], dtype),
      chosenLen: tensor(lengths.slice(0, P), [P], dtype),
      rejectedLen: tensor(lengths.slice(P), [P], dtype),
    };
    const perPair = o.losses
      .map(({ name, weight: w }) =>
        scale(LOSSES[name](x, { beta: o.beta, labelSmoothing: o.labelSmoothing, dpopLambda: o.dpopLambda }), w),
      )
      .reduce((a, b) => add(a, b)); // (P)
    const loss = scale(sumAll(perPair), weight);
    if (train) backward(loss);
    return {
      loss: loss.item(),
      tokens: batch.widths.reduce((a, b) => a + b, 0), // a pair's prompt counts twice, as in TRL's num_tokens
      sums: rewardSums(logps.toArray(), refVals, P, o.beta, weight),
      means: tokenMetrics(logits, batch, P),
    };
  };
  return {
    run: (pairs, indices, weight) => forward(pairs, indices, weight, true),
    evaluate: (pairs, indices, weight) => noGrad(() => forward(pairs, indices, weight, false)),
  };
}

/** TRL's reward metrics, as sums over the micro-batch's pairs times `weight` (so steps add up to means). */
function rewardSums(
  pol: ArrayLike<number>,
  ref: number[],
  P: number,
  beta: number,
  weight: number,
): Record<string, number> {
  const s = { chosen: 0, rejected: 0, acc: 0, lc: 0, lr: 0 };
  for (let i = 0; i < P; i++) {
    const rc = beta * (pol[i] - ref[i]);
    const rr = beta * (pol[P + i] - ref[P + i]);
    s.chosen += rc;
    s.rejected += rr;
    s.acc += rc > rr ? 1 : 0;
    s.lc += pol[i];
    s.lr += pol[P + i];
  }
  return {
    [METRICS.rewardsChosen]: s.chosen * weight,
    [METRICS.rewardsRejected]: s.rejected * weight,
    [METRICS.rewardsAccuracies]: s.acc * weight,
    [METRICS.rewardsMargins]: (s.chosen - s.rejected) * weight,
    [METRICS.logpsChosen]: s.lc * weight,
    [METRICS.logpsRejected]: s.lr * weight,
  };
}

/**
 * Reference log-probs cached in a file of the run: computed once, then read back on every resume (the policy's
 * weights have moved by then, so recomputing would give another reference). `key` identifies model and pairs.
 */
export function cachedRefLogps(file: string, key: string, compute: () => RefLogps): RefLogps {
  const saved = readCachedRefLogps(file, key);
  if (saved) return saved;
  const ref = compute();
  writeJsonAtomic(file, { format: 1, key, chosen: Array.from(ref.chosen), rejected: Array.from(ref.rejected) });
  return ref;
}

/** cachedRefLogps over an async pass; a pass that stopped (null) writes nothing and gives null. */
export async function cachedRefLogpsAsync(
  file: string,
  key: string,
  compute: () => Promise<RefLogps | null>,
): Promise<RefLogps | null> {
  const saved = readCachedRefLogps(file, key);
  if (saved) return saved;
  const ref = await compute();
  if (ref)
    writeJsonAtomic(file, { format: 1, key, chosen: Array.from(ref.chosen), rejected: Array.from(ref.rejected) });
  return ref;
}

function readCachedRefLogps(file: string, key: string): RefLogps | null {
  if (!fs.existsSync(file)) return null;
  const saved = JSON.parse(fs.readFileSync(file, "utf8")) as {
    format: number;
    key: string;
    chosen: number[];
    rejected: number[];
  };
  if (saved.format !== 1 || saved.key !== key) return null;
  return { chosen: Float64Array.from(saved.chosen), rejected: Float64Array.from(saved.rejected) };
}
