// The reference backend: plain TypeScript loops, slow on purpose. It is the definition of every kernel, the
// required primitives and the optional fused kernels alike; every fast backend must match it (see native.test.ts),
// and so must the engine's composition of each fused kernel from primitives (see engine/fused.test.ts). f32 buffers
// are computed in double and rounded once on store; f64 buffers make float64 finite-difference gradient checks
// possible.

import type {
  AdamWParams,
  AttentionParams,
  BinaryOp,
  Buf,
  Backend,
  DType,
  FusedKernels,
  HostArray,
  MatmulParams,
  ReduceOp,
  UnaryOp,
} from "./backend.js";
import { hostArray } from "./backend.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../core/half.js";
import { DisposedError, DTypeError, IndexError } from "../core/errors.js";

type Arr = Float32Array | Float64Array | Int32Array | Uint16Array;

class RefBuf implements Buf {
  disposed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    public data: Arr,
  ) {}
}

function d(buf: Buf): Arr {
  const b = buf as RefBuf;
  if (b.disposed) throw new DisposedError(`buffer of ${b.size} ${b.dtype} used after dispose`);
  return b.data;
}

/** Float view of a buffer; f16/bf16 are storage only and must be cast first. */
function f(buf: Buf): Float32Array | Float64Array {
  if (buf.dtype !== "f32" && buf.dtype !== "f64") throw new DTypeError(`kernel needs f32 or f64, got ${buf.dtype}`);
  return d(buf) as Float32Array | Float64Array;
}

function ints(buf: Buf): Int32Array {
  if (buf.dtype !== "i32") throw new DTypeError(`kernel needs i32 indices, got ${buf.dtype}`);
  return d(buf) as Int32Array;
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

// Each unary op: forward, and derivative as a function of x (and alpha).
const UNARY: { [P in UnaryOp]: { fwd: (x: number, a: number) => number; der: (x: number, a: number) => number } } = {
  neg: { fwd: (x) => -x, der: () => -1 }, // d/dx -x = -1
  exp: { fwd: (x) => Math.exp(x), der: (x) => Math.exp(x) }, // d/dx e^x = e^x
  log: { fwd: (x) => Math.log(x), der: (x) => 1 / x }, // d/dx ln x = 1/x
  sqrt: { fwd: (x) => Math.sqrt(x), der: (x) => 0.5 / Math.sqrt(x) }, // d/dx sqrt x = 1/(2 sqrt x)
  rsqrt: { fwd: (x) => 1 / Math.sqrt(x), der: (x) => -0.5 / (x * Math.sqrt(x)) }, // d/dx x^-1/2 = -x^-3/2 / 2
  silu: { fwd: (x) => x * sigmoid(x), der: (x) => sigmoid(x) * (1 + x * (1 - sigmoid(x))) }, // s(1 + x(1-s))
  sigmoid: { fwd: sigmoid, der: (x) => sigmoid(x) * (1 - sigmoid(x)) }, // s(1-s)
  logsigmoid: { fwd: (x) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x))), der: (x) => sigmoid(-x) }, // 1-s
  // biome-ignore lint/complexity/useMathMinMax: x > 0 ? x : 0 gives 0 for NaN, as native/elementwise.cc does; Math.max gives NaN
  relu: { fwd: (x) => (x > 0 ? x : 0), der: (x) => (x > 0 ? 1 : 0) }, // step(x)
  tanh: { fwd: (x) => Math.tanh(x), der: (x) => 1 - Math.tanh(x) ** 2 }, // 1 - tanh^2
  square: { fwd: (x) => x * x, der: (x) => 2 * x }, // 2x
  abs: { fwd: (x) => Math.abs(x), der: (x) => Math.sign(x) }, // sign(x)
  scale: { fwd: (x, a) => a * x, der: (_x, a) => a }, // a
  addScalar: { fwd: (x, a) => x + a, der: () => 1 }, // 1
  powScalar: { fwd: (x, a) => x ** a, der: (x, a) => a * x ** (a - 1) }, // a x^(a-1)
};

const BINARY: { [P in BinaryOp]: (a: number, b: number) => number } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (a >= b || Number.isNaN(a) ? a : b),
  minimum: (a, b) => (a <= b || Number.isNaN(a) ? a : b),
};

/** Strides of a row-major shape, with 0 where a dim is broadcast (size 1) against outShape. */
function bstrides(shape: number[], outShape: number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = shape[i] === 1 && outShape[i] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return st;
}

/** Calls fn(outIndex, aOffset, bOffset) over every element of outShape. */
function forEachBroadcast(
  outShape: number[],
  aSt: number[],
  bSt: number[],
  fn: (o: number, ia: number, ib: number) => void,
) {
  const r = outShape.length;
  const idx = new Array<number>(r).fill(0);
  const total = outShape.reduce((p, x) => p * x, 1);
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < total; o++) {
    fn(o, ia, ib);
    for (let k = r - 1; k >= 0; k--) {
      idx[k]++;
      ia += aSt[k];
      ib += bSt[k];
      if (idx[k] < outShape[k]) break;
      ia -= aSt[k] * outShape[k];
      ib -= bSt[k] * outShape[k];
      idx[k] = 0;
    }
  }
}

export class ReferenceBackend implements Backend, FusedKernels {
  readonly name = "reference";
  readonly dtypes: readonly DType[] = ["f32", "f64"];
  private live = 0;

  alloc(size: number, dtype: DType): Buf {
    this.live++;
    const data = hostArray(dtype, size);
    // Contents are undefined by contract: NaN makes any read of unwritten memory show up in the tests.
    if (dtype === "f32" || dtype === "f64") data.fill(NaN);
    return new RefBuf(dtype, size, data);
  }
  write(buf: Buf, data: HostArray, offset = 0): void {
    d(buf).set(data as ArrayLike<number>, offset);
  }
  readSync(buf: Buf): HostArray {
    return d(buf).slice();
  }
  read(buf: Buf): Promise<HostArray> {
    return Promise.resolve(this.readSync(buf));
  }
  dispose(buf: Buf): void {
    const b = buf as RefBuf;
    if (b.disposed) return;
    b.disposed = true;
    b.data = new Float32Array(0);
    this.live--;
  }
  liveBuffers(): number {
    return this.live;
  }
  setThreads(_n: number): void {}
  threads(): number {
    return 1;
  }

  fill(out: Buf, value: number): void {
    d(out).fill(value);
  }

  cast(x: Buf, out: Buf): void {
    const src = d(x);
    const dst = d(out);
    const load = x.dtype === "f16" ? f16ToF32 : x.dtype === "bf16" ? bf16ToF32 : (v: number) => v;
    const store = out.dtype === "f16" ? f32ToF16 : out.dtype === "bf16" ? f32ToBf16 : (v: number) => v;
    for (let i = 0; i < x.size; i++) dst[i] = store(load(src[i]));
  }

  unary(op: UnaryOp, x: Buf, out: Buf, alpha: number): void {
    const fn = UNARY[op].fwd;
    const a = f(x);
    const o = f(out);
    for (let i = 0; i < x.size; i++) o[i] = fn(a[i], alpha);
  }

  unaryGrad(op: UnaryOp, x: Buf, g: Buf, out: Buf, alpha: number): void {
    const der = UNARY[op].der;
    const a = f(x);
    const gg = f(g);
    const o = f(out);
    for (let i = 0; i < x.size; i++) o[i] = gg[i] * der(a[i], alpha);
  }

  binary(op: BinaryOp, a: Buf, aShape: number[], b: Buf, bShape: number[], out: Buf, outShape: number[]): void {
    const fn = BINARY[op];
    const A = f(a);
    const B = f(b);
    const O = f(out);
    forEachBroadcast(outShape, bstrides(aShape, outShape), bstrides(bShape, outShape), (o, ia, ib) => {
      O[o] = fn(A[ia], B[ib]);
    });
  }

  sumTo(x: Buf, xShape: number[], out: Buf, outShape: number[]): void {
    const X = f(x);
    const acc = new Float64Array(out.size);
    forEachBroadcast(
      xShape,
      xShape.map(() => 0),
      bstrides(outShape, xShape),
      (o, _ia, ib) => {
        acc[ib] += X[o];
      },
    );
    f(out).set(acc);
  }

  reduce(op: ReduceOp, x: Buf, outer: number, n: number, inner: number, out: Buf): void {
    const X = f(x);
    const O = f(out);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let acc = op === "sum" ? 0 : -Infinity;
        for (let i = 0; i < n; i++) {
          const v = X[(o * n + i) * inner + j];
          if (op === "sum") acc += v;
          else if (v > acc || Number.isNaN(v)) acc = v;
        }
        O[o * inner + j] = acc;
      }
    }
  }

  reduceMaxGrad(x: Buf, g: Buf, outer: number, n: number, inner: number, out: Buf): void {
    const X = f(x);
    const G = f(g);
    const O = f(out);
    O.fill(0);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let best = 0;
        for (let i = 1; i < n; i++) {
          if (X[(o * n + i) * inner + j] > X[(o * n + best) * inner + j]) best = i;
        }
        O[(o * n + best) * inner + j] = G[o * inner + j];
      }
    }
  }

  matmul(a: Buf, b: Buf, out: Buf, p: MatmulParams): void {
    const A = f(a);
    const B = f(b);
    const C = f(out);
    const { m, n, k } = p;
    for (let bi = 0; bi < p.batch; bi++) {
      const a0 = bi * p.strideA;
      const b0 = bi * p.strideB;
      const c0 = bi * m * n;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let l = 0; l < k; l++) {
            const av = p.transA ? A[a0 + l * m + i] : A[a0 + i * k + l];
            const bv = p.transB ? B[b0 + j * k + l] : B[b0 + l * n + j];
            acc += av * bv;
          }
          C[c0 + i * n + j] = p.accumulate ? C[c0 + i * n + j] + acc : acc;
        }
      }
    }
  }

  permute(x: Buf, shape: number[], perm: number[], out: Buf): void {
    const X = d(x);
    const O = d(out);
    const inSt = bstrides(shape, shape);
    const outShape = perm.map((p) => shape[p]);
    const st = perm.map((p) => inSt[p]); // input stride for each output dim
    forEachBroadcast(outShape, st, st, (o, ia) => {
      O[o] = X[ia];
    });
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
    const S = d(src);
    const D = d(dst);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < len; i++) {
        const s0 = (o * srcDim + srcStart + i) * inner;
        const d0 = (o * dstDim + dstStart + i) * inner;
        for (let j = 0; j < inner; j++) D[d0 + j] = accumulate ? D[d0 + j] + S[s0 + j] : S[s0 + j];
      }
    }
  }

  gather(table: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void {
    const T = f(table);
    const I = ints(ids);
    const O = f(out);
    for (let i = 0; i < n; i++) {
      const id = I[i];
      if (id < 0 || id >= v) throw new IndexError(`gather: id ${id} at index ${i} is outside [0, ${v})`);
      for (let j = 0; j < c; j++) O[i * c + j] = T[id * c + j];
    }
  }

  scatterAdd(g: Buf, ids: Buf, out: Buf, n: number, v: number, c: number): void {
    const G = f(g);
    const I = ints(ids);
    const O = f(out);
    for (let i = 0; i < n; i++) {
      const id = I[i];
      if (id < 0 || id >= v) throw new IndexError(`scatterAdd: id ${id} at index ${i} is outside [0, ${v})`);
      for (let j = 0; j < c; j++) O[id * c + j] += G[i * c + j];
    }
  }

  rmsnorm(x: Buf, w: Buf, out: Buf, rstd: Buf, n: number, c: number, eps: number): void {
    const X = f(x);
    const W = f(w);
    const O = f(out);
    const R = f(rstd);
    for (let r = 0; r < n; r++) {
      let ss = 0;
      for (let j = 0; j < c; j++) ss += X[r * c + j] ** 2;
      const rs = 1 / Math.sqrt(ss / c + eps);
      R[r] = rs;
      for (let j = 0; j < c; j++) O[r * c + j] = X[r * c + j] * rs * W[j];
    }
  }

  // y_j = x_j r w_j with r = (mean(x^2) + eps)^-1/2:  dx_j = r (g_j w_j - x_j r^2 mean_k(g_k w_k x_k));  dw_j = sum_rows g_j x_j r
  rmsnormGrad(x: Buf, w: Buf, rstd: Buf, g: Buf, dx: Buf, dw: Buf, n: number, c: number): void {
    const X = f(x);
    const W = f(w);
    const R = f(rstd);
    const G = f(g);
    const DX = f(dx);
    const dwAcc = new Float64Array(c);
    for (let r = 0; r < n; r++) {
      const rs = R[r];
      let dot = 0;
      for (let j = 0; j < c; j++) dot += G[r * c + j] * W[j] * X[r * c + j];
      const k = (rs * rs * rs * dot) / c;
      for (let j = 0; j < c; j++) {
        DX[r * c + j] = rs * G[r * c + j] * W[j] - k * X[r * c + j];
        dwAcc[j] += G[r * c + j] * X[r * c + j] * rs;
      }
    }
    f(dw).set(dwAcc);
  }

  rope(
    x: Buf,
    cos: Buf,
    sin: Buf,
    pos: Buf,
    out: Buf,
    b: number,
    t: number,
    h: number,
    dd: number,
    inverse: boolean,
  ): void {
    const X = f(x);
    const Cs = f(cos);
    const Sn = f(sin);
    const P = ints(pos);
    const O = f(out);
    const half = dd / 2;
    const maxPos = cos.size / half;
    for (let bt = 0; bt < b * t; bt++) {
      const p = P[bt];
      if (p < 0 || p >= maxPos) throw new IndexError(`rope: position ${p} at index ${bt} is outside [0, ${maxPos})`);
      for (let hh = 0; hh < h; hh++) {
        const base = (bt * h + hh) * dd;
        for (let i = 0; i < half; i++) {
          const c = Cs[p * half + i];
          const s = inverse ? -Sn[p * half + i] : Sn[p * half + i];
          const x1 = X[base + i];
          const x2 = X[base + i + half];
          O[base + i] = x1 * c - x2 * s;
          O[base + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  /** Calls fn(j) for each key j that query i of batch item bi may see. */
  private visibleKeys(mask: Int32Array | null, p: AttentionParams, bi: number, i: number): number[] {
    const last = p.causal ? p.tk - p.tq + i : p.tk - 1;
    const keys: number[] = [];
    for (let j = 0; j <= Math.min(last, p.tk - 1); j++) if (mask?.[bi * p.tk + j] !== 0) keys.push(j);
    return keys;
  }

  attention(q: Buf, k: Buf, v: Buf, keyMask: Buf | null, out: Buf, lse: Buf, p: AttentionParams): void {
    const Q = f(q);
    const K = f(k);
    const V = f(v);
    const O = f(out);
    const L = f(lse);
    const M = keyMask ? ints(keyMask) : null;
    const { b, tq, tk, h, hkv, d: D } = p;
    const group = h / hkv;
    for (let bi = 0; bi < b; bi++) {
      for (let hh = 0; hh < h; hh++) {
        const g = Math.floor(hh / group);
        for (let i = 0; i < tq; i++) {
          const qo = ((bi * tq + i) * h + hh) * D;
          const oo = qo;
          const keys = this.visibleKeys(M, p, bi, i);
          const s = keys.map((j) => {
            const ko = ((bi * tk + j) * hkv + g) * D;
            let dot = 0;
            for (let e = 0; e < D; e++) dot += Q[qo + e] * K[ko + e];
            return dot * p.scale;
          });
          const mx = Math.max(...s);
          let z = 0;
          for (const sj of s) z += Math.exp(sj - mx);
          const lseVal = keys.length ? mx + Math.log(z) : -Infinity;
          L[(bi * h + hh) * tq + i] = lseVal;
          const acc = new Float64Array(D);
          keys.forEach((j, idx) => {
            const pj = Math.exp(s[idx] - lseVal);
            const vo = ((bi * tk + j) * hkv + g) * D;
            for (let e = 0; e < D; e++) acc[e] += pj * V[vo + e];
          });
          for (let e = 0; e < D; e++) O[oo + e] = acc[e];
        }
      }
    }
  }

  // P = softmax(S), S = scale Q K^T.  dV = P^T dO;  dP = dO V^T;  dS = P (dP - rowsum(dO * O));  dQ = scale dS K;  dK = scale dS^T Q
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
    const Q = f(q);
    const K = f(k);
    const V = f(v);
    const O = f(out);
    const L = f(lse);
    const G = f(g);
    const M = keyMask ? ints(keyMask) : null;
    const { b, tq, tk, h, hkv, d: D } = p;
    const group = h / hkv;
    const dQ = new Float64Array(dq.size);
    const dK = new Float64Array(dk.size);
    const dV = new Float64Array(dv.size);
    for (let bi = 0; bi < b; bi++) {
      for (let hh = 0; hh < h; hh++) {
        const gh = Math.floor(hh / group);
        for (let i = 0; i < tq; i++) {
          const qo = ((bi * tq + i) * h + hh) * D;
          const lseVal = L[(bi * h + hh) * tq + i];
          let di = 0;
          for (let e = 0; e < D; e++) di += G[qo + e] * O[qo + e];
          for (const j of this.visibleKeys(M, p, bi, i)) {
            const ko = ((bi * tk + j) * hkv + gh) * D;
            let sdot = 0;
            let dp = 0;
            for (let e = 0; e < D; e++) {
              sdot += Q[qo + e] * K[ko + e];
              dp += G[qo + e] * V[ko + e];
            }
            const pj = Math.exp(sdot * p.scale - lseVal);
            const ds = pj * (dp - di);
            for (let e = 0; e < D; e++) {
              dQ[qo + e] += p.scale * ds * K[ko + e];
              dK[ko + e] += p.scale * ds * Q[qo + e];
              dV[ko + e] += pj * G[qo + e];
            }
          }
        }
      }
    }
    f(dq).set(dQ);
    f(dk).set(dK);
    f(dv).set(dV);
  }

  private rowLse(X: Float32Array | Float64Array, r: number, v: number): number {
    let mx = -Infinity;
    for (let j = 0; j < v; j++) if (X[r * v + j] > mx) mx = X[r * v + j];
    if (mx === -Infinity) return -Infinity;
    let z = 0;
    for (let j = 0; j < v; j++) z += Math.exp(X[r * v + j] - mx);
    return mx + Math.log(z);
  }

  logSoftmax(x: Buf, out: Buf, n: number, v: number): void {
    const X = f(x);
    const O = f(out);
    for (let r = 0; r < n; r++) {
      const lse = this.rowLse(X, r, v);
      for (let j = 0; j < v; j++) O[r * v + j] = X[r * v + j] - lse;
    }
  }

  // y = x - lse(x):  dx_j = g_j - softmax_j sum_k g_k
  logSoftmaxGrad(y: Buf, g: Buf, dx: Buf, n: number, v: number): void {
    const Y = f(y);
    const G = f(g);
    const DX = f(dx);
    for (let r = 0; r < n; r++) {
      let sg = 0;
      for (let j = 0; j < v; j++) sg += G[r * v + j];
      for (let j = 0; j < v; j++) DX[r * v + j] = G[r * v + j] - Math.exp(Y[r * v + j]) * sg;
    }
  }

  tokenLogprobs(logits: Buf, targets: Buf, out: Buf, lse: Buf, n: number, v: number): void {
    const X = f(logits);
    const T = ints(targets);
    const O = f(out);
    const L = f(lse);
    for (let r = 0; r < n; r++) {
      const l = this.rowLse(X, r, v);
      L[r] = l;
      const t = T[r];
      if (t >= v) throw new IndexError(`tokenLogprobs: target ${t} at row ${r} is outside [0, ${v})`);
      O[r] = t < 0 ? 0 : X[r * v + t] - l;
    }
  }

  // out = x_t - lse(x):  dx_j = g (1[j = t] - softmax_j)
  tokenLogprobsGrad(logits: Buf, targets: Buf, lse: Buf, g: Buf, dlogits: Buf, n: number, v: number): void {
    const X = f(logits);
    const T = ints(targets);
    const L = f(lse);
    const G = f(g);
    const DX = f(dlogits);
    for (let r = 0; r < n; r++) {
      const t = T[r];
      for (let j = 0; j < v; j++) {
        DX[r * v + j] = t < 0 ? 0 : G[r] * ((j === t ? 1 : 0) - Math.exp(X[r * v + j] - L[r]));
      }
    }
  }

  // PyTorch AdamW: p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
  //                p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  adamw(param: Buf, grad: Buf, m: Buf, v: Buf, p: AdamWParams): void {
    const P = f(param);
    const G = f(grad);
    const Mm = f(m);
    const Vv = f(v);
    const bc1 = 1 - p.beta1 ** p.step;
    const bc2 = Math.sqrt(1 - p.beta2 ** p.step);
    const stepSize = p.lr / bc1;
    const decay = 1 - p.lr * p.weightDecay;
    for (let i = 0; i < param.size; i++) {
      const gi = G[i];
      Mm[i] = p.beta1 * Mm[i] + (1 - p.beta1) * gi;
      Vv[i] = p.beta2 * Vv[i] + (1 - p.beta2) * gi * gi;
      P[i] = P[i] * decay - (stepSize * Mm[i]) / (Math.sqrt(Vv[i]) / bc2 + p.eps);
    }
  }

  sumSquares(x: Buf, out: Buf, accumulate: boolean): void {
    const X = f(x);
    let acc = 0;
    for (let i = 0; i < x.size; i++) acc += X[i] * X[i];
    const O = f(out);
    O[0] = accumulate ? O[0] + acc : acc;
  }
}
