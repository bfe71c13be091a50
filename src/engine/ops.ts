// The primitive ops: each forward, then its vector-Jacobian product, with the math in one comment line.
// Composite ops (mean, softmax, cross-entropy, linear) live in nn.ts and are built from these. The transformer
// kernels at the end are primitives where the backend fuses them, and composites of the others where it does not.
//
// Legend: B batch, T time, H heads, Hkv key/value heads, D head size, C channels, V vocab, N rows, M/K/N matmul.

import type { BinaryOp, UnaryOp } from "../backend/backend.js";
import { fused, hasFused } from "../backend/backend.js";
import { DTypeError, IndexError, ShapeError } from "../core/errors.js";
import type { Node, Primitive, PrimitiveParams, Vjp } from "./autograd.js";
import { type Tensor, empty, full, isGradEnabled, noGrad, numel, tensor, tidy, zeros } from "./tensor.js";

// --- recording ---

function record<P extends Primitive>(
  prim: P,
  inputs: Tensor[],
  params: PrimitiveParams[P],
  out: Tensor,
  saved: Tensor[] = [],
): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { prim, inputs, params, saved } as Node;
  } else {
    for (const s of saved) s.dispose();
  }
  return out;
}

function sameBackend(op: string, ts: Tensor[]): void {
  const b = ts[0].backend;
  for (const t of ts) {
    if (t.backend !== b)
      throw new DTypeError(`${op}: tensors live on different backends (${b.name}, ${t.backend.name})`);
  }
}

function floatOnly(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== "f32" && t.dtype !== "f64") throw new DTypeError(`${op}: needs f32 or f64, got ${t.describe()}`);
  }
  for (const t of ts) {
    if (t.dtype !== ts[0].dtype) throw new DTypeError(`${op}: mixed dtypes ${ts.map((x) => x.dtype).join(", ")}`);
  }
  sameBackend(op, ts);
}

function intOnly(op: string, t: Tensor): void {
  if (t.dtype !== "i32") throw new DTypeError(`${op}: indices must be i32, got ${t.describe()}`);
}

export function normAxis(axis: number, rank: number, op = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new ShapeError(op, { rank: [rank] }, `axis ${axis} out of range`);
  return a;
}

/** (outer, n, inner) around an axis of a shape. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis], numel(shape.slice(axis + 1))];
}

/** Adds g into acc and returns the tensor that now holds the sum: acc itself, unless acc shares its buffer. */
export function accumulate(acc: Tensor, g: Tensor): Tensor {
  if (acc.size !== g.size) throw new ShapeError("accumulate", { acc: acc.shape, g: g.shape }, "sizes differ");
  if (acc.shared) {
    const sum = add(acc, g);
    acc.dispose();
    return sum;
  }
  acc.backend.copyRange(g.buf, 1, 0, acc.buf, 1, 0, 1, 1, acc.size, true);
  return acc;
}

// --- matmul ---

/**
 * a @ b over the last two dims, with either operand read transposed (no transpose is materialised).
 * a (..., M, K) or (..., K, M) with transA; b (..., K, N) or (..., N, K) with transB. Batch dims are equal, or one
 * side has none (it is broadcast). A 2-D b folds a's leading dims into M: x (B, T, C) @ W^T (N, C) is one GEMM.
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  floatOnly("matmul", a, b);
  if (a.rank < 2 || b.rank < 2) throw new ShapeError("matmul", { a: a.shape, b: b.shape }, "operands need rank >= 2");
  const [m, ka] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [kb, n] = transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (ka !== kb) throw new ShapeError("matmul", { a: a.shape, b: b.shape }, `inner dims differ (${ka} vs ${kb})`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  if (b.rank === 2 && !transA) {
    const rows = numel(a.shape.slice(0, -1));
    const out = mm3(reshape(a, [1, rows, ka]), reshape(b, [1, ...b.shape]), false, transB);
    return reshape(out, [...a.shape.slice(0, -1), n]);
  }
  const nA = numel(batchA);
  const nB = numel(batchB);
  let outBatch: readonly number[];
  if (batchA.length === batchB.length && batchA.every((s, i) => s === batchB[i])) outBatch = batchA;
  else if (nA === 1) outBatch = batchB;
  else if (nB === 1) outBatch = batchA;
  else throw new ShapeError("matmul", { a: a.shape, b: b.shape }, "batch dims must match or one side be broadcast");
  const a3 = reshape(a, [nA, a.shape[a.rank - 2], a.shape[a.rank - 1]]);
  const b3 = reshape(b, [nB, b.shape[b.rank - 2], b.shape[b.rank - 1]]);
  return reshape(mm3(a3, b3, transA, transB), [...outBatch, m, n]);
}

/** The matmul primitive: rank-3 operands whose batch sizes are equal or 1. */
function mm3(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const [nA, ar, ac] = a.shape;
  const [nB, br, bc] = b.shape;
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const n = transB ? br : bc;
  const batch = Math.max(nA, nB);
  const out = empty([batch, m, n], a.dtype, a.backend);
  a.backend.matmul(a.buf, b.buf, out.buf, {
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: nA === 1 ? 0 : m * k,
    strideB: nB === 1 ? 0 : k * n,
    accumulate: false,
  });
  return record("matmul", [a, b], { transA, transB }, out);
}

// C = op(A) op(B):  d op(A) = dC op(B)^T,  d op(B) = op(A)^T dC  (then summed over a broadcast batch)
const vjpMatmul: Vjp<"matmul"> = (g, { inputs: [a, b], params: { transA, transB } }) => {
  const da = a.requiresGrad ? (transA ? mm3(b, g, transB, true) : mm3(g, b, false, !transB)) : null;
  const db = b.requiresGrad ? (transB ? mm3(g, a, true, transA) : mm3(a, g, !transA, false)) : null;
  return [da && sumBatchTo(da, a.shape), db && sumBatchTo(db, b.shape)];
};

function sumBatchTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape[0] === shape[0]) return g;
  const s = sum(g, 0, true);
  g.dispose();
  return s;
}

// --- elementwise ---

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new ShapeError("broadcast", { a, b }, `dim ${i}: ${x} vs ${y}`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

function padTo(shape: readonly number[], rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  floatOnly(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  const out = empty(shape, a.dtype, a.backend);
  a.backend.binary(op, a.buf, padTo(a.shape, shape.length), b.buf, padTo(b.shape, shape.length), out.buf, shape);
  return record("binary", [a, b], { op }, out);
}

export const add = (a: Tensor, b: Tensor) => binary("add", a, b);
export const sub = (a: Tensor, b: Tensor) => binary("sub", a, b);
export const mul = (a: Tensor, b: Tensor) => binary("mul", a, b);
export const div = (a: Tensor, b: Tensor) => binary("div", a, b);
export const maximum = (a: Tensor, b: Tensor) => binary("maximum", a, b);
export const minimum = (a: Tensor, b: Tensor) => binary("minimum", a, b);

/** Sums g (broadcast shape) down to `shape`: the backward of broadcasting. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((s, i) => s === shape[i])) return g;
  const out = empty(shape, g.dtype, g.backend);
  g.backend.sumTo(g.buf, g.shape as number[], out.buf, padTo(shape, g.rank));
  return out;
}

const vjpBinary: Vjp<"binary"> = (g, { inputs: [a, b], params: { op } }) => {
  const ga = (t: Tensor) => (a.requiresGrad ? sumTo(t, a.shape) : null);
  const gb = (t: Tensor) => (b.requiresGrad ? sumTo(t, b.shape) : null);
  switch (op) {
    case "add": // d(a+b) = (g, g)
      return [ga(g), gb(g)];
    case "sub": // d(a-b) = (g, -g)
      return [ga(g), b.requiresGrad ? sumTo(unary("neg", g), b.shape) : null];
    case "mul": // d(ab) = (g b, g a)
      return [a.requiresGrad ? ga(mul(g, b)) : null, b.requiresGrad ? gb(mul(g, a)) : null];
    case "div": // d(a/b) = (g / b, -g a / b^2)
      return [
        a.requiresGrad ? ga(div(g, b)) : null,
        b.requiresGrad ? gb(unary("neg", div(mul(g, a), mul(b, b)))) : null,
      ];
    case "maximum": // d max(a,b) = (g [a > b], g [a <= b])
    case "minimum": {
      // d min(a,b) = (g [a < b], g [a >= b])
      const diff = op === "maximum" ? sub(a, b) : sub(b, a);
      const toA = unaryGradOf("relu", diff, broadcastTo(g, diff.shape));
      return [ga(toA), b.requiresGrad ? gb(sub(broadcastTo(g, diff.shape), toA)) : null];
    }
    default:
      return op satisfies never;
  }
};

/** x broadcast to `shape` (a copy). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const full = padTo(x.shape, shape.length);
  if (full.every((s, i) => s === shape[i])) return x;
  const z = zeros(
    shape.map((s, i) => (full[i] === s ? 1 : s)),
    x.dtype,
    x.backend,
  );
  return add(x, z);
}

export function unary(op: UnaryOp, x: Tensor, alpha = 0): Tensor {
  floatOnly(op, x);
  const out = empty(x.shape, x.dtype, x.backend);
  x.backend.unary(op, x.buf, out.buf, alpha);
  return record("unary", [x], { op, alpha }, out);
}

/** g * op'(x), computed by the backend from x (not recorded: used inside backward passes). */
function unaryGradOf(op: UnaryOp, x: Tensor, g: Tensor, alpha = 0): Tensor {
  const out = empty(x.shape, x.dtype, x.backend);
  x.backend.unaryGrad(op, x.buf, g.buf, out.buf, alpha);
  return out;
}

// d op(x) = g op'(x); each derivative is written beside its forward in backend/reference.ts
const vjpUnary: Vjp<"unary"> = (g, { inputs: [x], params: { op, alpha } }) => [unaryGradOf(op, x, g, alpha)];

export const neg = (x: Tensor) => unary("neg", x);
export const exp = (x: Tensor) => unary("exp", x);
export const log = (x: Tensor) => unary("log", x);
export const sqrt = (x: Tensor) => unary("sqrt", x);
export const rsqrt = (x: Tensor) => unary("rsqrt", x);
export const silu = (x: Tensor) => unary("silu", x);
export const sigmoid = (x: Tensor) => unary("sigmoid", x);
export const logsigmoid = (x: Tensor) => unary("logsigmoid", x);
export const relu = (x: Tensor) => unary("relu", x);
export const tanh = (x: Tensor) => unary("tanh", x);
export const square = (x: Tensor) => unary("square", x);
export const abs = (x: Tensor) => unary("abs", x);
export const scale = (x: Tensor, s: number) => unary("scale", x, s);
export const addScalar = (x: Tensor, s: number) => unary("addScalar", x, s);
export const pow = (x: Tensor, p: number) => unary("powScalar", x, p);

// --- reductions ---

/** Sum over one axis; keepDims leaves it as size 1. */
export function sum(x: Tensor, axis: number, keepDims = false): Tensor {
  floatOnly("sum", x);
  const ax = normAxis(axis, x.rank, "sum");
  const [outer, n, inner] = around(x.shape, ax);
  const out = empty(
    x.shape.map((s, i) => (i === ax ? 1 : s)),
    x.dtype,
    x.backend,
  );
  x.backend.reduce("sum", x.buf, outer, n, inner, out.buf);
  const r = record("sum", [x], { axis: ax }, out);
  return keepDims ? r : squeezeAxis(r, ax);
}

// y = sum_i x_i:  dx_i = g
const vjpSum: Vjp<"sum"> = (g, { inputs: [x] }) => [broadcastTo(g, x.shape)];

/** Max over one axis (the gradient goes to the first maximum). */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  floatOnly("max", x);
  const ax = normAxis(axis, x.rank, "max");
  const [outer, n, inner] = around(x.shape, ax);
  const out = empty(
    x.shape.map((s, i) => (i === ax ? 1 : s)),
    x.dtype,
    x.backend,
  );
  x.backend.reduce("max", x.buf, outer, n, inner, out.buf);
  const r = record("max", [x], { axis: ax }, out);
  return keepDims ? r : squeezeAxis(r, ax);
}

// y = max_i x_i:  dx_i = g [i = first argmax]
const vjpMax: Vjp<"max"> = (g, { inputs: [x], params: { axis } }) => {
  const [outer, n, inner] = around(x.shape, axis);
  const dx = empty(x.shape, x.dtype, x.backend);
  x.backend.reduceMaxGrad(x.buf, g.buf, outer, n, inner, dx.buf);
  return [dx];
};

function squeezeAxis(x: Tensor, axis: number): Tensor {
  return reshape(
    x,
    x.shape.filter((_, i) => i !== axis),
  );
}

/** Sum of every element, as a scalar tensor of shape []. */
export function sumAll(x: Tensor): Tensor {
  return sum(reshape(x, [x.size]), 0);
}

// --- shape ---

/** Same data, another shape (no copy); one dim may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const inferred = s.indexOf(-1);
  if (inferred >= 0) s[inferred] = x.size / numel(s.filter((_, i) => i !== inferred));
  if (numel(s) !== x.size) throw new ShapeError("reshape", { x: x.shape, to: shape }, "sizes differ");
  return record("reshape", [x], {}, x.view(s));
}

// reshape:  dx = reshape(g, x.shape)
const vjpReshape: Vjp<"reshape"> = (g, { inputs: [x] }) => [g.view(x.shape)];

/** Dims reordered: out.shape[i] = x.shape[perm[i]] (a copy). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    throw new ShapeError("permute", { x: x.shape, perm }, "perm must reorder every axis once");
  }
  const out = empty(
    perm.map((p) => x.shape[p]),
    x.dtype,
    x.backend,
  );
  x.backend.permute(x.buf, x.shape as number[], [...perm], out.buf);
  return record("permute", [x], { perm: [...perm] }, out);
}

// permute:  dx = permute(g, inverse(perm))
const vjpPermute: Vjp<"permute"> = (g, { params: { perm } }) => {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return [permute(g, inv)];
};

/** Swaps two axes (a copy). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = normAxis(a, x.rank);
  const j = normAxis(b, x.rank);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[..., start:start+len, ...] along one axis (a copy). */
export function slice(x: Tensor, axis: number, start: number, len: number): Tensor {
  const ax = normAxis(axis, x.rank, "slice");
  if (start < 0 || len < 0 || start + len > x.shape[ax]) {
    throw new ShapeError("slice", { x: x.shape }, `range [${start}, ${start + len}) outside axis ${ax}`);
  }
  const [outer, n, inner] = around(x.shape, ax);
  const out = empty(
    x.shape.map((s, i) => (i === ax ? len : s)),
    x.dtype,
    x.backend,
  );
  x.backend.copyRange(x.buf, n, start, out.buf, len, 0, outer, len, inner, false);
  return record("slice", [x], { axis: ax, start, len }, out);
}

// slice:  dx = g placed at [start, start+len), zero elsewhere
const vjpSlice: Vjp<"slice"> = (g, { inputs: [x], params: { axis, start, len } }) => {
  const [outer, n, inner] = around(x.shape, axis);
  const dx = zeros(x.shape, x.dtype, x.backend);
  x.backend.copyRange(g.buf, len, 0, dx.buf, n, start, outer, len, inner, false);
  return [dx];
};

/** Tensors joined along one axis. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError("concat", {}, "needs at least one tensor");
  sameBackend("concat", xs);
  const ax = normAxis(axis, xs[0].rank, "concat");
  for (const t of xs) {
    if (t.rank !== xs[0].rank || t.dtype !== xs[0].dtype || t.shape.some((s, i) => i !== ax && s !== xs[0].shape[i])) {
      throw new ShapeError(
        "concat",
        Object.fromEntries(xs.map((t, i) => [`x${i}`, t.shape])),
        `shapes differ off axis ${ax}`,
      );
    }
  }
  const total = xs.reduce((p, t) => p + t.shape[ax], 0);
  const out = empty(
    xs[0].shape.map((s, i) => (i === ax ? total : s)),
    xs[0].dtype,
    xs[0].backend,
  );
  let at = 0;
  for (const t of xs) {
    const [outer, n, inner] = around(t.shape, ax);
    t.backend.copyRange(t.buf, n, 0, out.buf, total, at, outer, n, inner, false);
    at += n;
  }
  return record("concat", xs, { axis: ax }, out);
}

// concat:  dx_i = the slice of g where x_i went
const vjpConcat: Vjp<"concat"> = (g, { inputs, params: { axis } }) => {
  let at = 0;
  return inputs.map((t) => {
    const s = at;
    at += t.shape[axis];
    return t.requiresGrad ? slice(g, axis, s, t.shape[axis]) : null;
  });
};

// --- embedding ---

/** Rows of table (V, C) picked by ids (any shape, i32): out (...ids, C). */
export function gather(table: Tensor, ids: Tensor): Tensor {
  floatOnly("gather", table);
  intOnly("gather", ids);
  if (table.rank !== 2) throw new ShapeError("gather", { table: table.shape }, "table must be (V, C)");
  const [v, c] = table.shape;
  const out = empty([...ids.shape, c], table.dtype, table.backend);
  table.backend.gather(table.buf, ids.buf, out.buf, ids.size, v, c);
  return record("gather", [table, ids], {}, out);
}

// out_i = table[ids_i]:  dtable[v] = sum over i with ids_i = v of g_i
const vjpGather: Vjp<"gather"> = (g, { inputs: [table, ids] }) => {
  const [v, c] = table.shape;
  const dt = zeros(table.shape, table.dtype, table.backend);
  table.backend.scatterAdd(g.buf, ids.buf, dt.buf, ids.size, v, c);
  return [dt, null];
};

// --- transformer kernels ---
//
// Each runs the backend's fused kernel when it has one (backend.ts: hasFused), and otherwise the composed version
// beside it: the same math in the primitive ops above, whose gradients then give its backward. The composed
// version is the definition each fused kernel is tested against (fused.test.ts).

/**
 * Runs a composed fallback. Without a gradient to record its intermediates are freed at once; with one, autograd
 * holds them until the enclosing tidy scope ends, as for the composites of nn.ts.
 */
function composed(inputs: Tensor[], fn: () => Tensor): Tensor {
  return isGradEnabled() && inputs.some((t) => t.requiresGrad) ? fn() : tidy(fn);
}

/** RMSNorm over the last axis: x (..., C), w (C). */
export function rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor {
  floatOnly("rmsnorm", x, w);
  const c = x.shape[x.rank - 1];
  if (w.rank !== 1 || w.shape[0] !== c) throw new ShapeError("rmsnorm", { x: x.shape, w: w.shape }, "w must be (C)");
  const be = x.backend;
  if (!hasFused(be, "rmsnorm")) return composed([x, w], () => rmsnormComposed(x, w, eps));
  const n = x.size / c;
  const out = empty(x.shape, x.dtype, be);
  const rstd = empty([n], x.dtype, be);
  be.rmsnorm(x.buf, w.buf, out.buf, rstd.buf, n, c, eps);
  return record("rmsnorm", [x, w], { eps }, out, [rstd]);
}

// y = x rsqrt(mean(x^2) + eps) w
function rmsnormComposed(x: Tensor, w: Tensor, eps: number): Tensor {
  const c = x.shape[x.rank - 1];
  const rstd = rsqrt(addScalar(scale(sum(square(x), -1, true), 1 / c), eps)); // (..., 1)
  return mul(mul(x, rstd), w); // (..., C)
}

// y = x r w, r = (mean x^2 + eps)^-1/2:  dx = r (g w - x r^2 mean(g w x)),  dw = sum_rows g x r
const vjpRmsnorm: Vjp<"rmsnorm"> = (g, { inputs: [x, w], saved: [rstd] }) => {
  const c = x.shape[x.rank - 1];
  const dx = empty(x.shape, x.dtype, x.backend);
  const dw = empty(w.shape, w.dtype, w.backend);
  fused(x.backend, "rmsnorm").rmsnormGrad(x.buf, w.buf, rstd.buf, g.buf, dx.buf, dw.buf, x.size / c, c);
  return [dx, dw];
};

/** Rotary position embedding (rotate_half layout). x (B, T, H, D); cos, sin (P, D/2); pos (B, T) i32. */
export function rope(x: Tensor, cos: Tensor, sin: Tensor, pos: Tensor): Tensor {
  floatOnly("rope", x, cos, sin);
  intOnly("rope", pos);
  const [b, t, h, d] = x.shape;
  if (x.rank !== 4 || d % 2 !== 0 || cos.shape[1] !== d / 2 || sin.shape[1] !== d / 2 || pos.size !== b * t) {
    throw new ShapeError(
      "rope",
      { x: x.shape, cos: cos.shape, sin: sin.shape, pos: pos.shape },
      "need x (B, T, H, D) with even D, cos/sin (P, D/2), pos (B, T)",
    );
  }
  const be = x.backend;
  if (!hasFused(be, "rope")) return composed([x, cos, sin], () => ropeComposed(x, cos, sin, pos));
  const out = empty(x.shape, x.dtype, be);
  be.rope(x.buf, cos.buf, sin.buf, pos.buf, out.buf, b, t, h, d, false);
  return record("rope", [x, cos, sin, pos], {}, out);
}

// (x1, x2) = the halves of D, c and s = cos and sin at each token's position:  y = (x1 c - x2 s, x2 c + x1 s)
function ropeComposed(x: Tensor, cos: Tensor, sin: Tensor, pos: Tensor): Tensor {
  const [b, t, , d] = x.shape;
  const half = d / 2;
  const c = reshape(gather(cos, pos), [b, t, 1, half]); // (B, T, 1, D/2)
  const s = reshape(gather(sin, pos), [b, t, 1, half]); // (B, T, 1, D/2)
  const x1 = slice(x, 3, 0, half); // (B, T, H, D/2)
  const x2 = slice(x, 3, half, half); // (B, T, H, D/2)
  return concat([sub(mul(x1, c), mul(x2, s)), add(mul(x2, c), mul(x1, s))], 3); // (B, T, H, D)
}

// y = R(p) x, a rotation:  dx = R(p)^T g = R(-p) g
const vjpRope: Vjp<"rope"> = (g, { inputs: [x, cos, sin, pos] }) => {
  const [b, t, h, d] = x.shape;
  const dx = empty(x.shape, x.dtype, x.backend);
  fused(x.backend, "rope").rope(g.buf, cos.buf, sin.buf, pos.buf, dx.buf, b, t, h, d, true);
  return [dx, null, null, null];
};

export interface AttentionOptions {
  causal?: boolean; // default true
  scale?: number; // default 1/sqrt(D)
  keyMask?: Tensor | null; // (B, Tk) i32, 1 = attend, 0 = padding
}

/**
 * Softmax attention. q (B, Tq, H, D); k, v (B, Tk, Hkv, D), Tk >= Tq (a KV prefix of Tk - Tq positions);
 * returns (B, Tq, H, D). Causal by default; grouped-query when Hkv < H. A query that sees no key gets zeros.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  floatOnly("attention", q, k, v);
  const [b, tq, h, d] = q.shape;
  const [bk, tk, hkv, dk] = k.shape;
  const mask = opts.keyMask ?? null;
  const bad =
    q.rank !== 4 ||
    k.rank !== 4 ||
    v.shape.join() !== k.shape.join() ||
    bk !== b ||
    dk !== d ||
    h % hkv !== 0 ||
    tk < tq ||
    (mask !== null && mask.size !== b * tk);
  if (bad) {
    throw new ShapeError(
      "attention",
      { q: q.shape, k: k.shape, v: v.shape, ...(mask ? { mask: mask.shape } : {}) },
      "need q (B, Tq, H, D), k = v (B, Tk, Hkv, D) with Tk >= Tq, H % Hkv = 0, mask (B, Tk)",
    );
  }
  if (mask) intOnly("attention mask", mask);
  const params = { scale: opts.scale ?? 1 / Math.sqrt(d), causal: opts.causal ?? true };
  const be = q.backend;
  if (!hasFused(be, "attention")) return composed([q, k, v], () => attentionComposed(q, k, v, mask, params));
  const out = empty(q.shape, q.dtype, be);
  const lse = empty([b, h, tq], q.dtype, be);
  be.attention(q.buf, k.buf, v.buf, mask?.buf ?? null, out.buf, lse.buf, { b, tq, tk, h, hkv, d, ...params });
  return record("attention", mask ? [q, k, v, mask] : [q, k, v], params, out, [lse]);
}

// O = softmax(s Q K^T + bias) V, bias = 0 where a query may see a key, -inf elsewhere (causal order, padding).
// Query heads gG .. gG + G - 1 share key/value head g (G = H / Hkv), so each (b, g) is one (G Tq, Tk) product.
function attentionComposed(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  { scale: s, causal }: PrimitiveParams["attention"],
): Tensor {
  const [b, tq, h, d] = q.shape;
  const [, tk, hkv] = k.shape;
  const group = h / hkv;
  const qg = reshape(permute(q, [0, 2, 1, 3]), [b, hkv, group * tq, d]); // (B, Hkv, G Tq, D)
  const kg = permute(k, [0, 2, 1, 3]); // (B, Hkv, Tk, D)
  const vg = permute(v, [0, 2, 1, 3]); // (B, Hkv, Tk, D)
  let scores = reshape(scale(matmul(qg, kg, false, true), s), [b, hkv, group, tq, tk]); // (B, Hkv, G, Tq, Tk)
  if (causal) scores = add(scores, causalBias(tq, tk, q)); // + (Tq, Tk)
  if (mask) {
    const padding = reshape(log(cast(mask, q.dtype)), [b, 1, 1, 1, tk]); // (B, 1, 1, 1, Tk): log 1 = 0, log 0 = -inf
    scores = add(scores, padding);
  }
  // softmax is shift-invariant: subtract each row's max as a constant, floored so that a row with no key stays finite
  const floor = full([1], q.dtype === "f64" ? -Number.MAX_VALUE : -3.4028234663852886e38, q.dtype, q.backend);
  const m = noGrad(() => maximum(max(scores, -1, true), floor)); // (B, Hkv, G, Tq, 1)
  const e = exp(sub(scores, m)); // (B, Hkv, G, Tq, Tk), 0 where hidden
  const z = sum(e, -1, true); // (B, Hkv, G, Tq, 1): >= 1 where a row sees a key (its max gives exp(0)), else 0
  const zSafe = add(
    z,
    noGrad(() => relu(addScalar(neg(z), 1))),
  ); // a row that sees no key divides 0 by 1
  const ev = matmul(reshape(e, [b, hkv, group * tq, tk]), vg); // (B, Hkv, G Tq, D)
  const o = div(ev, reshape(zSafe, [b, hkv, group * tq, 1])); // (B, Hkv, G Tq, D)
  return permute(reshape(o, [b, h, tq, d]), [0, 2, 1, 3]); // (B, Tq, H, D)
}

/** (Tq, Tk): 0 where query i (absolute position Tk - Tq + i) may see key j <= Tk - Tq + i, -inf after. */
function causalBias(tq: number, tk: number, like: Tensor): Tensor {
  const bias = new Float64Array(tq * tk);
  for (let i = 0; i < tq; i++) bias.fill(-Infinity, i * tk + tk - tq + i + 1, (i + 1) * tk);
  return tensor(bias, [tq, tk], like.dtype, like.backend);
}

// O = softmax(s Q K^T) V:  dV = P^T dO,  dS = P (dO V^T - rowsum(dO O)),  dQ = s dS K,  dK = s dS^T Q
const vjpAttention: Vjp<"attention"> = (g, { inputs: [q, k, v, mask], params, saved: [lse] }, out) => {
  const [b, tq, h, d] = q.shape;
  const [, tk, hkv] = k.shape;
  const dq = empty(q.shape, q.dtype, q.backend);
  const dk = empty(k.shape, k.dtype, k.backend);
  const dv = empty(v.shape, v.dtype, v.backend);
  fused(q.backend, "attention").attentionGrad(
    q.buf,
    k.buf,
    v.buf,
    mask?.buf ?? null,
    out.buf,
    lse.buf,
    g.buf,
    dq.buf,
    dk.buf,
    dv.buf,
    { b, tq, tk, h, hkv, d, ...params },
  );
  return [dq, dk, dv, null];
};

/** log softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  floatOnly("logSoftmax", x);
  const be = x.backend;
  if (!hasFused(be, "logSoftmax")) return composed([x], () => sub(x, logsumexp(x)));
  const v = x.shape[x.rank - 1];
  const out = empty(x.shape, x.dtype, be);
  be.logSoftmax(x.buf, out.buf, x.size / v, v);
  return record("logSoftmax", [x], {}, out);
}

// lse(x) = m + log(sum(exp(x - m))) over the last axis (kept, size 1), m = max(x) as a constant: exp stays in range
function logsumexp(x: Tensor): Tensor {
  const m = noGrad(() => max(x, -1, true)); // (..., 1)
  return add(m, log(sum(exp(sub(x, m)), -1, true))); // (..., 1)
}

// y = x - lse(x):  dx = g - softmax(x) sum(g)
const vjpLogSoftmax: Vjp<"logSoftmax"> = (g, { inputs: [x] }, out) => {
  const v = x.shape[x.rank - 1];
  const dx = empty(x.shape, x.dtype, x.backend);
  fused(x.backend, "logSoftmax").logSoftmaxGrad(out.buf, g.buf, dx.buf, x.size / v, v);
  return [dx];
};

/**
 * log p(target) under softmax(logits) for each row: logits (..., V), targets (...) i32 -> (...).
 * A negative target (ignore index, e.g. -100) gives 0 and no gradient.
 */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  floatOnly("tokenLogprobs", logits);
  intOnly("tokenLogprobs", targets);
  const v = logits.shape[logits.rank - 1];
  const n = logits.size / v;
  if (targets.size !== n) {
    throw new ShapeError("tokenLogprobs", { logits: logits.shape, targets: targets.shape }, "one target per row");
  }
  const be = logits.backend;
  if (!hasFused(be, "tokenLogprobs")) return composed([logits], () => tokenLogprobsComposed(logits, targets));
  const out = empty(logits.shape.slice(0, -1), logits.dtype, be);
  const lse = empty([n], logits.dtype, be);
  be.tokenLogprobs(logits.buf, targets.buf, out.buf, lse.buf, n, v);
  return record("tokenLogprobs", [logits, targets], {}, out, [lse]);
}

// y = (x_t - lse(x)) [t >= 0] on each row. Picking x_t takes the targets to the host (a small read, as crossEntropy's).
function tokenLogprobsComposed(logits: Tensor, targets: Tensor): Tensor {
  const v = logits.shape[logits.rank - 1];
  const n = logits.size / v;
  const t = targets.toArray();
  const at = new Int32Array(n); // flat index of each row's target in (N V)
  const counted = new Float64Array(n); // 1 for a row with a target, 0 for an ignored one
  for (let r = 0; r < n; r++) {
    if (t[r] >= v) throw new IndexError(`tokenLogprobs: target ${t[r]} at row ${r} is outside [0, ${v})`);
    at[r] = r * v + Math.max(t[r], 0);
    counted[r] = t[r] >= 0 ? 1 : 0;
  }
  const be = logits.backend;
  const picked = gather(reshape(logits, [n * v, 1]), tensor(at, [n], "i32", be)); // (N, 1): x[r, t_r]
  const lp = mul(sub(picked, logsumexp(reshape(logits, [n, v]))), tensor(counted, [n, 1], logits.dtype, be)); // (N, 1)
  return reshape(lp, logits.shape.slice(0, -1)); // (...)
}

// y = x_t - lse(x):  dx_j = g (1[j = t] - softmax(x)_j)
const vjpTokenLogprobs: Vjp<"tokenLogprobs"> = (g, { inputs: [logits, targets], saved: [lse] }) => {
  const v = logits.shape[logits.rank - 1];
  const dx = empty(logits.shape, logits.dtype, logits.backend);
  fused(logits.backend, "tokenLogprobs").tokenLogprobsGrad(
    logits.buf,
    targets.buf,
    lse.buf,
    g.buf,
    dx.buf,
    logits.size / v,
    v,
  );
  return [dx, null];
};

/** A copy in another dtype (f32 <-> f64 is differentiable; f16/bf16 are storage). */
export function cast(x: Tensor, dtype: Tensor["dtype"]): Tensor {
  const out = empty(x.shape, dtype, x.backend);
  x.backend.cast(x.buf, out.buf);
  return record("cast", [x], {}, out);
}

// y = x in another precision:  dx = cast(g, x.dtype)
const vjpCast: Vjp<"cast"> = (g, { inputs: [x] }) => [cast(g, x.dtype)];

export const VJPS: { [P in Primitive]: Vjp<P> } = {
  matmul: vjpMatmul,
  binary: vjpBinary,
  unary: vjpUnary,
  sum: vjpSum,
  max: vjpMax,
  reshape: vjpReshape,
  permute: vjpPermute,
  slice: vjpSlice,
  concat: vjpConcat,
  gather: vjpGather,
  rmsnorm: vjpRmsnorm,
  rope: vjpRope,
  attention: vjpAttention,
  logSoftmax: vjpLogSoftmax,
  tokenLogprobs: vjpTokenLogprobs,
  cast: vjpCast,
};
