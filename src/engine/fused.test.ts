// The composed path: a backend with only the required primitives (backend.ts: primitivesOnly) must compute what
// the fused kernels compute. On the float64 reference backend, forward values and gradients of each fused op and of
// a 2-layer decoder's training steps agree with the fused reference to 1e-12, each composition passes a float64
// finite-difference gradient check, and a step leaks no buffers. On the native backend (when built) its f32
// primitives composed agree with its fused kernels to float32 accuracy.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Backend, FusedKernel } from "../backend/backend.js";
import { FUSED, hasFused, primitivesOnly } from "../backend/backend.js";
import { nativeBackend, referenceBackend } from "../backend/index.js";
import { BackendError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { backward } from "./autograd.js";
import { gradCheck } from "./gradcheck.js";
import { crossEntropy } from "./nn.js";
import * as op from "./ops.js";
import { AdamW, clipGradNorm, zeroGrad } from "./optim.js";
import { type Tensor, tensor, tidy } from "./tensor.js";

const full = referenceBackend();
const prims = primitivesOnly(full);
const TOL = 1e-12; // max |composed - fused| / max(1, |fused|) in float64 (measured: 2e-15 at most)

/** An input of `f`: its shape and values, and whether it gets a gradient (float) or holds indices (i32). */
interface Input {
  shape: number[];
  data: number[];
  kind: "grad" | "const" | "i32";
}

function randInput(shape: number[], seed: number, lo = -1, hi = 1): Input {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Array.from({ length: n }, () => rng.uniform(lo, hi)), kind: "grad" };
}
const ids = (data: number[], shape: number[] = [data.length]): Input => ({ shape, data, kind: "i32" });

/** f's output and the gradients of sum(f * R) (R fixed random weights) on backend `be`, in float64. */
function run(be: Backend, f: (...xs: Tensor[]) => Tensor, inputs: Input[], dtype: "f32" | "f64"): Float64Array[] {
  const xs = inputs.map((x) => {
    const t = tensor(x.data, x.shape, x.kind === "i32" ? "i32" : dtype, be);
    t.requiresGrad = x.kind === "grad";
    return t;
  });
  const results = tidy(() => {
    const y = f(...xs);
    const rng = new Rng(99);
    const r = tensor(
      Array.from({ length: y.size }, () => rng.uniform(-1, 1)),
      y.shape,
      dtype,
      be,
    );
    backward(op.sumAll(op.mul(y, r)));
    return [y, ...xs.filter((x) => x.requiresGrad).map((x) => x.grad!)].map((t) => Float64Array.from(t.toArray()));
  });
  for (const x of xs) {
    x.grad?.dispose();
    x.dispose();
  }
  return results;
}

/** Largest |got - want| / max(1, |want|); NaN where one is NaN and the other is not, or infinities differ. */
function maxRelErr(want: ArrayLike<number>, got: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (Object.is(want[i], got[i])) continue;
    const err = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (Number.isNaN(err)) return NaN;
    worst = Math.max(worst, err);
  }
  return worst;
}

/** The composed path on `be` (primitives only) against its fused kernels: output, then each input's gradient. */
function sameOnBoth(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Input[],
  be: Backend = full,
  dtype: "f32" | "f64" = "f64",
  tol = TOL,
): void {
  const want = run(be, f, inputs, dtype);
  const got = run(primitivesOnly(be), f, inputs, dtype);
  want.forEach((w, i) => {
    const err = maxRelErr(w, got[i]);
    const what = i === 0 ? "output" : `gradient ${i}`;
    console.log(`${name} ${what}: max rel err ${err.toExponential(2)}`);
    assert.ok(err <= tol, `${name} ${what}: composed differs from fused by ${err} > ${tol}`);
  });
}

/** Float64 central differences on the composed path. */
function gradCheckComposed(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Input[]): void {
  const xs = inputs.map((x) => {
    const t = tensor(x.data, x.shape, x.kind === "i32" ? "i32" : "f64", prims);
    t.requiresGrad = x.kind === "grad";
    return t;
  });
  const res = gradCheck(prims, f, xs);
  assert.ok(res.length > 0, `${name}: no input was checked`);
  for (const r of res) assert.ok(r.maxRelErr <= 1e-6, `${name} input ${r.input}: max rel err ${r.maxRelErr} > 1e-6`);
  for (const t of xs) {
    t.grad?.dispose();
    t.dispose();
  }
}

// Rotary tables for positions 0..7 of head size 6, with a little noise so no value is special.
function ropeTables(d: number): [Input, Input] {
  const rng = new Rng(5);
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < 8; p++) {
    for (let i = 0; i < d / 2; i++) {
      const angle = p * 10000 ** (-(2 * i) / d) + rng.uniform(0, 0.01);
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
  }
  return [
    { shape: [8, d / 2], data: cos, kind: "const" },
    { shape: [8, d / 2], data: sin, kind: "const" },
  ];
}

/** Each fused op with inputs that reach its edge cases, as (name, f, inputs). */
function cases(): [string, (...xs: Tensor[]) => Tensor, Input[]][] {
  const [cos, sin] = ropeTables(6);
  const [b, tq, tk, h, hkv, d] = [2, 3, 5, 4, 2, 4];
  const qkv = (seed: number, tq_ = tq, tk_ = tk, h_ = h, hkv_ = hkv) => [
    randInput([b, tq_, h_, d], seed),
    randInput([b, tk_, hkv_, d], seed + 1),
    randInput([b, tk_, hkv_, d], seed + 2),
  ];
  return [
    ["rmsnorm (3, 17)", (x, w) => op.rmsnorm(x, w, 1e-5), [randInput([3, 17], 1), randInput([17], 2, 0.5, 1.5)]],
    ["rmsnorm (2, 1, 33)", (x, w) => op.rmsnorm(x, w, 1e-6), [randInput([2, 1, 33], 3), randInput([33], 4)]],
    [
      "rope",
      (x, c, s, p) => op.rope(x, c, s, p),
      [randInput([2, 3, 2, 6], 5), cos, sin, ids([0, 1, 2, 5, 6, 7], [2, 3])],
    ],
    [
      "rope, one batch row",
      (x, c, s, p) => op.rope(x, c, s, p),
      [randInput([1, 2, 3, 6], 6), cos, sin, ids([4, 0], [1, 2])],
    ],
    ["attention causal, KV prefix, GQA", (q, k, v) => op.attention(q, k, v), qkv(10)],
    [
      "attention + padding, a query that sees no key",
      (q, k, v, m) => op.attention(q, k, v, { keyMask: m }),
      [...qkv(20, 3, 3), ids([0, 0, 1, 1, 1, 0], [b, 3])],
    ],
    [
      "attention non-causal + padding, scale 0.7",
      (q, k, v, m) => op.attention(q, k, v, { causal: false, scale: 0.7, keyMask: m }),
      [...qkv(30), ids([0, 1, 1, 1, 1, 1, 1, 0, 1, 1], [b, tk])],
    ],
    ["attention multi-head, Tq = Tk = 7", (q, k, v) => op.attention(q, k, v), qkv(40, 7, 7, 3, 3)],
    ["logSoftmax (3, 17)", (x) => op.logSoftmax(x), [randInput([3, 17], 50, -3, 3)]],
    ["logSoftmax (2, 1, 257)", (x) => op.logSoftmax(x), [randInput([2, 1, 257], 51, -30, 30)]],
    [
      "tokenLogprobs with an ignored target",
      (x, t) => op.tokenLogprobs(x, t),
      [randInput([2, 3, 17], 60, -3, 3), ids([4, -100, 16, 0, 3, -1], [2, 3])],
    ],
  ];
}

test("each fused op composed from primitives equals the fused reference in float64 (output and gradients)", () => {
  const before = full.liveBuffers();
  for (const [name, f, inputs] of cases()) sameOnBoth(name, f, inputs);
  assert.equal(full.liveBuffers(), before, "the composed ops leaked buffers");
});

test("each composed op passes a float64 finite-difference gradient check", () => {
  for (const [name, f, inputs] of cases()) gradCheckComposed(name, f, inputs);
});

test("composed attention: a query that sees no key gives zeros; composed tokenLogprobs checks targets", () => {
  const q = tensor([0.3, -0.2, 0.5, 0.1, -0.4, 0.2], [1, 3, 1, 2], "f64", prims);
  const mask = tensor([0, 0, 1], [1, 3], "i32", prims);
  const out = Array.from(op.attention(q, q, q, { keyMask: mask }).toArray());
  assert.deepEqual(out.slice(0, 4), [0, 0, 0, 0]); // queries 0 and 1 see only padding
  assert.ok(out.every(Number.isFinite));
  const logits = tensor([1, 2, 3, 4, 5, 6], [2, 3], "f64", prims);
  const targets = tensor([0, 3], [2], "i32", prims);
  assert.throws(() => op.tokenLogprobs(logits, targets), /target 3 at row 1 is outside \[0, 3\)/);
});

test("a backend with a fused forward but not its backward is an error that names both", () => {
  const halfDone: Backend = { ...prims, rmsnorm: (...args) => full.rmsnorm(...args) };
  const x = tensor([1, 2, 3], [1, 3], "f64", halfDone);
  assert.throws(
    () => op.rmsnorm(x, tensor([1, 1, 1], [3], "f64", halfDone), 1e-5),
    (e: unknown) => e instanceof BackendError && /implements rmsnorm but not rmsnormGrad/.test(e.message),
  );
});

test("the reference and native backends take every fused path; primitivesOnly takes none", () => {
  const kernels = Object.keys(FUSED) as FusedKernel[];
  for (const be of [full, nativeBackend()]) {
    if (be) for (const k of kernels) assert.ok(hasFused(be, k), `${be.name} lacks fused ${k}`);
  }
  for (const k of kernels) assert.ok(!hasFused(prims, k), `primitivesOnly still has ${k}`);
});

const TOY: LlamaConfig = {
  vocab_size: 16,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 16,
  tie_word_embeddings: false,
  attention_bias: false,
};
const SEQ = [3, 7, 1, 12, 3, 7, 9, 0, 14, 3, 7, 1, 12];

interface ToyRun {
  losses: number[]; // at each step
  grads: Float64Array[]; // every parameter's gradient at the first step
  params: Float64Array[]; // every parameter after the last step
  live: number[]; // live buffers after each step
}

/** `steps` clipped AdamW steps of the toy decoder on a batch of two rows, one with padding and ignored targets. */
function trainToy(be: Backend, dtype: "f32" | "f64", steps: number): ToyRun {
  const model = new Llama(TOY, { seed: 3, dtype, backend: be });
  const opt = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0.1 });
  const T = SEQ.length - 1;
  const inputs = tensor([...SEQ.slice(0, T), ...SEQ.slice(1)], [2, T], "i32", be);
  const targets = tensor([...SEQ.slice(1), -100, ...SEQ.slice(3), -100], [2, T], "i32", be);
  const keyMask = tensor([...new Array<number>(T).fill(1), ...new Array<number>(T - 1).fill(1), 0], [2, T], "i32", be);
  const losses: number[] = [];
  const live: number[] = [];
  let grads: Float64Array[] = [];
  for (let s = 0; s < steps; s++) {
    zeroGrad(model.parameters());
    losses.push(
      tidy(() => {
        const loss = crossEntropy(model.forward(inputs, { keyMask }), targets);
        backward(loss);
        return loss.item();
      }),
    );
    if (s === 0) grads = model.parameters().map((p) => Float64Array.from(p.grad!.toArray()));
    clipGradNorm(model.parameters(), 1.0);
    opt.step();
    live.push(be.liveBuffers());
  }
  const params = model.parameters().map((p) => Float64Array.from(p.toArray()));
  inputs.dispose();
  targets.dispose();
  keyMask.dispose();
  opt.dispose();
  model.dispose();
  return { losses, grads, params, live };
}

test("a 2-layer decoder trains the same on primitives only as on the fused reference (float64)", () => {
  const before = full.liveBuffers();
  const want = trainToy(full, "f64", 3);
  const got = trainToy(prims, "f64", 3);
  const errs = {
    loss: maxRelErr(want.losses, got.losses),
    grads: Math.max(...want.grads.map((w, i) => maxRelErr(w, got.grads[i]))),
    params: Math.max(...want.params.map((w, i) => maxRelErr(w, got.params[i]))),
  };
  console.log(`toy decoder: losses ${want.losses.map((l) => l.toFixed(6))}; max rel err ${JSON.stringify(errs)}`);
  assert.ok(want.losses[2] < want.losses[0], `the loss should fall: ${want.losses}`);
  assert.ok(want.grads.length === got.grads.length && want.grads.length > 0, "every parameter has a gradient");
  for (const [what, err] of Object.entries(errs)) assert.ok(err <= TOL, `${what} differ by ${err} > ${TOL}`);
  assert.ok(
    got.live.every((n) => n === got.live[0]),
    `live buffers changed across composed steps: ${got.live}`,
  );
  assert.equal(full.liveBuffers(), before, "disposing the model and optimizer frees every buffer");
});

test("native: its primitives composed match its fused kernels to float32 accuracy", (t) => {
  const nat = nativeBackend();
  if (!nat) return t.skip("native backend not built");
  const before = nat.liveBuffers();
  for (const [name, f, inputs] of cases()) sameOnBoth(`native ${name}`, f, inputs, nat, "f32", 1e-4);
  // One step: Adam's updates of near-zero gradients would magnify float32 rounding differences in later steps.
  const want = trainToy(nat, "f32", 1);
  const got = trainToy(primitivesOnly(nat), "f32", 1);
  const err = Math.max(maxRelErr(want.losses, got.losses), ...want.grads.map((w, i) => maxRelErr(w, got.grads[i])));
  console.log(`native toy decoder: max rel err of loss and gradients ${err.toExponential(2)}`);
  assert.ok(err <= 1e-4, `toy decoder on native: composed differs from fused by ${err}`);
  assert.equal(nat.liveBuffers(), before, "leaked native buffers");
});
