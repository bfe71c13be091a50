// GEMM and kernel throughput of the native backend (run after `npm run build` and `npm run build:native`):
//   node scripts/bench-gemm.mjs [threads]
// Prints median and best GFLOP/s per shape, and the measured FMA peak. Other load on the machine lowers medians.
import { loadNative, nativeLoadError } from "../dist/backend/native.js";

const nb = loadNative();
if (!nb) {
  console.error(`native backend unavailable: ${nativeLoadError()}`);
  process.exit(1);
}
if (process.argv[2]) nb.setThreads(Number(process.argv[2]));
console.log(`threads ${nb.threads()}, FMA peak ${nb.fmaPeakGflops().toFixed(1)} GFLOP/s`);

function filled(n) {
  const b = nb.alloc(n, "f32");
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i) * 0.5;
  nb.write(b, a);
  return b;
}

function timeit(fn, work) {
  fn(); // warm-up: packing buffers, pool wake-up
  const times = [];
  const reps = Math.max(5, Math.min(200, Math.ceil(3e9 / work)));
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return { median: times[times.length >> 1], best: times[0] };
}

const shapes = [
  [256, 256, 256, false, false],
  [512, 512, 512, false, false],
  [1024, 1024, 1024, false, false],
  [2048, 1024, 256, false, false],
  [512, 512, 512, true, false],
  [512, 512, 512, false, true],
];
for (const [m, n, k, transA, transB] of shapes) {
  const a = filled(m * k);
  const b = filled(k * n);
  const c = nb.alloc(m * n, "f32");
  const p = { batch: 1, m, n, k, transA, transB, strideA: 0, strideB: 0, accumulate: false };
  const flops = 2 * m * n * k;
  const t = timeit(() => nb.matmul(a, b, c, p), flops);
  console.log(
    `matmul M=${m} N=${n} K=${k}${transA ? " transA" : ""}${transB ? " transB" : ""}: ` +
      `median ${(flops / t.median / 1e9).toFixed(1)} GFLOP/s, best ${(flops / t.best / 1e9).toFixed(1)}`,
  );
  for (const x of [a, b, c]) nb.dispose(x);
}

// A few memory-bound kernels on 1M elements and a causal attention (B=1, T=512, H=8, D=64).
const N = 1 << 20;
const x = filled(N);
const y = filled(N);
const o = nb.alloc(N, "f32");
const ms = (t) => `${(t.median * 1e3).toFixed(3)} ms`;
console.log(`unary silu 1M: ${ms(timeit(() => nb.unary("silu", x, o, 0), N * 20))}`);
console.log(`unary exp 1M: ${ms(timeit(() => nb.unary("exp", x, o, 0), N * 20))}`);
console.log(
  `binary mul 1M: ${ms(timeit(() => nb.binary("mul", x, [1024, 1024], y, [1024, 1024], o, [1024, 1024]), N * 20))}`,
);
const m1 = nb.alloc(N, "f32");
const v1 = nb.alloc(N, "f32");
const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
console.log(`adamw 1M: ${ms(timeit(() => nb.adamw(o, x, m1, v1, adam), N * 20))}`);
const w = filled(1024);
const rstd = nb.alloc(1024, "f32");
console.log(`rmsnorm 1024x1024: ${ms(timeit(() => nb.rmsnorm(x, w, o, rstd, 1024, 1024, 1e-5), N * 20))}`);
console.log(`logSoftmax 64x16384: ${ms(timeit(() => nb.logSoftmax(x, o, 64, 16384), N * 20))}`);
const [T, H, D] = [512, 8, 64];
const q = filled(T * H * D);
const k = filled(T * H * D);
const v = filled(T * H * D);
const out = nb.alloc(T * H * D, "f32");
const lse = nb.alloc(H * T, "f32");
const dq = nb.alloc(T * H * D, "f32");
const dk = nb.alloc(T * H * D, "f32");
const dv = nb.alloc(T * H * D, "f32");
const ap = { b: 1, tq: T, tk: T, h: H, hkv: H, d: D, scale: 1 / 8, causal: true };
const attnFlops = (2 * 2 * H * T * T * D) / 2; // causal: half of QK^T and PV
const ta = timeit(() => nb.attention(q, k, v, null, out, lse, ap), attnFlops);
const tg = timeit(() => nb.attentionGrad(q, k, v, null, out, lse, out, dq, dk, dv, ap), 2 * attnFlops);
console.log(
  `attention T=${T} H=${H} D=${D} causal: fwd ${ms(ta)} (${(attnFlops / ta.median / 1e9).toFixed(1)} GFLOP/s useful), ` +
    `bwd ${ms(tg)} (${((2.5 * attnFlops) / tg.median / 1e9).toFixed(1)} GFLOP/s useful)`,
);
