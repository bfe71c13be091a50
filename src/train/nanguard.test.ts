// The NaN guard (issue #15, item 3): an exploding or non-finite loss or gradient stops the loop before the weights
// move (with clipping off too), non-finite weights are never written to a checkpoint, the message says what
// exists, and loading weights that hold NaN/Inf warns naming the tensor.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { getBackend, referenceBackend, setBackend, withBackend } from "../backend/index.js";
import { NonFiniteError } from "../core/errors.js";
import { backward } from "../engine/autograd.js";
import { mul, scale, sumAll } from "../engine/ops.js";
import { AdamW } from "../engine/optim.js";
import { tensor, tidy, type Tensor } from "../engine/tensor.js";
import { loadModel, saveModel } from "../model/hub.js";
import { Llama } from "../model/llama.js";
import { Checkpoint } from "../model/safetensors.js";
import { MICRO_CONFIG } from "../cli/testkit.js";
import { CHECKPOINT_FORMAT, latestCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { runLoop, type LoopConfig, type Objective } from "./loop.js";
import { train } from "./trainer.js";

const LOOP: LoopConfig = {
  epochs: 1,
  maxSteps: null,
  batchSize: 1,
  gradAccum: 1,
  lr: 0.1,
  schedule: "constant",
  warmupRatio: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  seed: 1,
};

/** loss = scale_i * sum(w * x): item i's value sets the loss and the gradient. */
function linear(w: Tensor): Objective<number> {
  return {
    run(xs, _i, weight) {
      const loss = scale(sumAll(mul(w, tensor([xs[0], xs[0]], [2], "f64"))), weight);
      backward(loss);
      return { loss: loss.item(), tokens: 1, sums: {} };
    },
  };
}

function param(): Tensor {
  const w = tensor([1, 2], [2], "f64").keep();
  w.requiresGrad = true;
  return w;
}

function failure(fn: () => void): NonFiniteError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof NonFiniteError, `expected NonFiniteError, got ${e}`);
    return e;
  }
  assert.fail("expected the loop to stop");
}

test("a loss that explodes (finite, 1e12) stops the loop at its step, before the weights move", () => {
  withBackend(referenceBackend(), () => {
    const w = param();
    const opt = new AdamW([w], { lr: 0.1 });
    const items = [1, 1, 1, 1];
    let before: number[] = [];
    let steps = 0;
    const objective = linear(w);
    const exploding: Objective<number> = {
      run: (xs, i, weight) => objective.run(steps === 2 ? [1e12] : xs, i, weight),
    };
    const err = failure(() =>
      runLoop(
        items,
        [w],
        opt,
        LOOP,
        exploding,
        tidy,
        { step: 0, epoch: 0, cursor: 0, tokens: 0 },
        {
          onStep: () => {
            steps++;
            before = Array.from(w.toArray());
          },
        },
      ),
    );
    assert.equal(err.step, 3);
    assert.match(err.message, /exploding loss \(2\d{12}(\.\d+)?: over 300, 100x the first step's 3\) at step 3/);
    assert.deepEqual(Array.from(w.toArray()), before, "the failing step did not update the weights");
    opt.dispose();
    w.grad?.dispose();
    w.dispose();
  });
});

test("with clipping off (--max-grad-norm 0) a non-finite gradient still stops the loop", () => {
  withBackend(referenceBackend(), () => {
    const w = param();
    const opt = new AdamW([w], { lr: 0.1 });
    const inf: Objective<number> = {
      run(_xs, _i, weight) {
        // The loss it reports is finite, but its gradient holds Inf: d/dw0 (Inf * w0) = Inf.
        const g = mul(w, tensor([Infinity, 1], [2], "f64"));
        backward(scale(sumAll(g), weight));
        return { loss: 1, tokens: 1, sums: {} };
      },
    };
    const err = failure(() =>
      runLoop([1, 2], [w], opt, { ...LOOP, maxGradNorm: 0 }, inf, tidy, { step: 0, epoch: 0, cursor: 0, tokens: 0 }),
    );
    assert.match(err.message, /non-finite gradient norm \((Infinity|NaN)\) at step 1/);
    assert.deepEqual(Array.from(w.toArray()), [1, 2]);
    opt.dispose();
    w.grad?.dispose();
    w.dispose();
  });
});

test("a checkpoint of non-finite weights is refused, naming the tensor; the folder keeps what it had", () => {
  withBackend(referenceBackend(), () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-nan-ckpt-"));
    const w = param();
    const opt = new AdamW([w], { lr: 0.1 });
    const state = {
      step: 1,
      epoch: 0,
      cursor: 1,
      tokens: 1,
      format: CHECKPOINT_FORMAT,
      kind: "sft",
      configHash: "x",
      adamStep: 1,
    };
    try {
      saveCheckpoint(root, new Map([["layer.weight", w]]), opt, state, 2);
      w.backend.write(w.buf, Float64Array.from([NaN, 2]));
      const err = failure(() => saveCheckpoint(root, new Map([["layer.weight", w]]), opt, { ...state, step: 2 }, 2));
      assert.match(
        err.message,
        /non-finite weights \(1 NaN\/Inf values in "layer\.weight", the first at index 0\) at step 2/,
      );
      assert.equal(path.basename(latestCheckpoint(root)!), "step-0000001");
      assert.deepEqual(fs.readdirSync(path.join(root, "checkpoints")), ["step-0000001"]);
    } finally {
      opt.dispose();
      w.dispose();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

test("the trainer's message says what exists: no checkpoint, or the newest one and its step", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-nan-train-"));
  const prev = getBackend();
  setBackend(referenceBackend()); // for the whole async run (withBackend would restore at the first await)
  try {
    for (const [name, saveEvery, explodeAt] of [
      ["none", 0, 2],
      ["some", 2, 4],
    ] as const) {
      {
        const w = param();
        let calls = 0;
        const base = linear(w);
        const objective: Objective<number> = {
          run: (xs, i, weight) => base.run(++calls === explodeAt ? [NaN] : xs, i, weight),
        };
        const out = path.join(root, name);
        await assert.rejects(
          train({
            outDir: out,
            kind: "sft",
            items: [1, 1, 1, 1, 1, 1],
            params: new Map([["w", w]]),
            objective,
            loop: LOOP,
            saveEvery,
            keepLast: 2,
            resume: false,
            config: {},
          }),
          (e: Error) => {
            assert.ok(e instanceof NonFiniteError);
            assert.doesNotMatch(e.message, /is intact/);
            if (name === "none")
              assert.match(e.message, /no checkpoint exists in .*none: nothing of this run was saved/);
            else assert.match(e.message, /the newest checkpoint, .*step-0000002 \(step 2\), holds finite weights/);
            return true;
          },
        );
        w.grad?.dispose();
        w.dispose();
      }
    }
  } finally {
    setBackend(prev);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("loading a model whose weights hold NaN warns, naming the tensor", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-nan-load-"));
  const warnings: string[] = [];
  const saved = Checkpoint.warn;
  Checkpoint.warn = (m) => warnings.push(m);
  try {
    const m = new Llama(MICRO_CONFIG, { seed: 1, backend: referenceBackend() });
    const norm = m.params.get("model.norm.weight")!;
    const values = Float32Array.from(norm.toArray() as Float32Array);
    values[3] = Infinity;
    values[5] = NaN;
    norm.backend.write(norm.buf, values);
    saveModel(m, root);
    m.dispose();
    loadModel(root, { warn: () => {} }).dispose();
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0],
      /tensor "model\.norm\.weight" holds 2 non-finite values \(NaN\/Inf, the first at index 3\)/,
    );
  } finally {
    Checkpoint.warn = saved;
    fs.rmSync(root, { recursive: true, force: true });
  }
});
