// The Backend interface: the only way the engine touches memory or runs a kernel.
//
// Rules every backend follows (the reference backend in reference.ts is the executable spec):
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

export type DType = "f32" | "f64" | "i32" | "f16" | "bf16";
export type FloatDType = "f32" | "f64";

/** Host-side arrays. f16 and bf16 are raw 16-bit patterns in a Uint16Array. */
export type HostArray = Float32Array | Float64Array | Int32Array | Uint16Array;

export interface Buf {
  readonly dtype: DType;
  readonly size: number; // elements
}

export const UNARY_OPS = [
  "neg", "exp", "log", "sqrt", "rsqrt", "silu", "sigmoid", "logsigmoid", "relu", "tanh", "square", "abs",
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

export interface Backend {
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

  // --- kernels (sizes in elements) ---
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
  copyRange(src: Buf, srcDim: number, srcStart: number, dst: Buf, dstDim: number, dstStart: number,
    outer: number, len: number, inner: number, accumulate: boolean): void;
  /** out[i, :] = table[ids[i], :] for table (V, C), ids (N) i32, out (N, C). Throws on an id outside [0, V). */
  gather(table: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void;
  /** out[ids[i], :] += g[i, :]: the backward of gather; out (V, C) is accumulated into. */
  scatterAdd(g: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void;
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
  rope(x: Buf, cos: Buf, sin: Buf, pos: Buf, out: Buf, b: number, t: number, h: number, d: number, inverse: boolean): void;
  /**
   * Fused softmax attention. q (B, Tq, H, D), k and v (B, Tk, Hkv, D), out (B, Tq, H, D), lse (B, H, Tq).
   * keyMask (B, Tk) i32, 1 = attend, 0 = padding, or null. A query row that sees no key gets out = 0 and lse = -inf.
   */
  attention(q: Buf, k: Buf, v: Buf, keyMask: Buf | null, out: Buf, lse: Buf, p: AttentionParams): void;
  /** dq, dk, dv (overwritten) from g = dL/dout, using the forward's out and lse. */
  attentionGrad(q: Buf, k: Buf, v: Buf, keyMask: Buf | null, out: Buf, lse: Buf, g: Buf,
    dq: Buf, dk: Buf, dv: Buf, p: AttentionParams): void;
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
