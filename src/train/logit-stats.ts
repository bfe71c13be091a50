// What TRL's entropy, mean_token_accuracy and logits/* metrics read from a forward's logits, at chosen positions and
// without gradients. The logits are the ones the loss already used: no second forward.
//
// Legend: B rows, T positions, V vocab, N = B T, M selected positions (a chunk of at most CHUNK at a time).

import { exp, gather, logSoftmax, max, mul, neg, reshape, sum } from "../engine/ops.js";
import { noGrad, tensor, tidy, type Tensor } from "../engine/tensor.js";

/** Statistics of the next-token distribution at each selected position. */
export interface PositionStats {
  entropy: Float64Array; // (M) H = -sum_v p_v log p_v, p = softmax(logits)
  meanLogit: Float64Array; // (M) (1/V) sum_v logits_v, the raw logits (TRL's logits/chosen averages these)
  /** (M) 1 where the target's logit is the largest (TRL: argmax == label; a tie with an earlier id counts here). */
  correct: Uint8Array;
}

const CHUNK = 256; // positions per pass: bounds the (M, V) temporaries to CHUNK rows of the vocabulary

/**
 * Stats of `logits` (B, T, V) at flat positions `at` (b T + t); `targets` (N) are the next tokens (a negative one,
 * the ignore id, gives correct 0). Runs without gradients; every temporary is freed before it returns.
 */
export function positionStats(logits: Tensor, at: readonly number[], targets: ArrayLike<number>): PositionStats {
  const V = logits.shape[logits.rank - 1];
  const N = logits.size / V;
  const out: PositionStats = {
    entropy: new Float64Array(at.length),
    meanLogit: new Float64Array(at.length),
    correct: new Uint8Array(at.length),
  };
  for (let i = 0; i < at.length; i += CHUNK) {
    const idx = at.slice(i, i + CHUNK);
    const M = idx.length;
    const { h, mean, top, picked } = tidy(() =>
      noGrad(() => {
        const be = logits.backend;
        const rows = gather(reshape(logits, [N, V]), tensor(Int32Array.from(idx), [M], "i32", be)); // (M, V)
        const ls = logSoftmax(rows); // (M, V)
        const tgt = Int32Array.from(idx, (p, j) => j * V + Math.max(0, targets[p]));
        return {
          h: neg(sum(mul(exp(ls), ls), -1)).toArray(), // (M)
          mean: sum(rows, -1).toArray(), // (M), divided by V below
          top: max(rows, -1).toArray(), // (M)
          picked: gather(reshape(rows, [M * V, 1]), tensor(tgt, [M], "i32", be)).toArray(), // (M, 1): logits[target]
        };
      }),
    );
    for (let j = 0; j < M; j++) {
      out.entropy[i + j] = h[j];
      out.meanLogit[i + j] = mean[j] / V;
      out.correct[i + j] = targets[idx[j]] >= 0 && picked[j] === top[j] ? 1 : 0;
    }
  }
  return out;
}

/** Flat positions (b T + t) whose target is not ignored, in rows [from, to) of a (B, T) target array. */
export function targetPositions(targets: ArrayLike<number>, T: number, from: number, to: number): number[] {
  const at: number[] = [];
  for (let p = from * T; p < to * T; p++) if (targets[p] >= 0) at.push(p);
  return at;
}

/** Flat positions of every token each row holds (the first width - 1: a row's last token is never an input). */
export function inputPositions(widths: readonly number[], T: number): number[] {
  return widths.flatMap((w, b) => Array.from({ length: w - 1 }, (_, t) => b * T + t));
}

/** The mean of `xs`; 0 for none (as TRL's "if total_sum > 0 else 0.0"). */
export function meanOf(xs: ArrayLike<number>): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}
