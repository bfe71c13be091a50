// The SFT objective: cross-entropy on completion tokens only (prompt tokens are masked), averaged over every
// completion token of the optimizer step. Items are single examples (one a row, padded) or, with --pack, packed
// rows of several examples (batch.ts explains what packing keeps exact and what it does not).

import { Rng } from "../core/rng.js";
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

/**
 * SFT replay inside another objective (DPO): each micro-batch also trains on one replayed example per item, item i
 * always taking example order[i mod n] (a seeded shuffle, so a resumed run replays exactly what it would have). The
 * replayed loss is `weight` times the mean token loss of the step's replayed examples; `replay_loss` logs that
 * mean, unweighted. Held-out evaluation stays the main objective's alone.
 */
export function withReplay<T>(
  main: Objective<T>,
  sft: Objective<Example>,
  examples: Example[],
  o: { weight: number; seed: number },
): Objective<T> {
  const rng = new Rng(o.seed + 0x5f3759df);
  const order = examples.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return {
    ...main,
    run(items, indices, weight) {
      const r = main.run(items, indices, weight);
      const replayed = indices.map((i) => examples[order[i % order.length]]);
      const tokens = replayed.reduce((a, e) => a + e.completion.length, 0);
      // weight * items.length is this micro-batch's share of the step: the shares' sum is the step's mean.
      const s = sft.run(
        replayed,
        replayed.map((_, j) => j),
        (o.weight * weight * items.length) / tokens,
      );
      return {
        loss: r.loss + s.loss,
        tokens: r.tokens + s.tokens,
        sums: { ...r.sums, [METRICS.replayLoss]: s.loss / o.weight },
        means: r.means,
      };
    },
  };
}
