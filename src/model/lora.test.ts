// LoRA adapters: against PyTorch + peft (fixtures from reference/make_lora_fixtures.py: peft adapters with non-zero
// B on the tiny Llama and Qwen2 fixtures, their logits, loss and LoRA gradients on the fixed batch), peft loading
// adapters we save (where Python with torch, transformers and peft is installed), and the invariants: a fresh
// adapter is exactly the base, adapters off is exactly the base, merged == unmerged, the KV-cache path == forward,
// only LoRA weights train, seeded dropout, PEFT file names and shapes, clear errors, no leaked buffers.
//
// Legend: B batch, T time, V vocab.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Backend, DType } from "../backend/backend.js";
import { hostArray } from "../backend/backend.js";
import { nativeBackend, referenceBackend } from "../backend/index.js";
import { InputError, StepwiseError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { backward } from "../engine/autograd.js";
import { crossEntropy } from "../engine/nn.js";
import { AdamW, zeroGrad } from "../engine/optim.js";
import { type Tensor, noGrad, tensor, tidy } from "../engine/tensor.js";
import { loadModel, saveModel } from "./hub.js";
import type { Llama } from "./llama.js";
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  LORA_MODULES,
  attachLora,
  detachLora,
  isLoraParam,
  loadAdapter,
  loraParams,
  mergeAndUnload,
  mergeLora,
  parsePeftConfig,
  saveAdapter,
  unmergeLora,
} from "./lora.js";
import { Checkpoint, readHeader, writeSafetensors } from "./safetensors.js";

const FIXTURES = fileURLToPath(new URL("../../src/model/fixtures/", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const LLAMA = `${FIXTURES}llama-tiny/model`;
const QWEN2 = `${FIXTURES}qwen2-tiny/model`;

interface Batch {
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  labels: number[][];
}
interface Expected {
  base: string;
  loss: number;
  loss_f32: number;
  scales: Record<string, number>;
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-lora-"));
}

/** max |a - b| / max |b| over the elements where keep(i) is true. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>, keep: (i: number) => boolean = () => true) {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    if (!keep(i)) continue;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, rel: diff / Math.max(scale, 1e-30) };
}

/** Overwrites t with N(0, std) values (e.g. a B that makes the adapter matter). */
function randomize(t: Tensor, rng: Rng, std: number): void {
  const host = hostArray(t.dtype, t.size);
  for (let i = 0; i < host.length; i++) host[i] = rng.normal() * std;
  t.backend.write(t.buf, host);
}

/** A model with an attached adapter whose B are random: its logits differ from the base's. */
function adapted(dir: string, be: Backend, dtype: DType, opts: Parameters<typeof attachLora>[1] = { r: 4 }): Llama {
  const m = loadModel(dir, { backend: be, dtype });
  attachLora(m, { seed: 7, ...opts });
  const rng = new Rng(9);
  for (const l of m.lora!.linears) randomize(l.B, rng, 0.2);
  return m;
}

/** The fixture batch's inputs and next-token targets. */
function batchOf(batch: Batch, be: Backend) {
  const B = batch.input_ids.length;
  const T = batch.input_ids[0].length;
  const targets = batch.labels.flatMap((row) => row.map((_, i) => (i + 1 < T && row[i + 1] >= 0 ? row[i + 1] : -1)));
  return {
    B,
    T,
    mask: batch.attention_mask.flat(),
    ids: () => tensor(batch.input_ids.flat(), [B, T], "i32", be),
    opts: () => ({
      pos: tensor(batch.position_ids.flat(), [B, T], "i32", be),
      keyMask: tensor(batch.attention_mask.flat(), [B, T], "i32", be),
    }),
    targets: () => tensor(targets, [B, T], "i32", be),
  };
}

function readBatch(base: string): Batch {
  return JSON.parse(fs.readFileSync(`${FIXTURES}${base}/batch.json`, "utf8"));
}

// Tolerances on max |ours - torch| / max |torch|. float64 against float64 is rounding noise; float32 against
// float64 is float32 rounding through two layers (measured relative: logits <= 7e-7, LoRA grads <= 1.7e-6).
const TOL: Record<string, { logits: number; grad: number; loss: number }> = {
  f64: { logits: 1e-12, grad: 1e-11, loss: 1e-13 },
  f32: { logits: 1e-5, grad: 5e-5, loss: 1e-6 },
};

const runs: [string, () => Backend | null, DType][] = [
  ["reference f64", referenceBackend, "f64"],
  ["reference f32", referenceBackend, "f32"],
  ["native f32", nativeBackend, "f32"],
];

for (const name of ["llama-tiny-lora", "qwen2-tiny-lora"]) {
  for (const [label, getBackend, dtype] of runs) {
    test(`${name}: the peft adapter reproduces PyTorch logits, loss and LoRA gradients (${label})`, (t) => {
      const be = getBackend();
      if (!be) return t.skip("native backend not built");
      const dir = `${FIXTURES}${name}`;
      const expected: Expected = JSON.parse(fs.readFileSync(`${dir}/expected.json`, "utf8"));
      const batch = batchOf(readBatch(expected.base), be);
      const ref = Checkpoint.open(`${dir}/reference.safetensors`);
      const model = loadModel(`${dir}/adapter`, { dtype, backend: be }); // the base through base_model_name_or_path
      const tol = TOL[dtype];
      const V = model.config.vocab_size;
      const failures: string[] = [];
      const check = (
        what: string,
        ours: ArrayLike<number>,
        theirs: ArrayLike<number>,
        limit: number,
        keep?: (i: number) => boolean,
      ) => {
        const d = relDiff(ours, theirs, keep);
        t.diagnostic(
          `${what}: max |diff| ${d.diff.toExponential(2)} (relative ${d.rel.toExponential(2)}, limit ${limit})`,
        );
        if (!(d.rel <= limit)) failures.push(`${what}: relative difference ${d.rel.toExponential(2)} > ${limit}`);
      };
      try {
        const lora = model.lora!;
        assert.equal(lora.training, false, "eval mode after loading, as peft ran it: dropout off");
        assert.deepEqual(
          Object.fromEntries(lora.linears.map((l) => [l.key, l.scale])),
          expected.scales,
          "per-module scales",
        );
        tidy(() => {
          const logits = model.forward(batch.ids(), batch.opts()); // (B, T, V)
          const real = (i: number) => batch.mask[Math.floor(i / V)] === 1;
          check("logits", logits.toArray(), ref.read("logits", "f64"), tol.logits, real);
          if (dtype === "f32")
            check("logits vs stock peft float32", logits.toArray(), ref.read("logits_f32"), tol.logits, real);
          const loss = crossEntropy(logits, batch.targets());
          const l = loss.item();
          t.diagnostic(`loss ${l} vs torch ${expected.loss} (diff ${Math.abs(l - expected.loss).toExponential(2)})`);
          if (!(Math.abs(l - expected.loss) <= tol.loss * expected.loss))
            failures.push(`loss ${l} != ${expected.loss}`);
          backward(loss);
        });
        const grads = [...ref.tensors.keys()].filter((k) => k.startsWith("grad."));
        assert.equal(grads.length, loraParams(model).size, "one fixture gradient per LoRA tensor");
        for (const [pname, p] of model.params) {
          if (!isLoraParam(pname)) {
            assert.equal(p.grad, null, `base parameter ${pname} got a gradient`);
            continue;
          }
          assert.ok(p.grad, `${pname} got no gradient`);
          check(`grad ${pname}`, p.grad.toArray(), ref.read(`grad.base_model.model.${pname}`, "f64"), tol.grad);
        }
      } finally {
        ref.close();
        model.dispose();
      }
      assert.deepEqual(failures, [], failures.join("\n"));
    });
  }
}

test("a fresh adapter (B = 0) is exactly the base, with or without dropout; only A and B require grad", () => {
  const be = referenceBackend();
  const live = be.liveBuffers();
  const m = loadModel(LLAMA, { backend: be, dtype: "f64" });
  const batch = batchOf(readBatch("llama-tiny"), be);
  const base = tidy(() => m.forward(batch.ids(), batch.opts()).toArray());
  const baseNames = [...m.params.keys()];
  const lora = attachLora(m, { r: 4, alpha: 8, dropout: 0.3, seed: 1 });
  lora.training = true;
  assert.equal(lora.linears.length, 2 * LORA_MODULES.length);
  const trainable = [...m.params].filter(([, p]) => p.requiresGrad).map(([n]) => n);
  assert.deepEqual(trainable, [...loraParams(m).keys()]);
  assert.equal(trainable.length, 2 * 2 * LORA_MODULES.length);
  assert.ok(trainable.every((n) => /^model\.layers\.\d\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(n)));
  for (const l of lora.linears) {
    const a = l.A.toArray();
    const bound = 1 / Math.sqrt(l.A.shape[1]);
    assert.ok(
      a.every((x) => Math.abs(x) <= bound) && a.some((x) => Math.abs(x) > bound / 2),
      `${l.key}: A is U(-1/sqrt(in), 1/sqrt(in))`,
    );
    assert.ok(
      l.B.toArray().every((x) => x === 0),
      `${l.key}: B starts at zero`,
    );
    assert.deepEqual(
      [l.A.shape, l.B.shape],
      [
        [4, l.base.shape[1]],
        [l.base.shape[0], 4],
      ],
    );
  }
  tidy(() => {
    const logits = m.forward(batch.ids(), batch.opts()); // dropout active: training and recording
    assert.deepEqual(logits.toArray(), base, "step 0 equals the base exactly");
    backward(crossEntropy(logits, batch.targets()));
  });
  for (const [n, p] of m.params) {
    if (!isLoraParam(n)) assert.equal(p.grad, null, `${n} is frozen`);
    else if (n.includes("lora_A"))
      assert.ok(
        p.grad!.toArray().every((x) => x === 0),
        `${n}: zero gradient while B = 0`,
      );
    else
      assert.ok(
        p.grad!.toArray().some((x) => x !== 0),
        `${n}: B gets a gradient`,
      );
  }
  detachLora(m);
  assert.deepEqual([...m.params.keys()], baseNames);
  assert.ok(
    [...m.params.values()].every((p) => p.requiresGrad),
    "detach restores requiresGrad",
  );
  assert.deepEqual(
    tidy(() => m.forward(batch.ids(), batch.opts()).toArray()),
    base,
  );
  m.dispose();
  assert.equal(be.liveBuffers(), live);
});

test("adapters off is exactly the base (the DPO reference), also through the KV cache; merged cannot be switched off", () => {
  const be = referenceBackend();
  const base = loadModel(LLAMA, { backend: be, dtype: "f64" });
  const m = loadModel(`${FIXTURES}llama-tiny-lora/adapter`, { backend: be, dtype: "f64" });
  const batch = batchOf(readBatch("llama-tiny"), be);
  const run = (x: Llama) => tidy(() => x.forward(batch.ids(), batch.opts()).toArray());
  const want = run(base);
  assert.notDeepEqual(run(m), want, "the fixture adapter changes the logits");
  assert.deepEqual(
    m.withAdaptersDisabled(() => run(m)),
    want,
  );
  assert.equal(m.lora!.enabled, true, "switched back on afterwards");
  assert.throws(
    () =>
      m.withAdaptersDisabled(() => {
        throw new Error("inside");
      }),
    /inside/,
  );
  assert.equal(m.lora!.enabled, true, "switched back on after an error");
  const cached = (x: Llama) =>
    tidy(() => {
      const cache = x.newCache(1, 6);
      try {
        x.forwardCached(tensor([3, 1, 4, 1], [1, 4], "i32", be), cache);
        return x.forwardCached(tensor([5], [1, 1], "i32", be), cache).toArray();
      } finally {
        cache.dispose();
      }
    });
  assert.deepEqual(
    m.withAdaptersDisabled(() => cached(m)),
    cached(base),
  );
  mergeLora(m);
  assert.throws(
    () => m.withAdaptersDisabled(() => 0),
    (e) => e instanceof StepwiseError && /merged/.test(e.message),
  );
  base.dispose();
  m.dispose();
});

test("the KV-cache path with an adapter equals the full forward (prefill, then one token at a time)", () => {
  const be = referenceBackend();
  const m = loadModel(`${FIXTURES}qwen2-tiny-lora/adapter`, { backend: be, dtype: "f64" });
  const ids = [5, 17, 3, 22, 9, 40, 11, 2];
  const V = m.config.vocab_size;
  const full = tidy(() => m.forward(tensor(ids, [1, 8], "i32", be)).toArray());
  const cache = m.newCache(1, 8);
  const steps = tidy(() => [
    m.forwardCached(tensor(ids.slice(0, 5), [1, 5], "i32", be), cache).toArray(),
    ...[5, 6, 7].map((i) => m.forwardCached(tensor([ids[i]], [1, 1], "i32", be), cache).toArray()),
  ]);
  cache.dispose();
  const cached = new Float64Array(8 * V);
  let at = 0;
  for (const s of steps) {
    cached.set(s, at);
    at += s.length;
  }
  const d = relDiff(cached, full);
  assert.ok(d.rel < 1e-12, `cached vs full: ${d.rel}`);
  m.dispose();
});

test("merge == unmerged forward (f64 1e-12, f32 1e-5); unmerge restores W; merged save is a plain folder", () => {
  const be = referenceBackend();
  const batch = batchOf(readBatch("llama-tiny"), be);
  for (const [dtype, tol] of [
    ["f64", 1e-12],
    ["f32", 1e-5],
  ] as const) {
    const m = adapted(LLAMA, be, dtype, { r: 4, alpha: 16 });
    const run = () => tidy(() => m.forward(batch.ids(), batch.opts()).toArray());
    const before = run();
    const w0 = m.layers[1].down.toArray();
    mergeLora(m);
    assert.ok(m.lora!.merged);
    const merged = run();
    const d = relDiff(merged, before);
    assert.ok(d.rel < tol, `${dtype} merged vs unmerged: ${d.rel}`);
    assert.ok(relDiff(m.layers[1].down.toArray(), w0).diff > 1e-3, "W moved");
    unmergeLora(m);
    assert.ok(relDiff(m.layers[1].down.toArray(), w0).rel < (dtype === "f64" ? 1e-15 : 1e-6), "W restored");
    assert.ok(relDiff(run(), before).rel < tol);
    if (dtype === "f32") {
      mergeAndUnload(m);
      assert.equal(m.lora, null);
      assert.ok([...m.params.keys()].every((n) => !isLoraParam(n)));
      const dir = tmpdir();
      fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), "{}"); // stale files of an earlier save go
      saveModel(m, dir);
      assert.deepEqual(fs.readdirSync(dir).sort(), ["config.json", "model.safetensors"]);
      const back = loadModel(dir, { backend: be });
      assert.deepEqual(
        tidy(() => back.forward(batch.ids(), batch.opts()).toArray()),
        merged,
      );
      back.dispose();
      fs.rmSync(dir, { recursive: true });
    }
    m.dispose();
  }
});

test("PEFT files: tensor names, shapes and config; saveAdapter/loadAdapter and saveModel/loadModel round trips", () => {
  const be = referenceBackend();
  const batch = batchOf(readBatch("qwen2-tiny"), be);
  const m = adapted(QWEN2, be, "f32", {
    r: 3,
    alpha: 5,
    dropout: 0.05,
    targetModules: ["q_proj", "v_proj", "down_proj"],
    rslora: true,
    rankPattern: { down_proj: 2 },
    alphaPattern: { "layers.1.self_attn.q_proj": 7 },
  });
  const want = tidy(() => m.forward(batch.ids(), batch.opts()).toArray());
  const dir = tmpdir();
  saveAdapter(m, dir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, ADAPTER_CONFIG), "utf8"));
  assert.deepEqual(
    {
      peft_type: cfg.peft_type,
      task_type: cfg.task_type,
      r: cfg.r,
      lora_alpha: cfg.lora_alpha,
      lora_dropout: cfg.lora_dropout,
      target_modules: cfg.target_modules,
      bias: cfg.bias,
      fan_in_fan_out: cfg.fan_in_fan_out,
      use_rslora: cfg.use_rslora,
      rank_pattern: cfg.rank_pattern,
      alpha_pattern: cfg.alpha_pattern,
      base: cfg.base_model_name_or_path,
    },
    {
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      r: 3,
      lora_alpha: 5,
      lora_dropout: 0.05,
      target_modules: ["q_proj", "v_proj", "down_proj"],
      bias: "none",
      fan_in_fan_out: false,
      use_rslora: true,
      rank_pattern: { down_proj: 2 },
      alpha_pattern: { "layers.1.self_attn.q_proj": 7 },
      base: path.resolve(QWEN2),
    },
  );
  const h = readHeader(path.join(dir, ADAPTER_WEIGHTS));
  const shapes = Object.fromEntries([...h.tensors].map(([n, i]) => [n, i.shape]));
  assert.deepEqual(shapes["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"], [3, 40]);
  assert.deepEqual(shapes["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"], [40, 3]);
  assert.deepEqual(shapes["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"], [8, 3]);
  assert.deepEqual(shapes["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"], [2, 72]);
  assert.deepEqual(shapes["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"], [40, 2]);
  assert.equal(h.tensors.size, 12);
  assert.deepEqual(h.metadata, { format: "pt" });

  const back = loadModel(QWEN2, { backend: be });
  loadAdapter(back, dir);
  assert.deepEqual(
    back.lora!.linears.map((l) => [l.key, l.r, l.scale]),
    m.lora!.linears.map((l) => [l.key, l.r, l.scale]),
  );
  assert.deepEqual(
    tidy(() => back.forward(batch.ids(), batch.opts()).toArray()),
    want,
  );
  back.dispose();

  const full = tmpdir(); // base weights + adapter in one folder
  saveModel(m, full);
  assert.deepEqual(fs.readdirSync(full).sort(), [ADAPTER_CONFIG, ADAPTER_WEIGHTS, "config.json", "model.safetensors"]);
  assert.ok([...readHeader(path.join(full, "model.safetensors")).tensors.keys()].every((n) => !n.includes("lora")));
  const again = loadModel(full, { backend: be });
  assert.ok(again.lora && !again.lora.merged);
  assert.deepEqual(
    tidy(() => again.forward(batch.ids(), batch.opts()).toArray()),
    want,
  );
  const plain = loadModel(full, { backend: be, adapter: false });
  assert.equal(plain.lora, null);
  plain.dispose();
  again.dispose();
  m.dispose();
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(full, { recursive: true });
});

test("dropout: seeded, only in training mode while autograd records, resumable from its state", () => {
  const be = referenceBackend();
  const m = adapted(LLAMA, be, "f64", { r: 4, dropout: 0.5 });
  const batch = batchOf(readBatch("llama-tiny"), be);
  const evalMode = tidy(() => m.forward(batch.ids(), batch.opts()).toArray());
  m.lora!.training = true;
  const run = () => tidy(() => m.forward(batch.ids(), batch.opts()).toArray());
  const evalOut = tidy(() => noGrad(() => m.forward(batch.ids(), batch.opts()).toArray()));
  const state = m.lora!.rngState();
  const a = run();
  const b = run();
  assert.deepEqual(evalMode, evalOut, "eval mode at first");
  assert.notDeepEqual(a, evalOut);
  assert.notDeepEqual(a, b, "a new mask each forward");
  m.lora!.setRngState(state);
  assert.deepEqual(run(), a, "the same stream gives the same masks");
  m.lora!.training = false;
  assert.deepEqual(run(), evalOut, "no dropout outside training mode");
  m.dispose();
  // With A and B all ones, each output sums the masked inputs: inverted dropout keeps their mean.
  const m2 = adapted(LLAMA, be, "f64", { r: 4, dropout: 0.5, targetModules: ["q_proj"] });
  const l = m2.lora!.linears[0];
  m2.lora!.training = true;
  for (const w of [l.A, l.B]) be.fill(w.buf, 1);
  const x = tensor(new Array(2000 * 48).fill(1), [1, 2000, 48], "f64", be); // (B, T, in)
  const y = tensor(new Array(2000 * 40).fill(0), [1, 2000, 40], "f64", be); // (B, T, out)
  const dropped = m2.lora!.apply(0, "q_proj", x, y);
  const kept = noGrad(() => m2.lora!.apply(0, "q_proj", x, y));
  const sum = (a: ArrayLike<number>) => Array.from(a).reduce((p, v) => p + v, 0);
  const ratio = sum(dropped.toArray()) / sum(kept.toArray());
  assert.ok(Math.abs(ratio - 1) < 0.02, `inverted dropout keeps the mean: ratio ${ratio}`);
  for (const t of [x, y, dropped, kept]) t.dispose();
  m2.dispose();
});

test("target modules, layers, exclusions and patterns resolve as in peft", () => {
  const be = referenceBackend();
  const m = loadModel(LLAMA, { backend: be });
  const keys = (o: Parameters<typeof attachLora>[1]) => {
    const a = attachLora(m, o);
    const out = a.linears.map((l) => `${l.key}:${l.r}:${l.scale}`);
    detachLora(m);
    return out;
  };
  assert.deepEqual(keys({ r: 2, alpha: 4, targetModules: ["q_proj", "down_proj"], layers: [1] }), [
    "model.layers.1.self_attn.q_proj:2:2",
    "model.layers.1.mlp.down_proj:2:2",
  ]);
  assert.deepEqual(keys({ r: 2, targetModules: ".*\\.1\\.self_attn\\.(k|v)_proj" }), [
    "model.layers.1.self_attn.k_proj:2:2",
    "model.layers.1.self_attn.v_proj:2:2",
  ]);
  assert.equal(keys({ r: 2, targetModules: "all-linear", excludeModules: ["o_proj"] }).length, 12);
  assert.deepEqual(
    keys({ r: 4, alpha: 4, rslora: true, targetModules: ["v_proj"], rankPattern: { "layers.0.self_attn.v_proj": 1 } }),
    ["model.layers.0.self_attn.v_proj:1:4", "model.layers.1.self_attn.v_proj:4:2"],
  );
  assert.ok([...m.params.values()].every((p) => p.requiresGrad && !isLoraParam(p.name)));
  m.dispose();
});

test("bad adapters and options are clear errors naming the key, file or tensor", () => {
  const be = referenceBackend();
  const live = be.liveBuffers();
  const m = loadModel(LLAMA, { backend: be });
  const ok = { peft_type: "LORA", r: 4, lora_alpha: 8, target_modules: ["q_proj"] };
  for (const [extra, pattern] of [
    [{ use_dora: true }, /"use_dora"/],
    [{ bias: "all" }, /"bias"/],
    [{ fan_in_fan_out: true }, /"fan_in_fan_out"/],
    [{ modules_to_save: ["lm_head"] }, /"modules_to_save"/],
    [{ peft_type: "IA3" }, /"peft_type"/],
    [{ task_type: "SEQ_CLS" }, /"task_type"/],
    [{ r: "4" }, /"r"/],
    [{ layers_to_transform: "0" }, /"layers_to_transform"/],
  ] as const) {
    assert.throws(
      () => parsePeftConfig({ ...ok, ...extra }, "a/adapter_config.json"),
      (e) => e instanceof InputError && pattern.test(e.message) && e.message.includes("a/adapter_config.json"),
      JSON.stringify(extra),
    );
  }
  assert.deepEqual(parsePeftConfig({ peft_type: "LORA" }, "x").targetModules, ["q_proj", "v_proj"]); // peft's defaults
  assert.throws(() => attachLora(m, { r: 4, targetModules: ["q_proj", "lm_head"] }), /"lm_head" not among/);
  assert.throws(() => attachLora(m, { r: 0 }), /rank must be a positive integer/);
  assert.throws(() => attachLora(m, { r: 2, dropout: 1 }), /dropout must be in/);
  assert.throws(() => attachLora(m, { r: 2, layers: [2] }), /outside the model's 2 layers/);
  assert.throws(() => attachLora(m, { r: 2, targetModules: "nothing" }), /match no projection/);
  assert.throws(
    () => attachLora(m, { r: 2, targetModules: "q_proj(" }),
    (e) => e instanceof InputError && /bad module pattern/.test(e.message),
  );
  assert.throws(() => mergeLora(m), /no LoRA adapter/);
  attachLora(m, { r: 2 });
  assert.throws(() => attachLora(m, { r: 2 }), /already has a LoRA adapter/);
  detachLora(m);

  // A copy of the fixture adapter with one tensor missing, one misshapen, one extra.
  const src = `${FIXTURES}llama-tiny-lora/adapter`;
  const ck = Checkpoint.open(path.join(src, ADAPTER_WEIGHTS));
  const all = [...ck.tensors.values()].map((i) => ({
    name: i.name,
    shape: i.shape,
    dtype: "F32" as const,
    data: () => ck.read(i.name),
  }));
  const broken = (edit: typeof all) => {
    const dir = tmpdir();
    fs.copyFileSync(path.join(src, ADAPTER_CONFIG), path.join(dir, ADAPTER_CONFIG));
    writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), edit);
    return dir;
  };
  const victim = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
  const cases: [string, RegExp][] = [
    [broken(all.filter((t) => t.name !== victim)), new RegExp(`missing tensor "${victim.replace(/\./g, "\\.")}"`)],
    [
      broken(all.map((t) => (t.name === victim ? { ...t, shape: [4, 83], data: () => new Float32Array(332) } : t))),
      /has shape \(4, 83\), expected \(83, 4\)/,
    ],
    [
      broken([
        ...all,
        {
          name: "base_model.model.lm_head.lora_A.weight",
          shape: [4, 48],
          dtype: "F32",
          data: () => new Float32Array(192),
        },
      ]),
      /1 tensor\(s\) the config does not explain, e.g. "base_model\.model\.lm_head\.lora_A\.weight"/,
    ],
  ];
  for (const [dir, pattern] of cases) {
    assert.throws(
      () => loadAdapter(m, dir),
      (e) => e instanceof InputError && pattern.test(e.message) && e.message.includes(dir),
      String(pattern),
    );
    assert.equal(m.lora, null, "a failed load leaves no adapter");
    assert.ok([...m.params.values()].every((p) => p.requiresGrad));
    fs.rmSync(dir, { recursive: true });
  }
  ck.close();
  const orphan = tmpdir();
  fs.writeFileSync(
    path.join(orphan, ADAPTER_CONFIG),
    JSON.stringify({ ...ok, base_model_name_or_path: "no/such/base" }),
  );
  assert.throws(() => loadModel(orphan, { backend: be }), /base model "no\/such\/base" not found/);
  fs.rmSync(orphan, { recursive: true });
  m.dispose();
  assert.equal(be.liveBuffers(), live);
});

for (const [label, getBackend] of [
  ["reference", referenceBackend],
  ["native", nativeBackend],
] as const) {
  test(`LoRA training steps with dropout leak no buffers; only A and B move (${label})`, (t) => {
    const be = getBackend();
    if (!be) return t.skip("native backend not built");
    const live = be.liveBuffers();
    const m = loadModel(LLAMA, { backend: be });
    const batch = batchOf(readBatch("llama-tiny"), be);
    attachLora(m, { r: 4, dropout: 0.1, seed: 3 }).training = true;
    const params = [...loraParams(m).values()];
    const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
    const base = [...m.params].filter(([n]) => !isLoraParam(n)).map(([, p]) => p.toArray());
    const step = () => tidy(() => backward(crossEntropy(m.forward(batch.ids(), batch.opts()), batch.targets())));
    step();
    opt.step();
    const after = be.liveBuffers();
    for (let i = 0; i < 2; i++) {
      zeroGrad(params);
      step();
      opt.step();
    }
    assert.equal(be.liveBuffers(), after, "a step leaves the live buffer count unchanged");
    assert.deepEqual(
      [...m.params].filter(([n]) => !isLoraParam(n)).map(([, p]) => p.toArray()),
      base,
      "base unchanged",
    );
    assert.ok(
      m.lora!.linears.every((l) => l.B.toArray().some((x) => x !== 0)),
      "every B moved",
    );
    detachLora(m);
    opt.dispose();
    m.dispose();
    assert.equal(be.liveBuffers(), live);
  });
}

function pythonHasPeft(): boolean {
  return spawnSync("python3", ["-c", "import torch, transformers, peft"], { stdio: "ignore" }).status === 0;
}

test("peft loads adapters we save and reproduces our logits; transformers loads merged folders (needs Python)", (t) => {
  if (!pythonHasPeft()) return t.skip("python3 with torch, transformers and peft is not installed");
  const be = referenceBackend();
  const batch = readBatch("qwen2-tiny"); // ids < 53: valid for both vocabularies
  const { B, T, mask } = batchOf(batch, be);
  const cases: [string, Parameters<typeof attachLora>[1]][] = [
    [LLAMA, { r: 4, alpha: 8, dropout: 0.1 }],
    [
      QWEN2,
      {
        r: 3,
        alpha: 5,
        targetModules: ["q_proj", "v_proj", "down_proj"],
        rslora: true,
        rankPattern: { down_proj: 2 },
        alphaPattern: { "layers.1.self_attn.q_proj": 7 },
        layers: [1],
      },
    ],
  ];
  // HF uses positions 0..T-1 on every row when none are given (as our forward does); padded keys are masked.
  const forward = (m: Llama) =>
    tidy(() =>
      m
        .forward(tensor(batch.input_ids.flat(), [B, T], "i32", be), { keyMask: tensor(mask, [B, T], "i32", be) })
        .toArray(),
    );
  const dirs = cases.map(() => tmpdir());
  const ours = cases.map(([base, opts], i) => {
    const m = adapted(base, be, "f32", opts);
    const adapter = forward(m);
    const scales = Object.fromEntries(m.lora!.linears.map((l) => [l.key, l.scale]));
    saveAdapter(m, path.join(dirs[i], "adapter"));
    mergeAndUnload(m);
    const merged = forward(m);
    saveModel(m, path.join(dirs[i], "merged"));
    const V = m.config.vocab_size;
    m.dispose();
    return { adapter, merged, scales, real: (k: number) => mask[Math.floor(k / V)] === 1 };
  });
  const python = (script: string, args: string[]) => {
    const r = spawnSync("python3", [path.join(REPO, "reference", script), JSON.stringify(batch), ...args], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { results: { logits: number[][][]; scales?: Record<string, number> }[] }).results;
  };
  const peft = python(
    "peft_logits.py",
    cases.flatMap(([base], i) => [base, path.join(dirs[i], "adapter")]),
  );
  const hf = python(
    "hf_logits.py",
    dirs.map((d) => path.join(d, "merged")),
  );
  cases.forEach(([base], i) => {
    const name = path.basename(path.dirname(base));
    assert.deepEqual(peft[i].scales, ours[i].scales, `${name}: peft's scales`);
    const d = relDiff(ours[i].adapter, peft[i].logits.flat(2), ours[i].real);
    t.diagnostic(
      `${name}: our adapter in peft, logits max |diff| ${d.diff.toExponential(2)} (relative ${d.rel.toExponential(2)})`,
    );
    assert.ok(d.rel < 1e-5, `${name}: ${d.rel}`);
    const dm = relDiff(ours[i].merged, hf[i].logits.flat(2), ours[i].real);
    t.diagnostic(
      `${name}: merged folder in transformers, logits max |diff| ${dm.diff.toExponential(2)} (relative ${dm.rel.toExponential(2)})`,
    );
    assert.ok(dm.rel < 1e-5, `${name} merged: ${dm.rel}`);
  });
  for (const d of dirs) fs.rmSync(d, { recursive: true });
});
