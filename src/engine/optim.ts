// AdamW and global-norm gradient clipping. Optimizer state lives outside tidy scopes; the optimizer owns it.
// Both use the backend's fused kernel (adamw, sumSquares) when it has one, else the composed version here.

import type { AdamWParams } from "../backend/backend.js";
import { hasFused } from "../backend/backend.js";
import { add, addScalar, div, scale, sqrt, square, sub, sumAll } from "./ops.js";
import type { Tensor } from "./tensor.js";
import { noGrad, tidy, zeros } from "./tensor.js";

export interface AdamWOptions {
  lr: number; // peak learning rate; step() may be given the scheduled one
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0.01 (PyTorch's AdamW default), decoupled
  /** Parameters that get no weight decay (e.g. norms and biases); default none. */
  noDecay?: (p: Tensor) => boolean;
}

export class AdamW {
  readonly m: Tensor[];
  readonly v: Tensor[];
  stepCount = 0;
  private readonly o: Required<Omit<AdamWOptions, "noDecay">> & Pick<AdamWOptions, "noDecay">;

  constructor(
    readonly params: Tensor[],
    opts: AdamWOptions,
  ) {
    this.o = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, ...opts };
    this.m = params.map((p) => zeros(p.shape, p.dtype, p.backend).keep());
    this.v = params.map((p) => zeros(p.shape, p.dtype, p.backend).keep());
  }

  /** One update from each parameter's .grad (parameters without a grad are skipped). */
  step(lr = this.o.lr): void {
    this.stepCount++;
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const wd = this.o.noDecay?.(p) ? 0 : this.o.weightDecay;
      const { beta1, beta2, eps } = this.o;
      const hp = { lr, beta1, beta2, eps, weightDecay: wd, step: this.stepCount };
      const be = p.backend;
      if (hasFused(be, "adamw")) be.adamw(p.buf, p.grad.buf, this.m[i].buf, this.v[i].buf, hp);
      else adamwComposed(p, p.grad, this.m[i], this.v[i], hp);
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

// PyTorch AdamW, as reference.ts's fused kernel:  p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//                p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
function adamwComposed(p: Tensor, g: Tensor, m: Tensor, v: Tensor, o: AdamWParams): void {
  noGrad(() =>
    tidy(() => {
      const m2 = add(scale(m, o.beta1), scale(g, 1 - o.beta1));
      const v2 = add(scale(v, o.beta2), scale(square(g), 1 - o.beta2));
      const denom = addScalar(scale(sqrt(v2), 1 / Math.sqrt(1 - o.beta2 ** o.step)), o.eps);
      const p2 = sub(scale(p, 1 - o.lr * o.weightDecay), scale(div(m2, denom), o.lr / (1 - o.beta1 ** o.step)));
      for (const [to, from] of [
        [m, m2],
        [v, v2],
        [p, p2],
      ])
        copyInto(to, from, false);
    }),
  );
}

/** to (+)= from, elementwise, in place (same size). */
function copyInto(to: Tensor, from: Tensor, accumulate: boolean): void {
  to.backend.copyRange(from.buf, 1, 0, to.buf, 1, 0, 1, 1, to.size, accumulate);
}

/** Sets every gradient to zero, keeping the buffers (so a training step allocates no long-lived memory). */
export function zeroGrad(params: Tensor[]): void {
  for (const p of params) if (p.grad) p.backend.fill(p.grad.buf, 0);
}

/** The global L2 norm of the gradients. */
export function gradNorm(params: Tensor[]): number {
  const withGrad = params.filter((p) => p.grad);
  if (withGrad.length === 0) return 0;
  const be = withGrad[0].backend;
  const acc = zeros([1], withGrad[0].dtype, be);
  try {
    withGrad.forEach((p, i) => {
      if (hasFused(be, "sumSquares")) be.sumSquares(p.grad!.buf, acc.buf, i > 0);
      else noGrad(() => tidy(() => copyInto(acc, sumAll(square(p.grad!)), i > 0))); // acc (+)= sum(g^2)
    });
    return Math.sqrt(acc.item());
  } finally {
    acc.dispose();
  }
}

/** Scales all gradients so their global norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const norm = gradNorm(params);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad) p.backend.unary("scale", p.grad.buf, p.grad.buf, s);
  }
  return norm;
}
