// The optimizer loop: NaN guard, data order, schedules.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend, withBackend } from "../backend/index.js";
import { NonFiniteError } from "../core/errors.js";
import { backward } from "../engine/autograd.js";
import { mul, scale, sumAll } from "../engine/ops.js";
import { AdamW } from "../engine/optim.js";
import { tensor, tidy } from "../engine/tensor.js";
import { epochOrder, runLoop, totalSteps, type LoopConfig, type Objective } from "./loop.js";
import { learningRate } from "./schedule.js";

const LOOP: LoopConfig = {
  epochs: 2,
  maxSteps: null,
  batchSize: 2,
  gradAccum: 1,
  lr: 0.1,
  schedule: "constant",
  warmupRatio: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  seed: 1,
};

test("a NaN loss stops training with an error naming the step, before the weights change", () => {
  withBackend(referenceBackend(), () => {
    const w = tensor([1, 2], [2], "f64").keep();
    w.requiresGrad = true;
    const items = [1, 2, 3, NaN, 5, 6];
    const objective: Objective<number> = {
      run(xs, _i, weight) {
        const loss = scale(sumAll(mul(w, tensor([xs[0], xs[1] ?? 0], [2], "f64"))), weight);
        backward(loss);
        return { loss: loss.item(), tokens: xs.length, sums: {} };
      },
    };
    const opt = new AdamW([w], { lr: 0.1 });
    const order = epochOrder(items.length, LOOP.seed, 0);
    const badStep = Math.floor(order.indexOf(3) / 2) + 1;
    let weightsBefore: number[] = [];
    let err: unknown;
    try {
      runLoop(
        items,
        [w],
        opt,
        LOOP,
        objective,
        tidy,
        { step: 0, epoch: 0, cursor: 0, tokens: 0 },
        {
          onStep: () => (weightsBefore = Array.from(w.toArray())),
        },
      );
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof NonFiniteError, `expected NonFiniteError, got ${err}`);
    assert.equal((err as NonFiniteError).step, badStep);
    assert.match((err as Error).message, new RegExp(`non-finite loss \\(NaN\\) at step ${badStep}`));
    if (badStep > 1)
      assert.deepEqual(Array.from(w.toArray()), weightsBefore, "the failing step did not update weights");
    opt.dispose();
    w.grad?.dispose();
    w.dispose();
  });
});

test("data order is a seeded permutation per epoch; total steps respect maxSteps", () => {
  const a = epochOrder(10, 3, 0);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.deepEqual(a, epochOrder(10, 3, 0));
  assert.notDeepEqual(a, epochOrder(10, 3, 1));
  assert.equal(totalSteps(10, { ...LOOP, batchSize: 3, gradAccum: 2 }), 4); // ceil(10 / 6) * 2 epochs
  assert.equal(totalSteps(10, { ...LOOP, maxSteps: 3 }), 3);
});

test("warmup then cosine and linear decay", () => {
  const s = { kind: "cosine" as const, peak: 1, warmupSteps: 3, totalSteps: 13 };
  assert.deepEqual(
    [0, 1, 2].map((i) => learningRate(s, i)),
    [0.25, 0.5, 0.75],
  );
  assert.equal(learningRate(s, 3), 1);
  assert.ok(Math.abs(learningRate(s, 8) - 0.5) < 1e-12);
  assert.ok(learningRate(s, 13) < 1e-12);
  assert.equal(learningRate({ ...s, kind: "linear" }, 8), 0.5);
  assert.equal(learningRate({ ...s, kind: "constant" }, 12), 1);
});
