// Composite ops built from the primitives in ops.ts (their gradients come from the primitives').

import { ShapeError } from "../core/errors.js";
import { add, exp, logSoftmax, matmul, neg, normAxis, scale, sum, sumAll, tokenLogprobs } from "./ops.js";
import type { Tensor } from "./tensor.js";

/** Mean over one axis. */
export function mean(x: Tensor, axis: number, keepDims = false): Tensor {
  return scale(sum(x, axis, keepDims), 1 / x.shape[normAxis(axis, x.rank)]);
}

/** Mean of every element, shape []. */
export function meanAll(x: Tensor): Tensor {
  return scale(sumAll(x), 1 / x.size);
}

/** softmax over the last axis = exp(log softmax). */
export function softmax(x: Tensor): Tensor {
  return exp(logSoftmax(x));
}

/** x @ w^T (+ b), with w stored (out, in) as in Hugging Face checkpoints. x (..., in) -> (..., out). */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const y = matmul(x, w, false, true);
  return b ? add(y, b) : y;
}

/**
 * Mean cross-entropy over the rows whose target is not negative: logits (..., V), targets (...) i32.
 * The count of counted rows is read from the targets (a small host read).
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const t = targets.toArray();
  let count = 0;
  for (let i = 0; i < t.length; i++) if (t[i] >= 0) count++;
  if (count === 0) throw new ShapeError("crossEntropy", { targets: targets.shape }, "every target is ignored");
  return scale(neg(sumAll(tokenLogprobs(logits, targets))), 1 / count);
}
