// The Backend interface: the only way the engine touches memory or runs a kernel. It has a required part and an
// optional one.
//
// Required (`Backend`): memory (alloc, write, readSync, read, dispose, liveBuffers, setThreads, threads) and the
// primitive kernels that the engine's primitive ops map to one to one: fill, cast, unary, unaryGrad, binary, sumTo,
// reduce, reduceMaxGrad, matmul, permute, copyRange, gather, scatterAdd. (unaryGrad and reduceMaxGrad stay here:
// the primitives have no comparison, so op'(x) for relu or abs and the first argmax cannot be composed.)
//
// Optional (`FusedKernels`): fast paths for work that the engine can also compose from the primitives:
// rmsnorm, rope, attention, logSoftmax, tokenLogprobs, each with its backward kernel (rmsnormGrad, attentionGrad,
// logSoftmaxGrad, tokenLogprobsGrad; rope's backward is rope itself, inverted), implemented together or not at all
// (`FUSED` pairs them); and adamw and sumSquares. The engine calls a fused kernel where the backend has it
// (`hasFused`) and otherwise computes the same result with primitive ops, whose gradients then give the backward:
// engine/ops.ts holds those compositions for the transformer kernels, engine/optim.ts for adamw and sumSquares.
//
// A new backend (WebGPU, CUDA) starts by implementing `Backend` alone: the engine runs every model on it through
// the compositions, which engine/fused.test.ts checks against the fused reference (`primitivesOnly` hides a
// backend's fused kernels, to run that path on any backend). Then it adds fused kernels where they pay, a forward
// and its backward at a time, each checked against the reference backend as native.test.ts checks the native one.
// The reference backend implements every kernel of both parts and is their executable spec; native implements all.
//
// Rules every backend follows (reference.ts is the executable spec):
// - Buffers are opaque handles. They may live on a device; the host sees their contents only through
//   `read`/`readSync` and writes them only through `write`. `alloc` returns a buffer whose contents are
//   undefined (a backend may recycle memory); `fill` zeroes it where that matters.
// - Kernels write into output buffers that the caller allocated. An output never aliases an input unless the
//   kernel says so (`adamw`, `unary` with out === x, `fill`). A kernel may run asynchronously; `read` waits for
//   the kernels queued before it. The CPU backends run kernels synchronously.
// - Ownership: whoever allocates a buffer disposes it, exactly once. The engine wraps buffers in tensors and frees
//   them through `tidy()` scopes or `Tensor.dispose()` (see engine/tensor.ts); `liveBuffers()` counts buffers
//   allocated and not yet disposed, so tests can check that a training step leaks nothing.
// - Shapes are plain numbers passed with each call; buffers are flat and row-major (C order).
// - Compute dtype is the buffer's dtype: f32 everywhere, f64 on the reference backend (for gradient checks).
//   i32 holds indices. f16/bf16 are storage only: `cast` converts them to and from f32.
//
// Legend for shapes: B batch, T time, H heads, Hkv key/value heads, D head size, C channels, V vocab, N rows.

import { BackendError } from "../core/errors.js";

export type DType = "f32" | "f64" | "i32" | "f16" | "bf16";
export type FloatDType = "f32" | "f64";

/** Host-side arrays. f16 and bf16 are raw 16-bit patterns in a Uint16Array. */
export type HostArray = Float32Array | Float64Array | Int32Array | Uint16Array;

export interface Buf {
  readonly dtype: DType;
  readonly size: number; // elements
}

export const UNARY_OPS = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "silu",
  "sigmoid",
  "logsigmoid",
  "relu",
  "tanh",
  "square",
  "abs",
  "scale", // alpha * x
  "addScalar", // x + alpha
  "powScalar", // x ** alpha (x > 0 unless alpha is an integer)
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

export const BINARY_OPS = ["add", "sub", "mul", "div", "maximum", "minimum"] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export type ReduceOp = "sum" | "max";

export interface MatmulParams {
  batch: number; // number of independent products
  m: number;
  n: number;
  k: number;
  transA: boolean; // A is stored (K, M) instead of (M, K)
  transB: boolean; // B is stored (N, K) instead of (K, N)
  strideA: number; // elements between consecutive batch items of A; 0 broadcasts one A over the batch
  strideB: number;
  accumulate: boolean; // C += A@B instead of C = A@B
}

export interface AttentionParams {
  b: number;
  tq: number; // query positions
  tk: number; // key positions: a KV prefix of tk - tq positions precedes the queries
  h: number; // query heads
  hkv: number; // key/value heads; h % hkv == 0 (grouped-query attention)
  d: number; // head size
  scale: number; // usually 1/sqrt(d)
  causal: boolean; // query i (absolute position tk - tq + i) sees keys j <= tk - tq + i
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number; // decoupled: p -= lr * wd * p
  step: number; // 1-based, for bias correction
}

/** The required part: memory and the primitive kernels. Optional fused kernels may be present too. */
export interface Backend extends Partial<FusedKernels> {
  readonly name: string;
  readonly dtypes: readonly DType[]; // dtypes this backend computes in (besides storage-only f16/bf16)

  // --- memory ---
  alloc(size: number, dtype: DType): Buf;
  write(buf: Buf, data: HostArray, offset?: number): void;
  readSync(buf: Buf): HostArray;
  read(buf: Buf): Promise<HostArray>;
  dispose(buf: Buf): void;
  liveBuffers(): number;
  setThreads(n: number): void;
  threads(): number;

  // --- primitive kernels (sizes in elements) ---
  fill(out: Buf, value: number): void;
  /** Converts between dtypes (f32 <-> f64/f16/bf16, i32 -> f32); same dtype is a copy. */
  cast(x: Buf, out: Buf): void;
  /** out[i] = op(x[i]); out may be x. */
  unary(op: UnaryOp, x: Buf, out: Buf, alpha: number): void;
  /** out[i] = g[i] * op'(x[i]): the backward of unary, computed from the input x. */
  unaryGrad(op: UnaryOp, x: Buf, g: Buf, out: Buf, alpha: number): void;
  /** out = a op b with numpy broadcasting; aShape and bShape are already right-aligned to outShape's rank. */
  binary(op: BinaryOp, a: Buf, aShape: number[], b: Buf, bShape: number[], out: Buf, outShape: number[]): void;
  /** Sums x (xShape) down to outShape (same rank, each dim 1 or equal): the backward of broadcasting. */
  sumTo(x: Buf, xShape: number[], out: Buf, outShape: number[]): void;
  /** x viewed as (outer, n, inner) reduced over n into out (outer, inner). */
  reduce(op: ReduceOp, x: Buf, outer: number, n: number, inner: number, out: Buf): void;
  /** Backward of max: out (outer, n, inner) gets g at the first maximum of each reduced row, 0 elsewhere. */
  reduceMaxGrad(x: Buf, g: Buf, outer: number, n: number, inner: number, out: Buf): void;
  /** C = op(A) @ op(B) (or C +=), row-major, batch-strided; C has batch * m * n elements. */
  matmul(a: Buf, b: Buf, out: Buf, p: MatmulParams): void;
  /** out = x permuted: out.shape[i] = shape[perm[i]]. */
  permute(x: Buf, shape: number[], perm: number[], out: Buf): void;
  /**
   * dst[o, dstStart + i, j] (+)= src[o, srcStart + i, j] for o < outer, i < len, j < inner, where src is
   * (outer, srcDim, inner) and dst is (outer, dstDim, inner). Slice, concat, their backwards and KV-cache appends.
   */
  copyRange(
    src: Buf,
    srcDim: number,
    srcStart: number,
    dst: Buf,
    dstDim: number,
    dstStart: number,
    outer: number,
    len: number,
    inner: number,
    accumulate: boolean,
  ): void;
  /** out[i, :] = table[ids[i], :] for table (V, C), ids (N) i32, out (N, C). Throws on an id outside [0, V). */
  gather(table: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void;
  /** out[ids[i], :] += g[i, :]: the backward of gather; out (V, C) is accumulated into. */
  scatterAdd(g: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void;
}

/**
 * Optional fused kernels: each computes what a few primitive ops compute, in one pass. A backend implements a
 * forward and its backward together (see FUSED) or leaves both out; the engine composes the missing ones.
 */
export interface FusedKernels {
  /** y = x * rsqrt(mean(x^2) + eps) * w over rows of x (N, C); writes rstd (N). */
  rmsnorm(x: Buf, w: Buf, out: Buf, rstd: Buf, n: number, c: number, eps: number): void;
  /** dx (N, C) and dw (C) from g (N, C); dw is overwritten. */
  rmsnormGrad(x: Buf, w: Buf, rstd: Buf, g: Buf, dx: Buf, dw: Buf, n: number, c: number): void;
  /**
   * Rotary embedding, Hugging Face "rotate_half" layout: for i < D/2 with p = pos[b, t],
   *   out[i]       = x[i] * cos[p, i] - x[i + D/2] * sin[p, i]
   *   out[i + D/2] = x[i + D/2] * cos[p, i] + x[i] * sin[p, i]
   * x and out (B, T, H, D); pos (B, T) i32; cos and sin (P, D/2). inverse = true rotates by -angle (the backward).
   */
  rope(
    x: Buf,
    cos: Buf,
    sin: Buf,
    pos: Buf,
    out: Buf,
    b: number,
    t: number,
    h: number,
    d: number,
    inverse: boolean,
  ): void;
  /**
   * Fused softmax attention. q (B, Tq, H, D), k and v (B, Tk, Hkv, D), out (B, Tq, H, D), lse (B, H, Tq).
   * keyMask (B, Tk) i32, 1 = attend, 0 = padding, or null. A query row that sees no key gets out = 0 and lse = -inf.
   */
  attention(q: Buf, k: Buf, v: Buf, keyMask: Buf | null, out: Buf, lse: Buf, p: AttentionParams): void;
  /** dq, dk, dv (overwritten) from g = dL/dout, using the forward's out and lse. */
  attentionGrad(
    q: Buf,
    k: Buf,
    v: Buf,
    keyMask: Buf | null,
    out: Buf,
    lse: Buf,
    g: Buf,
    dq: Buf,
    dk: Buf,
    dv: Buf,
    p: AttentionParams,
  ): void;
  /** out = x - logsumexp(x) over rows of x (N, V). */
  logSoftmax(x: Buf, out: Buf, n: number, v: number): void;
  /** dx = g - exp(y) * sum(g) over rows, from y = logSoftmax(x). */
  logSoftmaxGrad(y: Buf, g: Buf, dx: Buf, n: number, v: number): void;
  /**
   * Per-row log-probability of a target: out[r] = x[r, t_r] - logsumexp(x[r, :]); lse[r] = logsumexp(x[r, :]).
   * targets (N) i32; a negative target (ignore index) gives out[r] = 0.
   */
  tokenLogprobs(logits: Buf, targets: Buf, out: Buf, lse: Buf, n: number, v: number): void;
  /** dlogits[r, j] = g[r] * (1[j == t_r] - softmax(x[r])_j); 0 for ignored rows. */
  tokenLogprobsGrad(logits: Buf, targets: Buf, lse: Buf, g: Buf, dlogits: Buf, n: number, v: number): void;
  /** In place AdamW on param, m, v (all `size` elements) from grad. */
  adamw(param: Buf, grad: Buf, m: Buf, v: Buf, p: AdamWParams): void;
  /** out[0] (+)= sum(x^2): for global-norm clipping. out has one element. */
  sumSquares(x: Buf, out: Buf, accumulate: boolean): void;
}

/**
 * Each fused forward kernel and the backward kernel that comes with it (rope's backward is rope with
 * inverse = true; adamw and sumSquares have none).
 */
export const FUSED = {
  rmsnorm: "rmsnormGrad",
  rope: null,
  attention: "attentionGrad",
  logSoftmax: "logSoftmaxGrad",
  tokenLogprobs: "tokenLogprobsGrad",
  adamw: null,
  sumSquares: null,
} as const satisfies Record<string, keyof FusedKernels | null>;
export type FusedKernel = keyof typeof FUSED;
/** A fused kernel and its backward kernel, if it has one. */
type WithBackward<K extends FusedKernel> = K | Exclude<(typeof FUSED)[K], null>;
/** A backend that has the fused kernel K (and its backward). */
export type WithFused<K extends FusedKernel> = Backend & Pick<FusedKernels, WithBackward<K>>;
// FUSED names every method of FusedKernels, as a forward or as a backward (else this line does not compile).
type Unlisted = Exclude<keyof FusedKernels, WithBackward<FusedKernel>>;
// biome-ignore lint/correctness/noUnusedVariables: a compile-time check, never read
const everyFusedKernelListed: [Unlisted] extends [never] ? true : Unlisted = true;

/**
 * True when `be` implements the fused kernel k and its backward; then the engine calls them, else it composes k
 * from primitives. A backend with a forward but not its backward (or the reverse) is a BackendError.
 */
export function hasFused<K extends FusedKernel>(be: Backend, k: K): be is WithFused<K> {
  const grad: keyof FusedKernels | null = FUSED[k];
  const hasForward = typeof be[k] === "function";
  if (grad === null || hasForward === (typeof be[grad] === "function")) return hasForward;
  throw new BackendError(
    `backend ${be.name} implements ${hasForward ? k : grad} but not ${hasForward ? grad : k}`,
    "implement a fused kernel and its backward together, or neither (the engine then composes both)",
  );
}

/** `be` with its fused kernels, after the forward found them (`hasFused`): for backward passes. */
export function fused<K extends FusedKernel>(be: Backend, k: K): WithFused<K> {
  if (!hasFused(be, k)) throw new BackendError(`backend ${be.name} has no fused ${k}`, "call hasFused first");
  return be;
}

/**
 * `be` seen through its required part only: the engine composes every fused kernel from primitives on it. For
 * tests of the composed path, and to check a new fused kernel against its composition.
 */
export function primitivesOnly(be: Backend): Backend {
  return {
    name: `${be.name} (primitives only)`,
    dtypes: be.dtypes,
    alloc: (size, dtype) => be.alloc(size, dtype),
    write: (buf, data, offset) => be.write(buf, data, offset),
    readSync: (buf) => be.readSync(buf),
    read: (buf) => be.read(buf),
    dispose: (buf) => be.dispose(buf),
    liveBuffers: () => be.liveBuffers(),
    setThreads: (n) => be.setThreads(n),
    threads: () => be.threads(),
    fill: (out, value) => be.fill(out, value),
    cast: (x, out) => be.cast(x, out),
    unary: (op, x, out, alpha) => be.unary(op, x, out, alpha),
    unaryGrad: (op, x, g, out, alpha) => be.unaryGrad(op, x, g, out, alpha),
    binary: (op, a, aShape, b, bShape, out, outShape) => be.binary(op, a, aShape, b, bShape, out, outShape),
    sumTo: (x, xShape, out, outShape) => be.sumTo(x, xShape, out, outShape),
    reduce: (op, x, outer, n, inner, out) => be.reduce(op, x, outer, n, inner, out),
    reduceMaxGrad: (x, g, outer, n, inner, out) => be.reduceMaxGrad(x, g, outer, n, inner, out),
    matmul: (a, b, out, p) => be.matmul(a, b, out, p),
    permute: (x, shape, perm, out) => be.permute(x, shape, perm, out),
    copyRange: (src, srcDim, srcStart, dst, dstDim, dstStart, outer, len, inner, accumulate) =>
      be.copyRange(src, srcDim, srcStart, dst, dstDim, dstStart, outer, len, inner, accumulate),
    gather: (table, ids, out, n, v, c) => be.gather(table, ids, out, n, v, c),
    scatterAdd: (g, ids, out, n, v, c) => be.scatterAdd(g, ids, out, n, v, c),
  };
}

export function dtypeBytes(dtype: DType): number {
  switch (dtype) {
    case "f64":
      return 8;
    case "f32":
    case "i32":
      return 4;
    case "f16":
    case "bf16":
      return 2;
    default:
      return dtype satisfies never;
  }
}

export function hostArray(dtype: DType, size: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(size);
    case "f64":
      return new Float64Array(size);
    case "i32":
      return new Int32Array(size);
    case "f16":
    case "bf16":
      return new Uint16Array(size);
    default:
      return dtype satisfies never;
  }
}
