// The SFT objective: cross-entropy on completion tokens only (prompt tokens are masked), averaged over every
// completion token of the optimizer step. Items are single examples (one a row, padded) or, with --pack, packed
// rows of several examples (batch.ts explains what packing keeps exact and what it does not).

import { backward } from "../engine/autograd.js";
import { noGrad } from "../engine/tensor.js";
import { scale, sumAll } from "../engine/ops.js";
import type { Tensor } from "../engine/tensor.js";
import { type Batch, collatePacked, exampleLength, rowLength, type Example } from "./batch.js";
import { inputPositions, meanOf, positionStats } from "./logit-stats.js";
import { forwardLogps, type CausalLM } from "./logps.js";
import type { MicroResult, Objective } from "./loop.js";
import { METRICS } from "./metrics.js";

/** The objective over items of type R, each turned into one row (a list of examples) of the batch. */
function rowsObjective<R>(model: CausalLM, padId: number, row: (item: R) => Example[]): Objective<R> {
  const forward = (items: R[], weight: number, train: boolean): MicroResult => {
    const batch = collatePacked(items.map(row), padId);
    const { logits, logps } = forwardLogps(model, batch); // (B, T, V), (B, T)
    const loss = scale(sumAll(logps), -weight); // -sum log p / tokens in the step
    if (train) backward(loss);
    return { loss: loss.item(), tokens: sum(batch.widths), sums: {}, means: tokenMetrics(logits, batch) };
  };
  return {
    unitsOf: (item) => row(item).reduce((a, e) => a + e.completion.length, 0),
    lengthOf: (item) => rowLength(row(item)),
    run: (items, _indices, weight) => forward(items, weight, true),
    evaluate: (items, _indices, weight) => noGrad(() => forward(items, weight, false)),
  };
}

/**
 * TRL's SFT metrics of one micro-batch (SFTTrainer.compute_loss): entropy over every position that holds a token
 * (its attention mask; here without each row's last token, which is never an input), mean_token_accuracy over the
 * completion tokens (its labels != -100).
 */
function tokenMetrics(logits: Tensor, batch: Batch): Record<string, number> {
  const T = batch.ids.shape[1];
  const targets = batch.targets.toArray();
  const at = inputPositions(batch.widths, T); // every target position is among them
  const s = positionStats(logits, at, targets);
  const correct = s.correct.reduce((a, c) => a + c, 0);
  return {
    [METRICS.entropy]: meanOf(s.entropy),
    [METRICS.meanTokenAccuracy]: batch.tokens > 0 ? correct / batch.tokens : 0,
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** One example a row. */
export function sftObjective(model: CausalLM, padId: number): Objective<Example> {
  const o = rowsObjective<Example>(model, padId, (e) => [e]);
  return { ...o, unitsOf: (e) => e.completion.length, lengthOf: exampleLength };
}

/** Packed rows (packExamples): each item is a row of whole examples. */
export function packedSftObjective(model: CausalLM, padId: number): Objective<Example[]> {
  return rowsObjective<Example[]>(model, padId, (r) => r);
}
