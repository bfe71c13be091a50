// Parity of every native kernel with the reference backend (the spec), on seeded random inputs over odd shapes,
// broadcasting, transposes, batch strides, GQA attention with a KV prefix and padding. Each check prints the
// largest absolute and relative difference and fails when an element is off by more than atol + rtol * |ref|;
// a parity test that compares nothing fails too.
// Skipped, with the reason, when the addon is not built (npm run build:native).

import { test } from "node:test";
import assert from "node:assert/strict";
import type { AttentionParams, Backend, Buf, DType, FusedKernels, HostArray, MatmulParams } from "./backend.js";
import { BINARY_OPS, UNARY_OPS } from "./backend.js";
import { ReferenceBackend } from "./reference.js";
import { loadNative, nativeLoadError } from "./native.js";
import { Rng } from "../core/rng.js";
import { DisposedError, DTypeError, IndexError, ShapeError } from "../core/errors.js";

const ref = new ReferenceBackend();
const nat = loadNative();
const skipMsg = `native addon not built (${nativeLoadError()}); run npm run build:native`;

interface Tol {
  atol: number;
  rtol: number;
}
const EXACT: Tol = { atol: 0, rtol: 0 };
const ULP: Tol = { atol: 1e-30, rtol: 2.5e-7 }; // one float32 rounding apart
const FP: Tol = { atol: 1e-6, rtol: 1e-5 }; // float32 vs double arithmetic: a few ulp

/** Runs fn(be, bufs) on both backends with the same inputs; compares the buffers named in `outs`. */
class Pair {
  readonly r: Buf[] = [];
  readonly n: Buf[] = [];
  constructor(private readonly name: string) {}
  /** Uploads the same data to both backends; returns its index. */
  add(data: HostArray, dtype: DType = "f32"): number {
    for (const [be, list] of [
      [ref, this.r],
      [nat!, this.n],
    ] as const) {
      const b = be.alloc(data.length, dtype);
      be.write(b, data);
      list.push(b);
    }
    return this.r.length - 1;
  }
  zeros(size: number, dtype: DType = "f32"): number {
    return this.add(hostOf(dtype, size), dtype);
  }
  run(fn: (be: Backend & FusedKernels, b: Buf[]) => void): void {
    fn(ref, this.r);
    fn(nat!, this.n);
  }
  check(idx: number, tol: Tol, label = ""): void {
    compare(`${this.name}${label ? " " + label : ""}`, ref.readSync(this.r[idx]), nat!.readSync(this.n[idx]), tol);
  }
  dispose(): void {
    for (const b of this.r) ref.dispose(b);
    for (const b of this.n) nat!.dispose(b);
  }
}

function hostOf(dtype: DType, size: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(size);
    case "f64":
      return new Float64Array(size);
    case "i32":
      return new Int32Array(size);
    default:
      return new Uint16Array(size);
  }
}

let comparisons = 0; // made so far, so that each parity test can check it compared something

function compare(name: string, want: HostArray, got: HostArray, tol: Tol): void {
  assert.equal(got.length, want.length, `${name}: length`);
  let maxAbs = 0;
  let maxRel = 0;
  let bad = -1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    const g = got[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g) && bad < 0) bad = i;
      continue;
    }
    if (w === g) continue;
    const diff = Math.abs(w - g);
    if (!Number.isFinite(diff)) {
      if (bad < 0) bad = i;
      continue;
    }
    maxAbs = Math.max(maxAbs, diff);
    maxRel = Math.max(maxRel, diff / Math.max(Math.abs(w), 1e-30));
    if (diff > tol.atol + tol.rtol * Math.abs(w) && bad < 0) bad = i;
  }
  const line = `${name}: n=${want.length} max abs ${maxAbs.toExponential(2)} max rel ${maxRel.toExponential(2)}`;
  comparisons++;
  console.log(line);
  assert.ok(
    bad < 0,
    `${name}: element ${bad} is ${got[bad]}, reference ${want[bad]} (atol ${tol.atol}, rtol ${tol.rtol})`,
  );
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
function uniform(rng: Rng, n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}
function ints(rng: Rng, n: number, lo: number, hi: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + rng.int(hi - lo);
  return a;
}
const prod = (s: number[]) => s.reduce((p, x) => p * x, 1);

/** Declares a parity test that is skipped when the addon is missing. */
function parity(name: string, fn: (rng: Rng) => void): void {
  test(`native parity: ${name}`, (t) => {
    if (!nat) return t.skip(skipMsg);
    const live = nat.liveBuffers();
    const before = comparisons;
    fn(new Rng(1234));
    assert.ok(comparisons > before, `${name} compared no output`);
    assert.equal(nat.liveBuffers(), live, `${name} leaked native buffers`);
  });
}

parity("fill and cast", () => {
  for (const dtype of ["f32", "f64", "i32", "f16", "bf16"] as const) {
    const p = new Pair(`fill ${dtype}`);
    const o = p.zeros(37, dtype);
    // f16/bf16 are storage only; the reference fills their raw bits, so only 0 means the same on both.
    const value = dtype === "i32" ? -7 : dtype === "f16" || dtype === "bf16" ? 0 : 1.337;
    p.run((be, b) => be.fill(b[o], value));
    p.check(o, EXACT);
    p.dispose();
  }
  const special = [
    0,
    -0,
    1,
    -1,
    0.1,
    65504,
    65520,
    1e-8,
    6e-5,
    3.4e38,
    Infinity,
    -Infinity,
    NaN,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
  ];
  const rng = new Rng(7);
  const src = new Float32Array([...special, ...randn(rng, 300, 100)]);
  for (const to of ["f16", "bf16", "f64", "f32"] as const) {
    const p = new Pair(`cast f32->${to}->f32`);
    const x = p.add(src);
    const mid = p.zeros(src.length, to);
    const back = p.zeros(src.length);
    p.run((be, b) => {
      be.cast(b[x], b[mid]);
      be.cast(b[mid], b[back]);
    });
    p.check(mid, EXACT, "(stored)");
    p.check(back, EXACT);
    p.dispose();
  }
  const p = new Pair("cast i32->f32");
  const x = p.add(ints(rng, 99, -1 << 30, 1 << 30), "i32");
  const o = p.zeros(99);
  p.run((be, b) => be.cast(b[x], b[o]));
  p.check(o, EXACT);
  p.dispose();
});

/** Inputs in each op's domain, with its alpha values. */
function unaryCases(op: string, rng: Rng, n: number): { x: Float32Array; alphas: number[] } {
  switch (op) {
    case "log":
    case "sqrt":
    case "rsqrt":
      return { x: uniform(rng, n, 0.01, 50), alphas: [0] };
    case "powScalar":
      return { x: uniform(rng, n, 0.05, 4), alphas: [2, 0.5, 3, -1.5] };
    case "exp":
      return { x: uniform(rng, n, -85, 85), alphas: [0] }; // g * e^x stays below the float32 overflow
    case "scale":
      return { x: randn(rng, n, 3), alphas: [0.7, -2] };
    case "addScalar":
      return { x: randn(rng, n, 3), alphas: [-1.3] };
    default:
      return { x: randn(rng, n, 4), alphas: [0] };
  }
}

parity("unary and unaryGrad, every op", (rng) => {
  for (const op of UNARY_OPS) {
    for (const n of [1, 17, 257, 4099]) {
      const { x, alphas } = unaryCases(op, rng, n);
      if (n === 17 && op !== "log" && op !== "sqrt" && op !== "rsqrt" && op !== "powScalar") {
        x.set([0, -0, 100, -100, NaN, Infinity, -Infinity].slice(0, 7)); // specials in a tail-sized array
      }
      for (const alpha of alphas) {
        const p = new Pair(`${op}(alpha=${alpha}) n=${n}`);
        const xi = p.add(x);
        const gi = p.add(randn(rng, n));
        const o = p.zeros(n);
        const dx = p.zeros(n);
        p.run((be, b) => {
          be.unary(op, b[xi], b[o], alpha);
          be.unaryGrad(op, b[xi], b[gi], b[dx], alpha);
        });
        p.check(o, FP);
        p.check(dx, FP, "grad");
        p.dispose();
      }
    }
  }
});

parity("unary in place (out === x)", (rng) => {
  const p = new Pair("silu in place");
  const x = p.add(randn(rng, 1000));
  p.run((be, b) => be.unary("silu", b[x], b[x], 0));
  p.check(x, FP);
  p.dispose();
});

const BROADCASTS: [number[], number[], number[]][] = [
  [
    [33, 17],
    [33, 17],
    [33, 17],
  ],
  [
    [33, 17],
    [1, 1],
    [33, 17],
  ],
  [
    [1, 1],
    [33, 17],
    [33, 17],
  ],
  [
    [33, 17],
    [1, 17],
    [33, 17],
  ],
  [
    [33, 17],
    [33, 1],
    [33, 17],
  ],
  [
    [33, 1],
    [1, 17],
    [33, 17],
  ],
  [
    [3, 1, 17],
    [1, 5, 1],
    [3, 5, 17],
  ],
  [
    [2, 3, 4, 5],
    [2, 1, 4, 1],
    [2, 3, 4, 5],
  ],
  [[257], [257], [257]],
  [[1], [1], [1]],
  [
    [4, 1, 3],
    [4, 1, 3],
    [4, 1, 3],
  ],
];

parity("binary with broadcasting, every op", (rng) => {
  for (const op of BINARY_OPS) {
    for (const [as, bs, os] of BROADCASTS) {
      const p = new Pair(`${op} (${as}) (${bs})`);
      const av = randn(rng, prod(as));
      const bv = randn(rng, prod(bs));
      if (av.length > 5) av.set([NaN, 1, -0, 0, 2]);
      if (bv.length > 5) bv.set([1, NaN, 0, -0, 2]);
      const a = p.add(av);
      const b2 = p.add(bv);
      const o = p.zeros(prod(os));
      p.run((be, b) => be.binary(op, b[a], as, b[b2], bs, b[o], os));
      p.check(o, op === "div" ? ULP : EXACT);
      p.dispose();
    }
  }
});

parity("sumTo", (rng) => {
  const cases: [number[], number[]][] = [
    [
      [33, 17],
      [1, 17],
    ],
    [
      [33, 17],
      [33, 1],
    ],
    [
      [33, 17],
      [1, 1],
    ],
    [
      [33, 17],
      [33, 17],
    ],
    [
      [3, 5, 17],
      [3, 1, 17],
    ],
    [
      [3, 5, 17],
      [1, 5, 1],
    ],
    [
      [3, 5, 17],
      [3, 5, 1],
    ],
    [
      [2, 3, 4, 5],
      [2, 1, 4, 1],
    ],
    [
      [257, 300],
      [1, 300],
    ],
    [
      [1, 257],
      [1, 1],
    ],
  ];
  for (const [xs, os] of cases) {
    const p = new Pair(`sumTo (${xs}) -> (${os})`);
    const x = p.add(randn(rng, prod(xs)));
    const o = p.zeros(prod(os));
    p.run((be, b) => be.sumTo(b[x], xs, b[o], os));
    p.check(o, ULP);
    p.dispose();
  }
});

parity("reduce sum and max, reduceMaxGrad", (rng) => {
  for (const [outer, n, inner] of [
    [1, 257, 1],
    [3, 17, 33],
    [5, 1, 3],
    [33, 33, 1],
    [2, 300, 257],
    [4, 3, 1],
  ]) {
    const p = new Pair(`reduce (${outer}, ${n}, ${inner})`);
    const xv = randn(rng, outer * n * inner);
    for (let i = 0; i < xv.length; i += 3) xv[i] = Math.round(xv[i]); // ties for the max
    const x = p.add(xv);
    const g = p.add(randn(rng, outer * inner));
    const s = p.zeros(outer * inner);
    const m = p.zeros(outer * inner);
    const dg = p.zeros(outer * n * inner);
    p.run((be, b) => {
      be.reduce("sum", b[x], outer, n, inner, b[s]);
      be.reduce("max", b[x], outer, n, inner, b[m]);
      be.reduceMaxGrad(b[x], b[g], outer, n, inner, b[dg]);
    });
    p.check(s, ULP, "sum");
    p.check(m, EXACT, "max");
    p.check(dg, EXACT, "maxGrad");
    p.dispose();
  }
  const p = new Pair("reduce max with NaN");
  const xv = randn(rng, 3 * 40);
  xv[50] = NaN;
  const x = p.add(xv);
  const m = p.zeros(3);
  p.run((be, b) => be.reduce("max", b[x], 3, 40, 1, b[m]));
  p.check(m, EXACT);
  p.dispose();
});

function matmulCase(rng: Rng, mp: MatmulParams, label: string): void {
  const { batch, m, n, k } = mp;
  const p = new Pair(`matmul ${label}`);
  const a = p.add(uniform(rng, mp.strideA === 0 ? m * k : batch * m * k, -1, 1));
  const b2 = p.add(uniform(rng, mp.strideB === 0 ? k * n : batch * k * n, -1, 1));
  const c = p.add(uniform(rng, batch * m * n, -1, 1));
  p.run((be, b) => be.matmul(b[a], b[b2], b[c], mp));
  p.check(c, { atol: 2e-6 * Math.sqrt(k + 1), rtol: 1e-5 });
  p.dispose();
}

parity("matmul: transposes, edges, batch strides, accumulate", (rng) => {
  for (const [m, n, k] of [
    [1, 1, 1],
    [3, 17, 33],
    [33, 257, 17],
    [257, 33, 65],
    [17, 3, 1],
    [6, 16, 300],
    [64, 100, 0],
  ]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const accumulate of [false, true]) {
          const mp = { batch: 1, m, n, k, transA, transB, strideA: m * k, strideB: k * n, accumulate };
          matmulCase(rng, mp, `${m}x${n}x${k} tA=${transA} tB=${transB} acc=${accumulate}`);
        }
      }
    }
  }
  for (const [sa, sb] of [
    [1, 1],
    [0, 1],
    [1, 0],
  ]) {
    const [m, n, k] = [17, 33, 65];
    const mp = {
      batch: 3,
      m,
      n,
      k,
      transA: sa === 0,
      transB: sb === 0,
      strideA: sa * m * k,
      strideB: sb * k * n,
      accumulate: false,
    };
    matmulCase(rng, mp, `batch 3 strideA=${mp.strideA} strideB=${mp.strideB}`);
  }
  matmulCase(
    rng,
    { batch: 1, m: 200, n: 300, k: 257, transA: false, transB: false, strideA: 0, strideB: 0, accumulate: true },
    "200x300x257 (threaded)",
  );
  matmulCase(
    rng,
    {
      batch: 2,
      m: 130,
      n: 70,
      k: 513,
      transA: true,
      transB: true,
      strideA: 130 * 513,
      strideB: 70 * 513,
      accumulate: false,
    },
    "batch 2 130x70x513 tA tB (two K blocks)",
  );
});

// m <= 16 takes the unpacked path (B streamed, several rows of C at a time): every transpose case, K and N tails
// (K not a multiple of 8, N not a multiple of the tile), a broadcast batch, and a product large enough to thread.
parity("matmul with few rows: m = 1, 3, 16, transposes, tails, batches", (rng) => {
  let i = 0;
  for (const m of [1, 3, 16]) {
    for (const [n, k] of [
      [1, 1],
      [19, 13],
      [37, 64],
      [300, 131],
    ]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const accumulate = i++ % 3 === 0;
          const mp = { batch: 1, m, n, k, transA, transB, strideA: m * k, strideB: k * n, accumulate };
          matmulCase(rng, mp, `${m}x${n}x${k} tA=${transA} tB=${transB} acc=${accumulate}`);
        }
      }
    }
  }
  for (const transB of [false, true]) {
    matmulCase(
      rng,
      { batch: 3, m: 2, n: 45, k: 70, transA: true, transB, strideA: 0, strideB: 45 * 70, accumulate: false },
      `batch 3 2x45x70 tA shared A tB=${transB}`,
    );
    matmulCase(
      rng,
      { batch: 1, m: 16, n: 1000, k: 300, transA: false, transB, strideA: 0, strideB: 0, accumulate: false },
      `16x1000x300 tB=${transB} (threaded)`,
    );
  }
  matmulCase(
    rng,
    { batch: 1, m: 1, n: 3000, k: 577, transA: false, transB: true, strideA: 0, strideB: 0, accumulate: true },
    "1x3000x577 tB (threaded, accumulate)",
  );
});

parity("permute", (rng) => {
  const cases: [number[], number[]][] = [
    [
      [33, 17],
      [1, 0],
    ],
    [
      [2, 3, 4, 5],
      [0, 2, 1, 3],
    ],
    [
      [2, 3, 4, 5],
      [3, 2, 1, 0],
    ],
    [
      [2, 3, 4, 5],
      [1, 3, 0, 2],
    ],
    [
      [1, 17, 3],
      [2, 0, 1],
    ],
    [
      [70, 1, 40],
      [2, 1, 0],
    ],
    [[257], [0]],
    [
      [5, 7],
      [0, 1],
    ],
  ];
  for (const [shape, perm] of cases) {
    for (const dtype of ["f32", "i32", "f16"] as const) {
      const p = new Pair(`permute ${dtype} (${shape}) [${perm}]`);
      const size = prod(shape);
      const data =
        dtype === "f32"
          ? randn(rng, size)
          : dtype === "i32"
            ? ints(rng, size, -1000, 1000)
            : new Uint16Array(ints(rng, size, 0, 30000));
      const x = p.add(data, dtype);
      const o = p.zeros(size, dtype);
      p.run((be, b) => be.permute(b[x], shape, perm, b[o]));
      p.check(o, EXACT);
      p.dispose();
    }
  }
});

parity("copyRange", (rng) => {
  for (const accumulate of [false, true]) {
    const p = new Pair(`copyRange acc=${accumulate}`);
    const s = p.add(randn(rng, 3 * 7 * 5));
    const d = p.add(randn(rng, 3 * 9 * 5));
    p.run((be, b) => be.copyRange(b[s], 7, 2, b[d], 9, 4, 3, 4, 5, accumulate));
    p.check(d, EXACT);
    p.dispose();
  }
  const p = new Pair("copyRange i32");
  const s = p.add(ints(rng, 2 * 4 * 3, 0, 100), "i32");
  const d = p.zeros(2 * 6 * 3, "i32");
  p.run((be, b) => be.copyRange(b[s], 4, 0, b[d], 6, 2, 2, 4, 3, false));
  p.check(d, EXACT);
  p.dispose();
});

parity("gather and scatterAdd", (rng) => {
  for (const [n, v, c] of [
    [33, 17, 5],
    [1, 1, 1],
    [257, 50, 130],
  ]) {
    const p = new Pair(`gather/scatterAdd n=${n} v=${v} c=${c}`);
    const table = p.add(randn(rng, v * c));
    const ids = p.add(ints(rng, n, 0, v), "i32");
    const out = p.zeros(n * c);
    const g = p.add(randn(rng, n * c));
    const acc = p.add(randn(rng, v * c));
    p.run((be, b) => {
      be.gather(b[table], b[ids], b[out], n, v, c);
      be.scatterAdd(b[g], b[ids], b[acc], n, v, c);
    });
    p.check(out, EXACT, "gather");
    p.check(acc, EXACT, "scatterAdd");
    p.dispose();
  }
});

parity("rmsnorm and rmsnormGrad", (rng) => {
  for (const [n, c] of [
    [3, 1],
    [17, 17],
    [33, 257],
    [5, 1000],
  ]) {
    const p = new Pair(`rmsnorm n=${n} c=${c}`);
    const x = p.add(randn(rng, n * c, 2));
    const w = p.add(randn(rng, c));
    const out = p.zeros(n * c);
    const rstd = p.zeros(n);
    const g = p.add(randn(rng, n * c));
    const dx = p.zeros(n * c);
    const dw = p.add(randn(rng, c)); // overwritten
    p.run((be, b) => {
      be.rmsnorm(b[x], b[w], b[out], b[rstd], n, c, 1e-5);
      be.rmsnormGrad(b[x], b[w], b[rstd], b[g], b[dx], b[dw], n, c);
    });
    p.check(out, FP, "out");
    p.check(rstd, ULP, "rstd");
    p.check(dx, { atol: 1e-5, rtol: 1e-5 }, "dx");
    p.check(dw, { atol: 1e-5, rtol: 1e-5 }, "dw");
    p.dispose();
  }
});

parity("rope forward and inverse", (rng) => {
  for (const d of [2, 6, 18, 34]) {
    const [bb, t, h, P] = [2, 5, 3, 11];
    const p = new Pair(`rope d=${d}`);
    const x = p.add(randn(rng, bb * t * h * d));
    const cos = p.add(uniform(rng, (P * d) / 2, -1, 1));
    const sin = p.add(uniform(rng, (P * d) / 2, -1, 1));
    const pos = p.add(ints(rng, bb * t, 0, P), "i32");
    const out = p.zeros(bb * t * h * d);
    const inv = p.zeros(bb * t * h * d);
    p.run((be, b) => {
      be.rope(b[x], b[cos], b[sin], b[pos], b[out], bb, t, h, d, false);
      be.rope(b[x], b[cos], b[sin], b[pos], b[inv], bb, t, h, d, true);
    });
    p.check(out, FP);
    p.check(inv, FP, "inverse");
    p.dispose();
  }
});

function attentionCase(rng: Rng, ap: AttentionParams, maskZeros: number[] | null, label: string): void {
  const { b: B, tq, tk, h, hkv, d } = ap;
  const p = new Pair(`attention ${label}`);
  const q = p.add(randn(rng, B * tq * h * d));
  const k = p.add(randn(rng, B * tk * hkv * d));
  const v = p.add(randn(rng, B * tk * hkv * d));
  let mask: number | null = null;
  if (maskZeros) {
    const m = new Int32Array(B * tk).fill(1);
    for (const i of maskZeros) m[i] = 0;
    mask = p.add(m, "i32");
  }
  const out = p.zeros(B * tq * h * d);
  const lse = p.zeros(B * h * tq);
  const g = p.add(randn(rng, B * tq * h * d));
  const dq = p.add(randn(rng, B * tq * h * d)); // all overwritten
  const dk = p.add(randn(rng, B * tk * hkv * d));
  const dv = p.add(randn(rng, B * tk * hkv * d));
  p.run((be, bs) => {
    const mk = mask === null ? null : bs[mask];
    be.attention(bs[q], bs[k], bs[v], mk, bs[out], bs[lse], ap);
    be.attentionGrad(bs[q], bs[k], bs[v], mk, bs[out], bs[lse], bs[g], bs[dq], bs[dk], bs[dv], ap);
  });
  const tol = { atol: 2e-5, rtol: 1e-4 };
  p.check(out, tol, "out");
  p.check(lse, tol, "lse");
  p.check(dq, tol, "dq");
  p.check(dk, tol, "dk");
  p.check(dv, tol, "dv");
  p.dispose();
}

parity("attention and attentionGrad: causal, KV prefix, padding, GQA", (rng) => {
  const base = { b: 2, tq: 5, tk: 9, h: 4, hkv: 2, d: 8, causal: true };
  const cases: [Omit<AttentionParams, "scale">, number[] | null, string][] = [
    [base, null, "causal prefix GQA"],
    [base, [0, 1, 9, 12], "causal prefix GQA + padding"],
    [{ ...base, causal: false }, [3, 10], "non-causal + padding"],
    [{ b: 1, tq: 70, tk: 70, h: 3, hkv: 1, d: 17, causal: true }, null, "70x70 d=17 (two query blocks, split pairs)"],
    [{ b: 2, tq: 1, tk: 33, h: 6, hkv: 3, d: 16, causal: true }, [0, 5, 40], "decode step tq=1"],
    [{ b: 1, tq: 5, tk: 3, h: 2, hkv: 2, d: 4, causal: true }, null, "tq > tk: rows that see no key"],
    [{ b: 2, tq: 4, tk: 4, h: 2, hkv: 1, d: 8, causal: true }, [0, 1, 2], "padded first keys: empty rows"],
    [{ b: 3, tq: 100, tk: 130, h: 4, hkv: 2, d: 32, causal: true }, [130, 131, 260], "larger, 3 batches"],
  ];
  for (const [c, maskZeros, label] of cases) attentionCase(rng, { ...c, scale: 1 / Math.sqrt(c.d) }, maskZeros, label);
});

// Up to 16 query rows take the direct path (dot products over the visible keys, no packing): decode (tq = 1) and
// short continuations (tq = 2, 16) with KV prefixes, padding, GQA, head sizes with a tail (12) or past one 64-float
// chunk (72), rows that see no key, and a decode batch large enough to thread.
parity("attention with few query rows: tq = 1, 2, 16, masks, GQA", (rng) => {
  const cases: [Omit<AttentionParams, "scale">, number[] | null, string][] = [
    [
      { b: 3, tq: 1, tk: 40, h: 6, hkv: 2, d: 72, causal: true },
      [0, 1, 7, 45, 46, 80, 119],
      "tq=1 GQA 3:1 d=72 + padding",
    ],
    [
      { b: 2, tq: 1, tk: 9, h: 4, hkv: 1, d: 16, causal: true },
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
      "tq=1 a batch row with every key padded",
    ],
    [{ b: 2, tq: 2, tk: 21, h: 4, hkv: 4, d: 12, causal: true }, [3, 25], "tq=2 KV prefix d=12 + padding"],
    [{ b: 2, tq: 2, tk: 2, h: 2, hkv: 1, d: 8, causal: true }, [0], "tq=2 first row sees no key"],
    [{ b: 1, tq: 2, tk: 30, h: 4, hkv: 2, d: 32, causal: false }, [5, 6], "tq=2 non-causal + padding"],
    [{ b: 2, tq: 16, tk: 24, h: 3, hkv: 1, d: 20, causal: true }, [2, 30], "tq=16 (the last direct size) KV prefix"],
    [
      { b: 16, tq: 1, tk: 255, h: 9, hkv: 3, d: 64, causal: true },
      [0, 1, 300, 301, 302, 4000],
      "tq=1 SmolLM2 heads, batch 16 (threaded)",
    ],
  ];
  for (const [c, maskZeros, label] of cases) attentionCase(rng, { ...c, scale: 1 / Math.sqrt(c.d) }, maskZeros, label);
});

parity("logSoftmax, tokenLogprobs and their grads", (rng) => {
  for (const [n, v] of [
    [1, 1],
    [3, 17],
    [17, 257],
    [4, 5000],
  ]) {
    const p = new Pair(`softmax n=${n} v=${v}`);
    const x = p.add(randn(rng, n * v, 3));
    const y = p.zeros(n * v);
    const g = p.add(randn(rng, n * v));
    const dx = p.zeros(n * v);
    const targets = ints(rng, n, 0, v);
    if (n > 2) targets[1] = -1; // ignore index
    const t = p.add(targets, "i32");
    const lp = p.zeros(n);
    const lse = p.zeros(n);
    const gr = p.add(randn(rng, n));
    const dl = p.zeros(n * v);
    p.run((be, b) => {
      be.logSoftmax(b[x], b[y], n, v);
      be.logSoftmaxGrad(b[y], b[g], b[dx], n, v);
      be.tokenLogprobs(b[x], b[t], b[lp], b[lse], n, v);
      be.tokenLogprobsGrad(b[x], b[t], b[lse], b[gr], b[dl], n, v);
    });
    p.check(y, FP, "logSoftmax");
    p.check(dx, FP, "logSoftmaxGrad");
    p.check(lp, FP, "tokenLogprobs");
    p.check(lse, FP, "lse");
    p.check(dl, FP, "tokenLogprobsGrad");
    p.dispose();
  }
});

parity("adamw and sumSquares", (rng) => {
  for (const n of [1, 17, 4099]) {
    for (const step of [1, 10]) {
      const p = new Pair(`adamw n=${n} step=${step}`);
      const param = p.add(randn(rng, n));
      const grad = p.add(randn(rng, n, 0.1));
      const m = p.add(randn(rng, n, 0.01));
      const v = p.add(uniform(rng, n, 0, 1e-3));
      p.run((be, b) =>
        be.adamw(b[param], b[grad], b[m], b[v], {
          lr: 1e-3,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.1,
          step,
        }),
      );
      p.check(param, FP, "param");
      p.check(m, FP, "m");
      p.check(v, FP, "v");
      p.dispose();
    }
  }
  for (const n of [1, 257, 100_003]) {
    for (const accumulate of [false, true]) {
      const p = new Pair(`sumSquares n=${n} acc=${accumulate}`);
      const x = p.add(randn(rng, n));
      const o = p.add(new Float32Array([2.5]));
      p.run((be, b) => be.sumSquares(b[x], b[o], accumulate));
      p.check(o, ULP);
      p.dispose();
    }
  }
});

test("native: buffers, errors and thread-count invariance", (t) => {
  if (!nat) return t.skip(skipMsg);
  const live = nat.liveBuffers();
  const a = nat.alloc(10, "f32");
  const i = nat.alloc(3, "i32");
  assert.equal(nat.liveBuffers(), live + 2);
  nat.fill(a, 0); // alloc's contents are undefined (recycled memory); fill defines them
  assert.deepEqual(nat.readSync(a), new Float32Array(10));
  nat.write(a, new Float32Array([1, 2, 3]), 7);
  assert.deepEqual(Array.from(nat.readSync(a)), [0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
  assert.throws(() => nat.write(a, new Float32Array(4), 7), ShapeError);
  assert.throws(() => nat.write(a, new Int32Array(2)), DTypeError);
  nat.write(i, new Int32Array([0, 5, 1]));
  const out = nat.alloc(6, "f32");
  assert.throws(
    () => nat.gather(a, i, out, 3, 5, 2),
    (e: unknown) => e instanceof IndexError && /id 5 at index 1/.test(e.message),
  );
  assert.throws(() => nat.gather(i, i, out, 3, 5, 2), DTypeError);
  assert.throws(
    () =>
      nat.matmul(a, a, out, {
        batch: 1,
        m: 3,
        n: 3,
        k: 3,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: 0,
        accumulate: false,
      }),
    ShapeError,
  );
  nat.dispose(a);
  nat.dispose(a); // a second dispose is a no-op
  assert.throws(() => nat.readSync(a), DisposedError);
  nat.dispose(i);
  nat.dispose(out);
  assert.equal(nat.liveBuffers(), live);

  // The same matmul on 1 and 2 threads: bit-identical.
  const before = nat.threads();
  const results: HostArray[][] = [];
  for (const threads of [1, 2]) {
    nat.setThreads(threads);
    assert.equal(nat.threads(), threads);
    const [m, n, k] = [300, 257, 200];
    const x = nat.alloc(m * k, "f32");
    const y = nat.alloc(k * n, "f32");
    const c = nat.alloc(m * n, "f32");
    const r2 = new Rng(5);
    nat.write(x, randn(r2, m * k));
    nat.write(y, randn(r2, k * n));
    nat.matmul(x, y, c, { batch: 1, m, n, k, transA: false, transB: false, strideA: 0, strideB: 0, accumulate: false });
    results.push([nat.readSync(c)]);
    for (const b of [x, y, c]) nat.dispose(b);
  }
  assert.deepEqual(results[0][0], results[1][0], "matmul differs between 1 and 2 threads");
  nat.setThreads(before);
  assert.equal(nat.liveBuffers(), live);
});

test("native: few-row matmul and decode attention are bit-identical on 1 and 2 threads", (t) => {
  if (!nat) return t.skip(skipMsg);
  const before = nat.threads();
  const live = nat.liveBuffers();
  const upload = (data: HostArray, dtype: DType = "f32") => {
    const b = nat.alloc(data.length, dtype);
    nat.write(b, data);
    return b;
  };
  const runOnce = (threads: number): HostArray[] => {
    nat.setThreads(threads);
    const rng = new Rng(9);
    const outs: HostArray[] = [];
    for (const transB of [false, true]) {
      const [m, n, k] = [16, 1003, 300];
      const a = upload(randn(rng, m * k));
      const b = upload(randn(rng, n * k));
      const c = nat.alloc(m * n, "f32");
      nat.matmul(a, b, c, { batch: 1, m, n, k, transA: false, transB, strideA: 0, strideB: 0, accumulate: false });
      outs.push(nat.readSync(c));
      for (const x of [a, b, c]) nat.dispose(x);
    }
    const ap: AttentionParams = { b: 16, tq: 1, tk: 200, h: 9, hkv: 3, d: 64, scale: 0.125, causal: true };
    const q = upload(randn(rng, 16 * 9 * 64));
    const k = upload(randn(rng, 16 * 200 * 3 * 64));
    const v = upload(randn(rng, 16 * 200 * 3 * 64));
    const mask = upload(ints(rng, 16 * 200, 0, 2), "i32");
    const out = nat.alloc(16 * 9 * 64, "f32");
    const lse = nat.alloc(16 * 9, "f32");
    nat.attention(q, k, v, mask, out, lse, ap);
    outs.push(nat.readSync(out), nat.readSync(lse));
    for (const x of [q, k, v, mask, out, lse]) nat.dispose(x);
    return outs;
  };
  const one = runOnce(1);
  const two = runOnce(2);
  one.forEach((x, i) => assert.deepEqual(two[i], x, `output ${i} differs between 1 and 2 threads`));
  nat.setThreads(before);
  assert.equal(nat.liveBuffers(), live);
});
