// The SFT objective: cross-entropy on completion tokens only (prompt tokens are masked), averaged over every
// completion token of the optimizer step. Items are single examples (one a row, padded) or, with --pack, packed
// rows of several examples (batch.ts explains what packing keeps exact and what it does not).

import { backward } from "../engine/autograd.js";
import { noGrad } from "../engine/tensor.js";
import { scale, sumAll } from "../engine/ops.js";
import { collatePacked, exampleLength, rowLength, type Example } from "./batch.js";
import { tokenLogps, type CausalLM } from "./logps.js";
import type { Objective } from "./loop.js";

/** The objective over items of type R, each turned into one row (a list of examples) of the batch. */
function rowsObjective<R>(model: CausalLM, padId: number, row: (item: R) => Example[]): Objective<R> {
  const forward = (items: R[], weight: number, train: boolean) => {
    const batch = collatePacked(items.map(row), padId);
    const loss = scale(sumAll(tokenLogps(model, batch)), -weight); // -sum log p / tokens in the step
    if (train) backward(loss);
    return { loss: loss.item(), tokens: batch.tokens, sums: {} };
  };
  return {
    unitsOf: (item) => row(item).reduce((a, e) => a + e.completion.length, 0),
    lengthOf: (item) => rowLength(row(item)),
    run: (items, _indices, weight) => forward(items, weight, true),
    evaluate: (items, _indices, weight) => noGrad(() => forward(items, weight, false)),
  };
}

/** One example a row. */
export function sftObjective(model: CausalLM, padId: number): Objective<Example> {
  const o = rowsObjective<Example>(model, padId, (e) => [e]);
  return { ...o, unitsOf: (e) => e.completion.length, lengthOf: exampleLength };
}

/** Packed rows (packExamples): each item is a row of whole examples. */
export function packedSftObjective(model: CausalLM, padId: number): Objective<Example[]> {
  return rowsObjective<Example[]>(model, padId, (r) => r);
}
