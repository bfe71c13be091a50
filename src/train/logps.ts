// Sequence log-probabilities under a causal LM: the sum over completion tokens of log p(token | prefix).

import { sum, tokenLogprobs } from "../engine/ops.js";
import type { Tensor } from "../engine/tensor.js";
import type { Batch } from "./batch.js";

/** Anything that maps ids (B, T) to logits (B, T, V). */
export interface CausalLM {
  forward(ids: Tensor, opts?: { pos?: Tensor; keyMask?: Tensor | null }): Tensor;
}

/** Per-token log-probs (B, T) of the batch's targets; 0 at ignored positions. */
export function tokenLogps(model: CausalLM, batch: Batch): Tensor {
  return forwardLogps(model, batch).logps;
}

/** The forward's logits (B, T, V) and the per-token log-probs (B, T) taken from them (for metrics beside the loss). */
export function forwardLogps(model: CausalLM, batch: Batch): { logits: Tensor; logps: Tensor } {
  const logits = model.forward(batch.ids);
  return { logits, logps: tokenLogprobs(logits, batch.targets) };
}

/** Per-row summed log-probs (B) of the completion tokens. */
export function sequenceLogps(model: CausalLM, batch: Batch): Tensor {
  return sum(tokenLogps(model, batch), 1);
}
