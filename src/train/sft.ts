// The SFT objective: cross-entropy on completion tokens only (prompt tokens are masked), averaged over every
// completion token of the optimizer step.

import { backward } from "../engine/autograd.js";
import { noGrad } from "../engine/tensor.js";
import { scale, sumAll } from "../engine/ops.js";
import { collate, type Example } from "./batch.js";
import { tokenLogps, type CausalLM } from "./logps.js";
import type { Objective } from "./loop.js";

export function sftObjective(model: CausalLM, padId: number): Objective<Example> {
  const forward = (examples: Example[], weight: number, train: boolean) => {
    const batch = collate(examples, padId);
    const loss = scale(sumAll(tokenLogps(model, batch)), -weight); // -sum log p / tokens in the step
    if (train) backward(loss);
    return { loss: loss.item(), tokens: batch.tokens, sums: {} };
  };
  return {
    unitsOf: (e) => e.completion.length,
    run: (examples, _indices, weight) => forward(examples, weight, true),
    evaluate: (examples, _indices, weight) => noGrad(() => forward(examples, weight, false)),
  };
}
