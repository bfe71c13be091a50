// AdamW against its closed form, and global-norm clipping.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { AdamW, clipGradNorm, gradNorm, zeroGrad } from "./optim.js";
import { tensor } from "./tensor.js";

const be = referenceBackend();

function param(values: number[]) {
  const p = tensor(values, [values.length], "f64", be).keep();
  p.requiresGrad = true;
  return p;
}

test("AdamW's first step moves each weight by lr * sign(grad) after decoupled decay", () => {
  const p = param([0.5, -1.0, 2.0]);
  p.grad = tensor([0.3, -2.0, 1e-3], [3], "f64", be).keep();
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5, eps: 1e-12 });
  opt.step();
  const got = Array.from(p.toArray());
  const want = [0.5 * 0.95 - 0.1, -1.0 * 0.95 + 0.1, 2.0 * 0.95 - 0.1];
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-9, `weight ${i}: ${g} vs ${want[i]}`));
  opt.dispose();
  p.grad.dispose();
  p.dispose();
});

test("AdamW over 5 steps equals the PyTorch formula written out", () => {
  const p = param([0.1, -0.2]);
  const grads = [
    [1, -1],
    [0.5, 0.2],
    [-0.3, 0.3],
    [2, 0],
    [0.1, -0.4],
  ];
  const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.95, 1e-8, 0.1];
  const opt = new AdamW([p], { lr, beta1: b1, beta2: b2, eps, weightDecay: wd });
  const w = [0.1, -0.2];
  const m = [0, 0];
  const v = [0, 0];
  grads.forEach((g, t) => {
    p.grad?.dispose();
    p.grad = tensor(g, [2], "f64", be).keep();
    opt.step();
    for (let i = 0; i < 2; i++) {
      w[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mhat = m[i] / (1 - b1 ** (t + 1));
      const vhat = v[i] / (1 - b2 ** (t + 1));
      w[i] -= (lr * mhat) / (Math.sqrt(vhat) + eps);
    }
  });
  const got = Array.from(p.toArray());
  got.forEach((x, i) => assert.ok(Math.abs(x - w[i]) < 1e-12, `weight ${i}: ${x} vs ${w[i]}`));
  opt.dispose();
  p.grad?.dispose();
  p.dispose();
});

test("clipGradNorm scales gradients to the max norm and reports the norm before", () => {
  const a = param([0, 0]);
  const b = param([0]);
  a.grad = tensor([3, 0], [2], "f64", be).keep();
  b.grad = tensor([4], [1], "f64", be).keep();
  assert.equal(gradNorm([a, b]), 5);
  const norm = clipGradNorm([a, b], 1);
  assert.equal(norm, 5);
  assert.ok(Math.abs(gradNorm([a, b]) - 1) < 1e-6);
  assert.equal(clipGradNorm([a, b], 10), gradNorm([a, b]), "below the max nothing changes");
  zeroGrad([a, b]);
  assert.equal(gradNorm([a, b]), 0);
  for (const t of [a, b]) {
    t.grad?.dispose();
    t.dispose();
  }
});
