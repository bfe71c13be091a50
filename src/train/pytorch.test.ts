// Every DPO-family loss against PyTorch (reference/make_dpo_fixtures.py): the tiny Llama fixture scores three
// pairs; the loss, TRL's reward metrics and the gradients of four parameters must match. Float64 on the
// reference backend (tight), float32 on the native backend when it is built (looser).

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Backend } from "../backend/backend.js";
import { nativeBackend, referenceBackend, withBackend } from "../backend/index.js";
import { zeroGrad } from "../engine/optim.js";
import { tidy } from "../engine/tensor.js";
import { loadModel } from "../model/hub.js";
import { Checkpoint } from "../model/safetensors.js";
import { dpoObjective, type TokenPair } from "./dpo.js";
import type { LossName } from "./losses.js";

const FIX = fileURLToPath(new URL("../../src/model/fixtures/", import.meta.url));

interface Variant {
  terms: { name: LossName; weight: number; label_smoothing: number }[];
  loss: number;
  rewards_chosen: number[];
  rewards_rejected: number[];
  margins: number[];
}
interface Fixture {
  beta: number;
  pairs: TokenPair[];
  ref_chosen: number[];
  ref_rejected: number[];
  variants: Record<string, Variant>;
  grad_params: string[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function check(be: Backend, dtype: "f32" | "f64", tol: { loss: number; grad: number }, log: (m: string) => void) {
  const fx = JSON.parse(fs.readFileSync(path.join(FIX, "dpo", "dpo.json"), "utf8")) as Fixture;
  const grads = Checkpoint.open(path.join(FIX, "dpo", "grads.safetensors"));
  withBackend(be, () => {
    const model = loadModel(path.join(FIX, "llama-tiny", "model"), { dtype, backend: be });
    const ref = { chosen: Float64Array.from(fx.ref_chosen), rejected: Float64Array.from(fx.ref_rejected) };
    const idx = fx.pairs.map((_, i) => i);
    for (const [name, v] of Object.entries(fx.variants)) {
      zeroGrad(model.parameters());
      const objective = dpoObjective(
        model,
        { kind: "precomputed", logps: ref },
        {
          beta: fx.beta,
          labelSmoothing: v.terms[0].label_smoothing,
          padId: 0,
          losses: v.terms.map((t) => ({ name: t.name, weight: t.weight })),
        },
      );
      const r = tidy(() => objective.run(fx.pairs, idx, 1 / fx.pairs.length));
      const lossErr = Math.abs(r.loss - v.loss) / Math.max(1, Math.abs(v.loss));
      const metrics: [string, number][] = [
        ["rewards/chosen", mean(v.rewards_chosen)],
        ["rewards/rejected", mean(v.rewards_rejected)],
        ["rewards/margins", mean(v.margins)],
        ["rewards/accuracies", mean(v.rewards_chosen.map((c, i) => (c > v.rewards_rejected[i] ? 1 : 0)))],
      ];
      let worstGrad = 0;
      for (const p of fx.grad_params) {
        const want = grads.read(`${name}.grad.${p}`, "f64");
        const got = model.params.get(p)!.grad!.toArray();
        let scale = 0;
        for (const x of want) scale = Math.max(scale, Math.abs(x));
        for (let i = 0; i < want.length; i++)
          worstGrad = Math.max(worstGrad, Math.abs(got[i] - want[i]) / Math.max(scale, 1e-12));
      }
      log(
        `${dtype} ${name}: loss rel err ${lossErr.toExponential(1)}, worst grad err (rel. to max) ${worstGrad.toExponential(1)}`,
      );
      assert.ok(lossErr < tol.loss, `${name}: loss ${r.loss} vs ${v.loss}`);
      for (const [m, want] of metrics)
        assert.ok(Math.abs(r.sums[m] - want) < tol.loss * 10, `${name} ${m}: ${r.sums[m]} vs ${want}`);
      assert.ok(worstGrad < tol.grad, `${name}: gradient error ${worstGrad}`);
    }
    model.dispose();
  });
  grads.close();
}

test("DPO losses, rewards and gradients match PyTorch (reference backend, float64)", (t) => {
  check(referenceBackend(), "f64", { loss: 1e-12, grad: 1e-10 }, (m) => t.diagnostic(m)); // measured ~1e-15
});

test("DPO losses, rewards and gradients match PyTorch (native backend, float32)", (t) => {
  const be = nativeBackend();
  if (!be) return t.skip("native backend not built");
  check(be, "f32", { loss: 2e-6, grad: 2e-5 }, (m) => t.diagnostic(m)); // measured ~1e-7 and ~2e-6
});
