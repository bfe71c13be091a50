// Finite-difference gradient checks (float64, central differences) for every primitive and the composites,
// on the reference backend, with odd shapes and broadcasting.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { UNARY_OPS, type UnaryOp } from "../backend/backend.js";
import { Rng } from "../core/rng.js";
import { gradCheck } from "./gradcheck.js";
import * as op from "./ops.js";
import { crossEntropy, linear, mean, softmax } from "./nn.js";
import { type Tensor, tensor, tidy } from "./tensor.js";
import { backward } from "./autograd.js";

const be = referenceBackend();
const TOL = 1e-6; // max |analytic - numeric| / max(1, |numeric|) for h = 1e-6 in float64

function rand(shape: number[], seed: number, lo = -1, hi = 1, grad = true): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const t = tensor(
    Array.from({ length: n }, () => rng.uniform(lo, hi)),
    shape,
    "f64",
    be,
  );
  t.requiresGrad = grad;
  return t;
}

function ints(data: number[], shape: number[] = [data.length]): Tensor {
  return tensor(data, shape, "i32", be);
}

function check(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], tol = TOL): void {
  const res = gradCheck(be, f, inputs);
  assert.ok(res.length > 0, `${name}: no input was checked`);
  for (const r of res) {
    assert.ok(r.maxRelErr <= tol, `${name} input ${r.input}: max rel err ${r.maxRelErr.toExponential(2)} > ${tol}`);
  }
  for (const t of inputs) {
    t.grad?.dispose();
    t.dispose();
  }
}

test("matmul: plain, transposed operands, batched, broadcast batch, folded leading dims", () => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ["(3,17)@(17,5)", [3, 17], [17, 5], false, false],
    ["(17,3)^T@(17,5)", [17, 3], [17, 5], true, false],
    ["(3,17)@(5,17)^T", [3, 17], [5, 17], false, true],
    ["(17,1)^T@(33,17)^T", [17, 1], [33, 17], true, true],
    ["(2,3,4)@(2,4,5)", [2, 3, 4], [2, 4, 5], false, false],
    ["(2,3,4)@(5,4)^T folded", [2, 3, 4], [5, 4], false, true],
    ["(3,4)@(2,4,5) broadcast a", [3, 4], [2, 4, 5], false, false],
    ["(2,4,3)^T@(4,5) broadcast b", [2, 4, 3], [4, 5], true, false],
    ["(2,1,3,4)@(2,1,5,4)^T", [2, 1, 3, 4], [2, 1, 5, 4], false, true],
  ];
  cases.forEach(([name, sa, sb, ta, tb], i) => {
    check(`matmul ${name}`, (a, b) => op.matmul(a, b, ta, tb), [rand(sa, 10 + i), rand(sb, 20 + i)]);
  });
});

test("binary ops with broadcasting", () => {
  const shapes: [number[], number[]][] = [
    [[257], [257]],
    [
      [3, 1, 5],
      [4, 1],
    ],
    [[1], [3, 17]],
    [[33, 3], [3]],
  ];
  for (const bop of ["add", "sub", "mul", "div", "maximum", "minimum"] as const) {
    shapes.forEach(([sa, sb], i) => {
      const lo = bop === "div" ? 0.5 : -1; // keep divisors away from zero
      check(`${bop} ${sa}|${sb}`, (a, b) => op.binary(bop, a, b), [rand(sa, 30 + i), rand(sb, 40 + i, lo, 2)]);
    });
  }
});

test("unary ops", () => {
  const positive = new Set<UnaryOp>(["log", "sqrt", "rsqrt", "powScalar"]);
  for (const u of UNARY_OPS) {
    const alpha = u === "powScalar" ? 2.5 : u === "scale" ? -1.7 : u === "addScalar" ? 0.3 : 0;
    const [lo, hi] = positive.has(u) ? [0.2, 3] : [-4, 4];
    check(`unary ${u}`, (x) => op.unary(u, x, alpha), [rand([257], 50, lo, hi)]);
    check(`unary ${u} (1)`, (x) => op.unary(u, x, alpha), [rand([1], 51, lo, hi)]);
  }
});

test("sum and max over each axis", () => {
  for (const axis of [0, 1, 2, -1]) {
    check(`sum axis ${axis}`, (x) => op.sum(x, axis), [rand([3, 17, 2], 60)]);
    check(`sum keepDims axis ${axis}`, (x) => op.sum(x, axis, true), [rand([3, 17, 2], 61)]);
    check(`max axis ${axis}`, (x) => op.max(x, axis), [rand([3, 17, 2], 62)]);
  }
  check("sumAll", (x) => op.sumAll(x), [rand([33, 3], 63)]);
  check("max over 257", (x) => op.max(x, 0), [rand([257], 64)]);
});

test("reshape, permute, transpose, slice, concat", () => {
  check("reshape", (x) => op.reshape(x, [17, -1]), [rand([3, 17, 2], 70)]);
  check("permute", (x) => op.permute(x, [2, 0, 1]), [rand([3, 17, 2], 71)]);
  check("permute 4d", (x) => op.permute(x, [0, 2, 1, 3]), [rand([2, 3, 5, 1], 72)]);
  check("transpose", (x) => op.transpose(x), [rand([33, 3], 73)]);
  check("slice mid axis", (x) => op.slice(x, 1, 4, 9), [rand([3, 17, 2], 74)]);
  check("slice last axis", (x) => op.slice(x, -1, 1, 1), [rand([3, 3], 75)]);
  check("concat axis 1", (a, b, c) => op.concat([a, b, c], 1), [
    rand([2, 3, 2], 76),
    rand([2, 1, 2], 77),
    rand([2, 17, 2], 78),
  ]);
  check("concat axis 0", (a, b) => op.concat([a, b], 0), [rand([1, 3], 79), rand([3, 3], 80)]);
});

test("gather (embedding) with repeated ids", () => {
  const ids = ints([0, 3, 3, 16, 5, 0, 1, 16, 2, 3], [2, 5]);
  check("gather", (t) => op.gather(t, ids), [rand([17, 3], 90)]);
  ids.dispose();
});

test("rmsnorm", () => {
  check("rmsnorm (3,17)", (x, w) => op.rmsnorm(x, w, 1e-5), [rand([3, 17], 100), rand([17], 101, 0.5, 1.5)]);
  check("rmsnorm (2,1,33)", (x, w) => op.rmsnorm(x, w, 1e-6), [rand([2, 1, 33], 102), rand([33], 103)]);
});

test("rope", () => {
  const [b, t, h, d] = [2, 3, 2, 6];
  const rng = new Rng(110);
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < 8; p++) {
    for (let i = 0; i < d / 2; i++) {
      const angle = p * 10000 ** (-(2 * i) / d) + rng.uniform(0, 0.01);
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
  }
  const c = tensor(cos, [8, d / 2], "f64", be);
  const s = tensor(sin, [8, d / 2], "f64", be);
  const pos = ints([0, 1, 2, 5, 6, 7], [b, t]);
  check("rope", (x) => op.rope(x, c, s, pos), [rand([b, t, h, d], 111)]);
  c.dispose();
  s.dispose();
  pos.dispose();
});

test("attention: causal, prefix, grouped-query, padding mask, non-causal", () => {
  const [b, tq, tk, h, hkv, d] = [2, 3, 5, 4, 2, 4];
  check("attention causal prefix gqa", (q, k, v) => op.attention(q, k, v), [
    rand([b, tq, h, d], 120),
    rand([b, tk, hkv, d], 121),
    rand([b, tk, hkv, d], 122),
  ]);
  const mask = ints([0, 1, 1, 1, 1, 1, 1, 0, 1, 1], [b, tk]);
  check("attention masked", (q, k, v) => op.attention(q, k, v, { keyMask: mask }), [
    rand([b, tq, h, d], 123),
    rand([b, tk, hkv, d], 124),
    rand([b, tk, hkv, d], 125),
  ]);
  check("attention non-causal, scale 0.7", (q, k, v) => op.attention(q, k, v, { causal: false, scale: 0.7 }), [
    rand([1, 3, 1, 3], 126),
    rand([1, 3, 1, 3], 127),
    rand([1, 3, 1, 3], 128),
  ]);
  check("attention Tq = Tk = 17", (q, k, v) => op.attention(q, k, v), [
    rand([1, 17, 2, 2], 129),
    rand([1, 17, 1, 2], 130),
    rand([1, 17, 1, 2], 131),
  ]);
  mask.dispose();
});

test("attention: a query that sees no key gives zeros and no NaN", () => {
  const mask = ints([0, 0, 1], [1, 3]);
  const q = rand([1, 3, 1, 2], 140, -1, 1, false);
  const k = rand([1, 3, 1, 2], 141, -1, 1, false);
  const out = op.attention(q, k, k, { keyMask: mask }).toArray();
  assert.deepEqual(Array.from(out.slice(0, 4)), [0, 0, 0, 0]); // queries 0 and 1 see only padding
  assert.ok(Array.from(out).every(Number.isFinite));
});

test("log-softmax and token log-probs (with an ignored target)", () => {
  check("logSoftmax", (x) => op.logSoftmax(x), [rand([3, 17], 150, -3, 3)]);
  check("logSoftmax (1,257)", (x) => op.logSoftmax(x), [rand([1, 257], 151, -3, 3)]);
  const targets = ints([4, -100, 16]);
  check("tokenLogprobs", (x) => op.tokenLogprobs(x, targets), [rand([3, 17], 152, -3, 3)]);
  targets.dispose();
});

test("cast f64 -> f64 passes gradients through", () => {
  check("cast", (x) => op.cast(x, "f64"), [rand([17], 160)]);
});

test("composites: mean, softmax, linear, cross-entropy", () => {
  check("mean", (x) => mean(x, 1), [rand([3, 17], 170)]);
  check("softmax", (x) => softmax(x), [rand([3, 5], 171)]);
  check("linear", (x, w, b) => linear(x, w, b), [rand([2, 3, 4], 172), rand([5, 4], 173), rand([5], 174)]);
  const targets = ints([1, 2, -100, 0, 4, 3], [2, 3]);
  check("crossEntropy", (x) => crossEntropy(x, targets), [rand([2, 3, 5], 175, -2, 2)]);
  targets.dispose();
});

test("gradients accumulate over two uses of one input", () => {
  check("x*x + x", (x) => op.add(op.mul(x, x), x), [rand([17], 180)]);
  check("shared through add", (x) => op.mul(op.add(x, x), op.add(x, x)), [rand([3], 181)]);
});

test("a tidy scope leaves no live buffers; shape errors name the shapes", () => {
  const before = be.liveBuffers();
  const x = rand([3, 4], 190);
  const w = rand([5, 4], 191);
  tidy(() => backward(op.sumAll(op.silu(linear(x, w)))));
  assert.equal(be.liveBuffers(), before + 4, "only x, w and their two grads stay");
  assert.throws(() => op.matmul(x, w), /matmul: inner dims differ \(4 vs 5\) \[a=\(3, 4\) b=\(5, 4\)\]/);
  x.grad?.dispose();
  w.grad?.dispose();
  x.dispose();
  w.dispose();
  assert.equal(be.liveBuffers(), before);
});
