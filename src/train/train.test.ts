// Invariants of the trainers on a tiny random decoder (reference backend, float64 unless stated).

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend, withBackend } from "../backend/index.js";
import { Rng } from "../core/rng.js";
import { AdamW, zeroGrad } from "../engine/optim.js";
import { tidy } from "../engine/tensor.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { dpoObjective, precomputeRefLogps, type TokenPair } from "./dpo.js";
import { evaluateAll, runLoop, type LoopConfig } from "./loop.js";
import { sftObjective } from "./sft.js";
import type { Example } from "./batch.js";

const be = referenceBackend();
const CFG: LlamaConfig = {
  vocab_size: 11,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 32,
  tie_word_embeddings: false,
  attention_bias: true,
};
const LOOP: LoopConfig = {
  epochs: 1,
  maxSteps: null,
  batchSize: 8,
  gradAccum: 1,
  lr: 1e-2,
  schedule: "constant",
  warmupRatio: 0,
  weightDecay: 0,
  maxGradNorm: 0,
  seed: 3,
};

function randomPairs(n: number, seed: number): TokenPair[] {
  const rng = new Rng(seed);
  const seq = (lo: number, hi: number) => Array.from({ length: lo + rng.int(hi - lo + 1) }, () => 1 + rng.int(10));
  return Array.from({ length: n }, () => ({ prompt: [0, ...seq(1, 4)], chosen: seq(1, 5), rejected: seq(1, 5) }));
}

const model = (seed = 5) => new Llama(CFG, { seed, dtype: "f64", backend: be });
const opts = { beta: 0.1, labelSmoothing: 0, losses: [{ name: "sigmoid" as const, weight: 1 }], padId: 0 };

test("DPO at step 0 (policy = reference): loss is ln 2 (to the last bit of the mean) and rewards are 0", () => {
  withBackend(be, () => {
    const policy = model();
    const pairs = randomPairs(6, 1);
    const ref = precomputeRefLogps(policy, pairs, 0, 4);
    const r = tidy(() =>
      dpoObjective(policy, { kind: "precomputed", logps: ref }, opts).run(pairs, [0, 1, 2, 3, 4, 5], 1 / 6),
    );
    assert.ok(Math.abs(r.loss - Math.LN2) <= 2.3e-16, `loss ${r.loss}`); // each pair's loss is exactly ln 2
    assert.equal(r.sums["rewards/chosen"], 0);
    assert.equal(r.sums["rewards/margins"], 0);
    policy.dispose();
  });
});

test("gradient accumulation 1x8 equals 8x1 (DPO with sigmoid+sft, and SFT)", () => {
  withBackend(be, () => {
    const pairs = randomPairs(8, 2);
    const idx = pairs.map((_, i) => i);
    const grads = (accum: number, objective: "dpo" | "sft") => {
      const m = model();
      const ref = precomputeRefLogps(model(9), pairs, 0, 8);
      const mix = {
        ...opts,
        losses: [
          { name: "sigmoid" as const, weight: 1 },
          { name: "sft" as const, weight: 0.3 },
        ],
      };
      const examples: Example[] = pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen }));
      const units = objective === "dpo" ? 8 : examples.reduce((a, e) => a + e.completion.length, 0);
      zeroGrad(m.parameters());
      const per = 8 / accum;
      for (let k = 0; k < accum; k++) {
        const sl = idx.slice(k * per, (k + 1) * per);
        tidy(() =>
          objective === "dpo"
            ? dpoObjective(m, { kind: "precomputed", logps: ref }, mix).run(
                sl.map((i) => pairs[i]),
                sl,
                1 / units,
              )
            : sftObjective(m, 0).run(
                sl.map((i) => examples[i]),
                sl,
                1 / units,
              ),
        );
      }
      const out = m.parameters().map((p) => Array.from(p.grad!.toArray()));
      m.dispose();
      return out;
    };
    for (const kind of ["dpo", "sft"] as const) {
      const one = grads(1, kind);
      const eight = grads(8, kind);
      let maxDiff = 0;
      one.forEach((g, i) => g.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - eight[i][j])))));
      assert.ok(maxDiff < 1e-12, `${kind}: max |grad 1x8 - grad 8x1| = ${maxDiff}`);
    }
  });
});

test("precomputed reference log-probs equal a live reference model", () => {
  withBackend(be, () => {
    const pairs = randomPairs(5, 3);
    const run = (live: boolean) => {
      const policy = model(5);
      const refModel = model(6);
      const ref = live
        ? { kind: "live" as const, model: refModel }
        : { kind: "precomputed" as const, logps: precomputeRefLogps(refModel, pairs, 0, 2) };
      zeroGrad(policy.parameters());
      const r = tidy(() => dpoObjective(policy, ref, opts).run(pairs, [0, 1, 2, 3, 4], 1 / 5));
      const g = Array.from(policy.parameters()[1].grad!.toArray());
      policy.dispose();
      refModel.dispose();
      return { r, g };
    };
    const a = run(false);
    const b = run(true);
    assert.ok(Math.abs(a.r.loss - b.r.loss) < 1e-12, `${a.r.loss} vs ${b.r.loss}`);
    a.g.forEach((v, i) => assert.ok(Math.abs(v - b.g[i]) < 1e-12));
  });
});

test("one optimizer step of each trainer changes every trainable parameter", () => {
  withBackend(be, () => {
    const pairs = randomPairs(8, 4);
    for (const kind of ["sft", "dpo"] as const) {
      const m = model();
      const before = m.parameters().map((p) => Array.from(p.toArray()));
      const opt = new AdamW(m.parameters(), { lr: 1e-3, weightDecay: 0 });
      const ref = precomputeRefLogps(model(8), pairs, 0, 8);
      const examples: Example[] = pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen }));
      const state = { step: 0, epoch: 0, cursor: 0, tokens: 0 };
      const c = { ...LOOP, maxSteps: 1 };
      if (kind === "sft") runLoop(examples, m.parameters(), opt, c, sftObjective(m, 0), tidy, state);
      else
        runLoop(pairs, m.parameters(), opt, c, dpoObjective(m, { kind: "precomputed", logps: ref }, opts), tidy, state);
      m.parameters().forEach((p, i) => {
        const after = p.toArray();
        const changed = before[i].every((v, j) => v !== after[j]);
        assert.ok(changed, `${kind}: some entry of ${p.name} did not change`);
      });
      opt.dispose();
      m.dispose();
    }
  });
});

test("evaluation scores held-out pairs without gradients and names metrics eval_... as TRL does", () => {
  withBackend(be, () => {
    const pairs = randomPairs(5, 6);
    const m = model();
    const ref = precomputeRefLogps(model(7), pairs, 0, 5);
    const objective = dpoObjective(m, { kind: "precomputed", logps: ref }, opts);
    zeroGrad(m.parameters());
    const ev = evaluateAll(pairs, objective, 2, tidy);
    assert.ok(
      m.parameters().every((p) => !p.grad),
      "no gradient was accumulated",
    );
    const trained = tidy(() => objective.run(pairs, [0, 1, 2, 3, 4], 1 / 5));
    assert.ok(Math.abs(ev.eval_loss - trained.loss) < 1e-12, `${ev.eval_loss} vs ${trained.loss}`);
    assert.ok(Math.abs(ev["eval_rewards/margins"] - trained.sums["rewards/margins"]) < 1e-12);
    m.dispose();
  });
});
