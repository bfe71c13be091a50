// The DPO family as a table of pure functions over per-pair sequence log-probs. Each returns the per-pair losses
// (P); the trainer takes their weighted mean and never branches on the loss name.
//
// Legend: P pairs. pi = policy log-prob of a completion (summed over its tokens), ref = the reference model's,
// |y| = the completion's token count, beta the inverse temperature, eps the label-smoothing rate.

import { InputError } from "../core/errors.js";
import { add, addScalar, div, logsigmoid, neg, relu, scale, sigmoid, square, sub } from "../engine/ops.js";
import type { Tensor } from "../engine/tensor.js";

export interface PairLogps {
  chosen: Tensor; // (P) pi(y_w | x)
  rejected: Tensor; // (P) pi(y_l | x)
  refChosen: Tensor; // (P) ref(y_w | x), no gradient
  refRejected: Tensor; // (P) ref(y_l | x), no gradient
  chosenLen: Tensor; // (P) |y_w| as floats
  rejectedLen: Tensor; // (P) |y_l|
}

export interface LossOptions {
  beta: number;
  labelSmoothing: number; // eps in [0, 0.5)
  dpopLambda?: number; // lambda of dpop (default 50, the paper's)
}

export type LossFn = (x: PairLogps, o: LossOptions) => Tensor;

/** h = (pi_w - ref_w) - (pi_l - ref_l): the difference of implicit rewards, over beta. */
export function logRatioMargin(x: PairLogps): Tensor {
  return sub(sub(x.chosen, x.refChosen), sub(x.rejected, x.refRejected));
}

/** The same with every log-prob divided by its completion's length. */
function normalizedMargin(x: PairLogps): Tensor {
  return sub(div(sub(x.chosen, x.refChosen), x.chosenLen), div(sub(x.rejected, x.refRejected), x.rejectedLen));
}

export const LOSSES = {
  // DPO, Rafailov et al. 2023, eq. 7; with eps > 0 conservative DPO (cDPO):
  //   L = -(1 - eps) log s(beta h) - eps log s(-beta h)
  sigmoid: (x, { beta, labelSmoothing: eps }) => {
    const bh = scale(logRatioMargin(x), beta);
    return sub(scale(logsigmoid(bh), -(1 - eps)), scale(logsigmoid(neg(bh)), eps));
  },

  // Robust DPO, Chowdhury et al. 2024, eq. 9: unbiased under label noise eps.
  //   L = (-(1 - eps) log s(beta h) + eps log s(-beta h)) / (1 - 2 eps)
  robust: (x, { beta, labelSmoothing: eps }) => {
    const bh = scale(logRatioMargin(x), beta);
    return scale(add(scale(logsigmoid(bh), -(1 - eps)), scale(logsigmoid(neg(bh)), eps)), 1 / (1 - 2 * eps));
  },

  // SLiC / RSO hinge, Zhao et al. 2023; Liu et al. 2024:  L = max(0, 1 - beta h)
  hinge: (x, { beta }) => relu(addScalar(scale(logRatioMargin(x), -beta), 1)),

  // IPO, Azar et al. 2023, eq. 17, on length-averaged log-probs as TRL does:  L = (h_avg - 1/(2 beta))^2
  ipo: (x, { beta }) => square(addScalar(normalizedMargin(x), -1 / (2 * beta))),

  // Length-normalised DPO: the sigmoid loss on per-token log-ratios.  L = -log s(beta h_avg)
  sigmoid_norm: (x, { beta }) => neg(logsigmoid(scale(normalizedMargin(x), beta))),

  // APO-zero, D'Oosterlinck et al. 2024, eq. 6: push chosen up and rejected down, each on its own.
  //   L = 1 - s(beta (pi_w - ref_w)) + s(beta (pi_l - ref_l))
  apo_zero: (x, { beta }) => {
    const up = addScalar(neg(sigmoid(scale(sub(x.chosen, x.refChosen), beta))), 1);
    return add(up, sigmoid(scale(sub(x.rejected, x.refRejected), beta)));
  },

  // DPO-Positive (DPOP), Pal et al. 2024, eq. 3: a penalty once the chosen log-prob falls below the reference's.
  //   L = -log s(beta (h - lambda max(0, ref_w - pi_w)))
  dpop: (x, { beta, dpopLambda = 50 }) => {
    const fall = relu(sub(x.refChosen, x.chosen));
    return neg(logsigmoid(scale(sub(logRatioMargin(x), scale(fall, dpopLambda)), beta)));
  },

  // NLL on the chosen completion, per token (with sigmoid: Iterative RPO, Pang et al. 2024, eq. 3). Averaged per
  // pair, not per token of the batch as TRL does, so that gradient accumulation equals one large batch exactly.
  //   L = -pi_w / |y_w|
  sft: (x) => div(neg(x.chosen), x.chosenLen),
} satisfies Record<string, LossFn>;

export type LossName = keyof typeof LOSSES;
export const LOSS_NAMES = Object.keys(LOSSES) as LossName[];

/** Parses "sigmoid,sft" with weights "1,0.2" into a checked list. */
export function parseLosses(names: string, weights?: string): { name: LossName; weight: number }[] {
  const list = names
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const ws = weights ? weights.split(",").map((s) => Number(s.trim())) : list.map(() => 1);
  if (list.length === 0)
    throw new InputError("--loss names no loss", undefined, `choose from ${LOSS_NAMES.join(", ")}`);
  if (ws.length !== list.length || ws.some((w) => !Number.isFinite(w))) {
    throw new InputError(`--loss-weights "${weights}" must give one number per loss (${list.length})`);
  }
  return list.map((name, i) => {
    if (!(name in LOSSES))
      throw new InputError(`unknown loss "${name}"`, undefined, `choose from ${LOSS_NAMES.join(", ")}`);
    return { name: name as LossName, weight: ws[i] };
  });
}
