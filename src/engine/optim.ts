// AdamW and global-norm gradient clipping. Optimizer state lives outside tidy scopes; the optimizer owns it.

import type { Backend } from "../backend/backend.js";
import type { Tensor } from "./tensor.js";
import { zeros } from "./tensor.js";

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

  constructor(readonly params: Tensor[], opts: AdamWOptions) {
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
      p.backend.adamw(p.buf, p.grad.buf, this.m[i].buf, this.v[i].buf, {
        lr, beta1: this.o.beta1, beta2: this.o.beta2, eps: this.o.eps, weightDecay: wd, step: this.stepCount,
      });
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Sets every gradient to zero, keeping the buffers (so a training step allocates no long-lived memory). */
export function zeroGrad(params: Tensor[]): void {
  for (const p of params) if (p.grad) p.backend.fill(p.grad.buf, 0);
}

/** The global L2 norm of the gradients. */
export function gradNorm(params: Tensor[]): number {
  const withGrad = params.filter((p) => p.grad);
  if (withGrad.length === 0) return 0;
  const be: Backend = withGrad[0].backend;
  const acc = zeros([1], withGrad[0].dtype, be);
  try {
    withGrad.forEach((p, i) => be.sumSquares(p.grad!.buf, acc.buf, i > 0));
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
