// The DPO loss table: known values at h = 0, closed forms at random margins, and gradient checks.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { gradCheck } from "../engine/gradcheck.js";
import { meanAll } from "../engine/nn.js";
import { type Tensor, tensor, tidy } from "../engine/tensor.js";
import { LOSSES, LOSS_NAMES, parseLosses, type PairLogps } from "./losses.js";

const be = referenceBackend();
const t = (xs: number[]) => tensor(xs, [xs.length], "f64", be);

function pairs(c: number[], r: number[], rc: number[], rr: number[], lc: number[], lr: number[]): PairLogps {
  return { chosen: t(c), rejected: t(r), refChosen: t(rc), refRejected: t(rr), chosenLen: t(lc), rejectedLen: t(lr) };
}

test("policy equal to reference: sigmoid and robust give exactly ln 2, hinge 1, apo_zero 1, ipo 1/(4 beta^2)", () => {
  tidy(() => {
    const x = pairs([-3, -7.5], [-4, -2], [-3, -7.5], [-4, -2], [3, 5], [4, 2]);
    const at = (name: keyof typeof LOSSES, eps = 0) =>
      Array.from(LOSSES[name](x, { beta: 0.1, labelSmoothing: eps }).toArray());
    assert.deepEqual(at("sigmoid"), [Math.LN2, Math.LN2]);
    for (const v of at("robust", 0.1)) assert.ok(Math.abs(v - Math.LN2) < 1e-15);
    assert.deepEqual(at("hinge"), [1, 1]);
    assert.deepEqual(at("apo_zero"), [1, 1]);
    for (const v of at("ipo")) assert.ok(Math.abs(v - 25) < 1e-12);
    for (const v of at("sigmoid_norm")) assert.ok(Math.abs(v - Math.LN2) < 1e-15);
  });
});

test("closed forms at a random margin", () => {
  tidy(() => {
    const [c, r, rc, rr, lc, lr, beta] = [-5.2, -9.1, -6.0, -8.0, 4, 7, 0.3];
    const x = pairs([c], [r], [rc], [rr], [lc], [lr]);
    const h = c - rc - (r - rr);
    const hn = (c - rc) / lc - (r - rr) / lr;
    const ls = (z: number) => -Math.log1p(Math.exp(-z));
    const s = (z: number) => 1 / (1 + Math.exp(-z));
    const eps = 0.2;
    const want: Record<string, number> = {
      sigmoid: -(1 - eps) * ls(beta * h) - eps * ls(-beta * h),
      robust: (-(1 - eps) * ls(beta * h) + eps * ls(-beta * h)) / (1 - 2 * eps),
      hinge: Math.max(0, 1 - beta * h),
      ipo: (hn - 1 / (2 * beta)) ** 2,
      sigmoid_norm: -ls(beta * hn),
      apo_zero: 1 - s(beta * (c - rc)) + s(beta * (r - rr)),
      sft: -c / lc,
      dpop: -ls(beta * h), // the chosen log-prob is above the reference's: no penalty
    };
    for (const name of LOSS_NAMES) {
      const got = LOSSES[name](x, { beta, labelSmoothing: eps }).item();
      assert.ok(Math.abs(got - want[name]) < 1e-12, `${name}: ${got} vs ${want[name]}`);
    }
  });
});

test("dpop: the penalty lambda * (ref_w - pi_w) once the chosen log-prob falls below the reference's", () => {
  tidy(() => {
    const [c, r, rc, rr, beta, lambda] = [-7.0, -9.1, -6.0, -8.0, 0.3, 5];
    const ls = (z: number) => -Math.log1p(Math.exp(-z));
    const h = c - rc - (r - rr);
    const got = LOSSES.dpop(pairs([c], [r], [rc], [rr], [4], [7]), {
      beta,
      labelSmoothing: 0,
      dpopLambda: lambda,
    }).item();
    const want = -ls(beta * (h - lambda * (rc - c)));
    assert.ok(Math.abs(got - want) < 1e-12, `${got} vs ${want}`);
  });
});

test("every loss has correct gradients with respect to the policy log-probs", () => {
  for (const name of LOSS_NAMES) {
    const c = t([-5.2, -3.3, -8]);
    const r = t([-9.1, -2.5, -8.5]);
    c.requiresGrad = true;
    r.requiresGrad = true;
    const fixed = {
      refChosen: t([-6, -3, -7]),
      refRejected: t([-8, -3, -9]),
      chosenLen: t([4, 2, 5]),
      rejectedLen: t([7, 3, 5]),
    };
    const res = gradCheck(
      be,
      (cc: Tensor, rr: Tensor) =>
        meanAll(LOSSES[name]({ chosen: cc, rejected: rr, ...fixed }, { beta: 0.3, labelSmoothing: 0.1 })),
      [c, r],
    );
    for (const e of res) assert.ok(e.maxRelErr < 1e-6, `${name} input ${e.input}: ${e.maxRelErr}`);
    for (const x of [c, r, ...Object.values(fixed)]) {
      x.grad?.dispose();
      x.dispose();
    }
  }
});

test("parseLosses checks names and weights", () => {
  assert.deepEqual(parseLosses("sigmoid,sft", "1,0.2"), [
    { name: "sigmoid", weight: 1 },
    { name: "sft", weight: 0.2 },
  ]);
  assert.throws(() => parseLosses("sigmoid,kto"), /unknown loss "kto"/);
  assert.throws(() => parseLosses("sigmoid,sft", "1"), /one number per loss/);
});
