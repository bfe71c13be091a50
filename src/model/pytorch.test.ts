// Oracle test against PyTorch / Hugging Face transformers (fixtures from reference/make_fixtures.py): tiny random
// Llama (GQA, llama3 rope scaling, head_dim != hidden/heads) and Qwen2 (q/k/v biases, one KV head, tied
// embeddings) folders saved by save_pretrained load here, and on a fixed left-padded batch give the same logits,
// loss and gradient of every parameter. Prints the largest difference per tensor; fails past the tolerances.
//
// Legend: B batch, T time, V vocab.

import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Backend, DType } from "../backend/backend.js";
import { nativeBackend, referenceBackend } from "../backend/index.js";
import { backward } from "../engine/autograd.js";
import { crossEntropy } from "../engine/nn.js";
import { tensor, tidy } from "../engine/tensor.js";
import { loadModel } from "./hub.js";
import { Checkpoint } from "./safetensors.js";

export const FIXTURES = fileURLToPath(new URL("../../src/model/fixtures/", import.meta.url));

interface Batch {
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  labels: number[][];
  loss: number;
  loss_f32: number;
}

// Tolerances on max |ours - torch| / max |torch| per tensor. float64 against float64 is rounding noise only;
// float32 against float64 is float32 rounding through two layers (measured about 1e-7 to 1e-6).
const TOL: Record<string, { logits: number; grad: number; loss: number }> = {
  f64: { logits: 1e-12, grad: 1e-11, loss: 1e-13 },
  f32: { logits: 1e-5, grad: 5e-5, loss: 1e-6 },
};

/** max |a - b| and max |b| over the elements where keep(i) is true. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, keep: (i: number) => boolean = () => true) {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    if (!keep(i)) continue;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale, rel: diff / Math.max(scale, 1e-30) };
}

const runs: [string, () => Backend | null, DType][] = [
  ["reference f64", referenceBackend, "f64"],
  ["reference f32", referenceBackend, "f32"],
  ["native f32", nativeBackend, "f32"],
];

for (const name of ["llama-tiny", "qwen2-tiny"]) {
  for (const [label, getBackend, dtype] of runs) {
    test(`${name} matches PyTorch: logits, loss, every gradient (${label})`, (t) => {
      const be = getBackend();
      if (!be) return t.skip("native backend not built");
      const dir = `${FIXTURES}${name}`;
      const batch: Batch = JSON.parse(fs.readFileSync(`${dir}/batch.json`, "utf8"));
      const ref = Checkpoint.open(`${dir}/reference.safetensors`);
      const model = loadModel(`${dir}/model`, { dtype, backend: be });
      const tol = TOL[dtype];
      const B = batch.input_ids.length;
      const T = batch.input_ids[0].length;
      const V = model.config.vocab_size;
      const mask = batch.attention_mask.flat();
      // Next-token targets: labels shifted left, -1 (ignored) at the end and wherever the label is -100.
      const targets = batch.labels.flatMap((row) =>
        row.map((_, i) => (i + 1 < T && row[i + 1] >= 0 ? row[i + 1] : -1)),
      );
      const failures: string[] = [];
      const check = (
        what: string,
        ours: ArrayLike<number>,
        theirs: ArrayLike<number>,
        limit: number,
        keep?: (i: number) => boolean,
      ) => {
        const d = maxDiff(ours, theirs, keep);
        t.diagnostic(
          `${what}: max |diff| ${d.diff.toExponential(2)} (relative ${d.rel.toExponential(2)}, limit ${limit})`,
        );
        if (!(d.rel <= limit)) failures.push(`${what}: relative difference ${d.rel.toExponential(2)} > ${limit}`);
      };
      try {
        tidy(() => {
          const ids = tensor(batch.input_ids.flat(), [B, T], "i32", be);
          const pos = tensor(batch.position_ids.flat(), [B, T], "i32", be);
          const keyMask = tensor(mask, [B, T], "i32", be);
          const logits = model.forward(ids, { pos, keyMask }); // (B, T, V)
          // Padded query positions see no key here and a uniform mix in HF: compare real positions only.
          const real = (i: number) => mask[Math.floor(i / V)] === 1;
          check("logits", logits.toArray(), ref.read("logits", "f64"), tol.logits, real);
          if (dtype === "f32")
            check("logits vs stock HF float32", logits.toArray(), ref.read("logits_f32"), tol.logits, real);
          const loss = crossEntropy(logits, tensor(targets, [B, T], "i32", be));
          const l = loss.item();
          t.diagnostic(`loss ${l} vs torch ${batch.loss} (diff ${Math.abs(l - batch.loss).toExponential(2)})`);
          if (!(Math.abs(l - batch.loss) <= tol.loss * Math.abs(batch.loss)))
            failures.push(`loss ${l} != ${batch.loss}`);
          backward(loss);
        });
        let checked = 0;
        for (const [pname, p] of model.params) {
          const key = `grad.${pname}`;
          if (!ref.has(key)) continue;
          assert.ok(p.grad, `${pname} got no gradient`);
          check(key, p.grad.toArray(), ref.read(key, "f64"), tol.grad);
          checked++;
        }
        assert.equal(
          checked,
          [...ref.tensors.keys()].filter((k) => k.startsWith("grad.")).length,
          "every gradient in the fixture was compared",
        );
      } finally {
        ref.close();
        model.dispose();
      }
      assert.deepEqual(failures, [], failures.join("\n"));
    });
  }
}
