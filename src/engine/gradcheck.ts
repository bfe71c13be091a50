// Float64 central-difference gradient checks, for tests of ops and models.

import type { Backend } from "../backend/backend.js";
import { Rng } from "../core/rng.js";
import { backward } from "./autograd.js";
import { mul, sumAll } from "./ops.js";
import { type Tensor, tensor, tidy } from "./tensor.js";

export interface GradCheckResult {
  input: number;
  maxAbsErr: number;
  maxRelErr: number; // |analytic - numeric| / max(1, |numeric|)
}

/**
 * Compares autograd gradients of L = sum(f(inputs) * R), R fixed random weights, with central differences
 * (step h) for each float input that requires grad. Inputs must be f64 tensors on `backend`.
 */
export function gradCheck(
  backend: Backend,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  seed = 1,
  h = 1e-6,
): GradCheckResult[] {
  const rng = new Rng(seed);
  const out0 = tidy(() => f(...inputs).keep());
  const r = tensor(
    Array.from({ length: out0.size }, () => rng.uniform(-1, 1)),
    out0.shape,
    "f64",
    backend,
  );
  out0.dispose();
  const loss = (xs: Tensor[]) => tidy(() => sumAll(mul(f(...xs), r)).item());

  for (const x of inputs) {
    x.grad?.dispose();
    x.grad = null;
  }
  tidy(() => backward(sumAll(mul(f(...inputs), r))));

  const results: GradCheckResult[] = [];
  inputs.forEach((x, i) => {
    if (!x.requiresGrad) return;
    const analytic = x.grad ? (x.grad.toArray() as Float64Array) : new Float64Array(x.size);
    const base = x.toArray() as Float64Array;
    let maxAbs = 0;
    let maxRel = 0;
    for (let j = 0; j < x.size; j++) {
      const probe = base.slice();
      probe[j] = base[j] + h;
      backend.write(x.buf, probe);
      const up = loss(inputs);
      probe[j] = base[j] - h;
      backend.write(x.buf, probe);
      const down = loss(inputs);
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(analytic[j] - numeric);
      maxAbs = Math.max(maxAbs, err);
      maxRel = Math.max(maxRel, err / Math.max(1, Math.abs(numeric)));
    }
    backend.write(x.buf, base);
    results.push({ input: i, maxAbsErr: maxAbs, maxRelErr: maxRel });
  });
  r.dispose();
  return results;
}
