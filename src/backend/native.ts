// The native CPU backend: a C++ addon (native/*.cc, built by node-gyp into build/Release/stepwise_native.node)
// with a packed AVX2/FMA GEMM, a persistent thread pool and vectorised kernels. It computes in f32 only; f16 and
// bf16 are storage (cast to f32), f64 buffers can be allocated, read, written and cast to and from f32.
//
// Buffers are 64-byte-aligned native memory behind an opaque handle. They follow the one ownership rule of
// backend.ts: whoever allocates disposes, exactly once (a second dispose is a no-op, any other use of a disposed
// buffer throws DisposedError). A buffer that is never disposed is freed when its handle is garbage-collected,
// but it still counts in liveBuffers(), so leak tests see it.
//
// The addon checks every argument (dtypes, element counts, ids) before touching memory and throws errors with
// a code; this file maps them to the typed errors of core/errors.ts.

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type {
  AdamWParams,
  AttentionParams,
  Backend,
  BinaryOp,
  Buf,
  DType,
  FusedKernels,
  HostArray,
  MatmulParams,
  ReduceOp,
  UnaryOp,
} from "./backend.js";
import { BINARY_OPS, UNARY_OPS } from "./backend.js";
import { BackendError, DisposedError, DTypeError, IndexError, ShapeError, StepwiseError } from "../core/errors.js";

type Handle = object;

/** The functions the addon exports (native/addon.cc); buffers are handles, shapes plain numbers. */
interface Addon {
  alloc(size: number, dtype: number): Handle;
  free(h: Handle): void;
  write(h: Handle, data: HostArray, offset: number): void;
  read(h: Handle): HostArray;
  liveBuffers(): number;
  setThreads(n: number): void;
  threads(): number;
  fmaPeakGflops(): number;
  fill(out: Handle, value: number): void;
  cast(x: Handle, out: Handle): void;
  unary(op: number, x: Handle, out: Handle, alpha: number): void;
  unaryGrad(op: number, x: Handle, g: Handle, out: Handle, alpha: number): void;
  binary(op: number, a: Handle, aShape: number[], b: Handle, bShape: number[], out: Handle, outShape: number[]): void;
  sumTo(x: Handle, xShape: number[], out: Handle, outShape: number[]): void;
  reduce(op: number, x: Handle, outer: number, n: number, inner: number, out: Handle): void;
  reduceMaxGrad(x: Handle, g: Handle, outer: number, n: number, inner: number, out: Handle): void;
  sumSquares(x: Handle, out: Handle, accumulate: boolean): void;
  matmul(
    a: Handle,
    b: Handle,
    out: Handle,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    accumulate: boolean,
  ): void;
  permute(x: Handle, shape: number[], perm: number[], out: Handle): void;
  copyRange(
    src: Handle,
    srcDim: number,
    srcStart: number,
    dst: Handle,
    dstDim: number,
    dstStart: number,
    outer: number,
    len: number,
    inner: number,
    accumulate: boolean,
  ): void;
  gather(table: Handle, ids: Handle, out: Handle, n: number, v: number, c: number): void;
  scatterAdd(g: Handle, ids: Handle, out: Handle, n: number, v: number, c: number): void;
  rmsnorm(x: Handle, w: Handle, out: Handle, rstd: Handle, n: number, c: number, eps: number): void;
  rmsnormGrad(x: Handle, w: Handle, rstd: Handle, g: Handle, dx: Handle, dw: Handle, n: number, c: number): void;
  rope(
    x: Handle,
    cos: Handle,
    sin: Handle,
    pos: Handle,
    out: Handle,
    b: number,
    t: number,
    h: number,
    d: number,
    inverse: boolean,
  ): void;
  attention(
    q: Handle,
    k: Handle,
    v: Handle,
    mask: Handle | null,
    out: Handle,
    lse: Handle,
    b: number,
    tq: number,
    tk: number,
    h: number,
    hkv: number,
    d: number,
    scale: number,
    causal: boolean,
  ): void;
  attentionGrad(
    q: Handle,
    k: Handle,
    v: Handle,
    mask: Handle | null,
    out: Handle,
    lse: Handle,
    g: Handle,
    dq: Handle,
    dk: Handle,
    dv: Handle,
    b: number,
    tq: number,
    tk: number,
    h: number,
    hkv: number,
    d: number,
    scale: number,
    causal: boolean,
  ): void;
  logSoftmax(x: Handle, out: Handle, n: number, v: number): void;
  logSoftmaxGrad(y: Handle, g: Handle, dx: Handle, n: number, v: number): void;
  tokenLogprobs(logits: Handle, targets: Handle, out: Handle, lse: Handle, n: number, v: number): void;
  tokenLogprobsGrad(
    logits: Handle,
    targets: Handle,
    lse: Handle,
    g: Handle,
    dlogits: Handle,
    n: number,
    v: number,
  ): void;
  adamw(
    param: Handle,
    grad: Handle,
    m: Handle,
    v: Handle,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
}

const DTYPE_CODE: { [D in DType]: number } = { f32: 0, f64: 1, i32: 2, f16: 3, bf16: 4 };
const UNARY_CODE = new Map<UnaryOp, number>(UNARY_OPS.map((op, i) => [op, i])); // same order as native/kernels.h
const BINARY_CODE = new Map<BinaryOp, number>(BINARY_OPS.map((op, i) => [op, i]));

class NativeBuf implements Buf {
  disposed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    readonly handle: Handle,
  ) {}
}

/** The addon's handle behind a buffer of this backend. */
function h(buf: Buf): Handle {
  if (!(buf instanceof NativeBuf)) {
    throw new BackendError(
      `the native backend got a buffer of another backend (${buf.dtype}, ${buf.size})`,
      "allocate every buffer of a computation on the same backend",
    );
  }
  if (buf.disposed) throw new DisposedError(`buffer of ${buf.size} ${buf.dtype} used after dispose`);
  return buf.handle;
}

/** Turns the addon's coded errors into the typed errors of core/errors.ts. */
function typedError(op: string, e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  switch ((e as Error & { code?: string }).code) {
    case "STEPWISE_INDEX":
      return new IndexError(e.message);
    case "STEPWISE_DTYPE":
      return new DTypeError(e.message);
    case "STEPWISE_DISPOSED":
      return new DisposedError(e.message);
    case "STEPWISE_SHAPE":
      return new ShapeError(op, {}, e.message);
    case "STEPWISE_ARG":
      return new StepwiseError(e.message);
    default:
      return e;
  }
}

export class NativeBackend implements Backend, FusedKernels {
  readonly name = "native";
  readonly dtypes: readonly DType[] = ["f32"];

  constructor(private readonly lib: Addon) {}

  /** Runs one addon call, mapping its errors. */
  private run(op: string, fn: (lib: Addon) => void): void {
    try {
      fn(this.lib);
    } catch (e) {
      throw typedError(op, e);
    }
  }

  alloc(size: number, dtype: DType): Buf {
    const code = DTYPE_CODE[dtype];
    if (code === undefined) throw new DTypeError(`alloc: unknown dtype ${String(dtype)}`);
    if (!Number.isInteger(size) || size < 0)
      throw new ShapeError("alloc", { size: [size] }, "size must be an integer >= 0");
    let handle: Handle | undefined;
    this.run("alloc", (lib) => {
      handle = lib.alloc(size, code);
    });
    return new NativeBuf(dtype, size, handle as Handle);
  }
  write(buf: Buf, data: HostArray, offset = 0): void {
    this.run("write", (lib) => lib.write(h(buf), data, offset));
  }
  readSync(buf: Buf): HostArray {
    let out: HostArray | undefined;
    this.run("read", (lib) => {
      out = lib.read(h(buf));
    });
    return out as HostArray;
  }
  read(buf: Buf): Promise<HostArray> {
    return Promise.resolve(this.readSync(buf)); // kernels run synchronously: the data is ready
  }
  dispose(buf: Buf): void {
    if (buf instanceof NativeBuf && buf.disposed) return; // disposing twice is a no-op
    h(buf); // throws for a buffer of another backend
    const nb = buf as NativeBuf;
    nb.disposed = true;
    this.lib.free(nb.handle);
  }
  liveBuffers(): number {
    return this.lib.liveBuffers();
  }
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new StepwiseError(`setThreads: n must be an integer >= 1, got ${n}`);
    this.lib.setThreads(n);
  }
  threads(): number {
    return this.lib.threads();
  }
  /** Measured FMA throughput of this machine over all pool threads, in GFLOP/s (takes a few milliseconds). */
  fmaPeakGflops(): number {
    return this.lib.fmaPeakGflops();
  }

  fill(out: Buf, value: number): void {
    this.run("fill", (lib) => lib.fill(h(out), value));
  }
  cast(x: Buf, out: Buf): void {
    this.run("cast", (lib) => lib.cast(h(x), h(out)));
  }
  unary(op: UnaryOp, x: Buf, out: Buf, alpha: number): void {
    this.run(`unary ${op}`, (lib) => lib.unary(code(UNARY_CODE, op), h(x), h(out), alpha));
  }
  unaryGrad(op: UnaryOp, x: Buf, g: Buf, out: Buf, alpha: number): void {
    this.run(`unaryGrad ${op}`, (lib) => lib.unaryGrad(code(UNARY_CODE, op), h(x), h(g), h(out), alpha));
  }
  binary(op: BinaryOp, a: Buf, aShape: number[], b: Buf, bShape: number[], out: Buf, outShape: number[]): void {
    this.run(`binary ${op}`, (lib) => lib.binary(code(BINARY_CODE, op), h(a), aShape, h(b), bShape, h(out), outShape));
  }
  sumTo(x: Buf, xShape: number[], out: Buf, outShape: number[]): void {
    this.run("sumTo", (lib) => lib.sumTo(h(x), xShape, h(out), outShape));
  }
  reduce(op: ReduceOp, x: Buf, outer: number, n: number, inner: number, out: Buf): void {
    this.run(`reduce ${op}`, (lib) => lib.reduce(op === "sum" ? 0 : 1, h(x), outer, n, inner, h(out)));
  }
  reduceMaxGrad(x: Buf, g: Buf, outer: number, n: number, inner: number, out: Buf): void {
    this.run("reduceMaxGrad", (lib) => lib.reduceMaxGrad(h(x), h(g), outer, n, inner, h(out)));
  }
  matmul(a: Buf, b: Buf, out: Buf, p: MatmulParams): void {
    this.run("matmul", (lib) =>
      lib.matmul(h(a), h(b), h(out), p.batch, p.m, p.n, p.k, p.transA, p.transB, p.strideA, p.strideB, p.accumulate),
    );
  }
  permute(x: Buf, shape: number[], perm: number[], out: Buf): void {
    this.run("permute", (lib) => lib.permute(h(x), shape, perm, h(out)));
  }
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
  ): void {
    this.run("copyRange", (lib) =>
      lib.copyRange(h(src), srcDim, srcStart, h(dst), dstDim, dstStart, outer, len, inner, accumulate),
    );
  }
  gather(table: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void {
    this.run("gather", (lib) => lib.gather(h(table), h(ids), h(out), n, v, c));
  }
  scatterAdd(g: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void {
    this.run("scatterAdd", (lib) => lib.scatterAdd(h(g), h(ids), h(out), n, v, c));
  }
  rmsnorm(x: Buf, w: Buf, out: Buf, rstd: Buf, n: number, c: number, eps: number): void {
    this.run("rmsnorm", (lib) => lib.rmsnorm(h(x), h(w), h(out), h(rstd), n, c, eps));
  }
  rmsnormGrad(x: Buf, w: Buf, rstd: Buf, g: Buf, dx: Buf, dw: Buf, n: number, c: number): void {
    this.run("rmsnormGrad", (lib) => lib.rmsnormGrad(h(x), h(w), h(rstd), h(g), h(dx), h(dw), n, c));
  }
  rope(
    x: Buf,
    cos: Buf,
    sin: Buf,
    pos: Buf,
    out: Buf,
    b: number,
    t: number,
    hh: number,
    d: number,
    inverse: boolean,
  ): void {
    this.run("rope", (lib) => lib.rope(h(x), h(cos), h(sin), h(pos), h(out), b, t, hh, d, inverse));
  }
  attention(q: Buf, k: Buf, v: Buf, keyMask: Buf | null, out: Buf, lse: Buf, p: AttentionParams): void {
    this.run("attention", (lib) =>
      lib.attention(
        h(q),
        h(k),
        h(v),
        keyMask ? h(keyMask) : null,
        h(out),
        h(lse),
        p.b,
        p.tq,
        p.tk,
        p.h,
        p.hkv,
        p.d,
        p.scale,
        p.causal,
      ),
    );
  }
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
  ): void {
    this.run("attentionGrad", (lib) =>
      lib.attentionGrad(
        h(q),
        h(k),
        h(v),
        keyMask ? h(keyMask) : null,
        h(out),
        h(lse),
        h(g),
        h(dq),
        h(dk),
        h(dv),
        p.b,
        p.tq,
        p.tk,
        p.h,
        p.hkv,
        p.d,
        p.scale,
        p.causal,
      ),
    );
  }
  logSoftmax(x: Buf, out: Buf, n: number, v: number): void {
    this.run("logSoftmax", (lib) => lib.logSoftmax(h(x), h(out), n, v));
  }
  logSoftmaxGrad(y: Buf, g: Buf, dx: Buf, n: number, v: number): void {
    this.run("logSoftmaxGrad", (lib) => lib.logSoftmaxGrad(h(y), h(g), h(dx), n, v));
  }
  tokenLogprobs(logits: Buf, targets: Buf, out: Buf, lse: Buf, n: number, v: number): void {
    this.run("tokenLogprobs", (lib) => lib.tokenLogprobs(h(logits), h(targets), h(out), h(lse), n, v));
  }
  tokenLogprobsGrad(logits: Buf, targets: Buf, lse: Buf, g: Buf, dlogits: Buf, n: number, v: number): void {
    this.run("tokenLogprobsGrad", (lib) =>
      lib.tokenLogprobsGrad(h(logits), h(targets), h(lse), h(g), h(dlogits), n, v),
    );
  }
  adamw(param: Buf, grad: Buf, m: Buf, v: Buf, p: AdamWParams): void {
    this.run("adamw", (lib) =>
      lib.adamw(h(param), h(grad), h(m), h(v), p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, p.step),
    );
  }
  sumSquares(x: Buf, out: Buf, accumulate: boolean): void {
    this.run("sumSquares", (lib) => lib.sumSquares(h(x), h(out), accumulate));
  }
}

function code<K>(table: Map<K, number>, op: K): number {
  const c = table.get(op);
  if (c === undefined) throw new StepwiseError(`unknown op ${String(op)}`);
  return c;
}

let loaded: NativeBackend | null | undefined;
let loadError: string | null = null;

/**
 * Path of the built addon: <package root>/build/Release/stepwise_native.node (this file is dist/backend/native.js),
 * or $STEPWISE_NATIVE_ADDON when set (to test another build, e.g. the portable one).
 */
export function nativeAddonPath(): string {
  if (process.env.STEPWISE_NATIVE_ADDON) return path.resolve(process.env.STEPWISE_NATIVE_ADDON);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
  return path.join(root, "build", "Release", "stepwise_native.node");
}

/** The native backend, or null when the addon is missing or fails to load (the reason: nativeLoadError()). */
export function loadNative(): NativeBackend | null {
  if (loaded !== undefined) return loaded;
  const file = nativeAddonPath();
  try {
    const lib = createRequire(import.meta.url)(file) as Addon;
    if (typeof lib.matmul !== "function") throw new Error("it does not export the expected kernels");
    loaded = new NativeBackend(lib);
  } catch (e) {
    loadError = `cannot load ${file}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
    loaded = null;
  }
  return loaded;
}

/** Why loadNative() returned null, or null if it loaded (or was not tried yet). */
export function nativeLoadError(): string | null {
  return loadError;
}
