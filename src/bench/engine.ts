// `stepwise bench engine`: FMA peak, GEMM throughput and one training step of a small Llama-style decoder.

import type { Backend } from "../backend/backend.js";
import { Rng } from "../core/rng.js";
import { backward } from "../engine/autograd.js";
import { crossEntropy } from "../engine/nn.js";
import { AdamW, zeroGrad } from "../engine/optim.js";
import { tensor, tidy } from "../engine/tensor.js";
import { Llama, trainFlops, type LlamaConfig } from "../model/llama.js";
import { timeMedian } from "./stats.js";

export interface GemmResult {
  m: number;
  k: number;
  n: number;
  gflops: number;
}
export interface TrainStepResult {
  layers: number;
  d_model: number;
  heads: number;
  seq: number;
  batch: number;
  vocab: number;
  params: number;
  flops: number;
  ms: number;
  tokens_per_s: number;
  gflops: number;
}
export interface EngineBench {
  backend: string;
  fma_peak_gflops: number | null;
  threads: number;
  gemm: GemmResult[];
  train_step: TrainStepResult;
}

export const GEMM_SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [2048, 256, 1024],
];

/** The benchmark decoder: 4 layers, d_model 256, 4 heads, vocab 64; MLP 688 (about 8/3 d_model, as in Llama). */
export const BENCH_MODEL: LlamaConfig = {
  vocab_size: 64,
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 128,
  tie_word_embeddings: false,
  attention_bias: false,
};

function randomBuf(be: Backend, n: number, rng: Rng) {
  const buf = be.alloc(n, "f32");
  const host = new Float32Array(n);
  for (let i = 0; i < n; i++) host[i] = rng.uniform(-1, 1);
  be.write(buf, host);
  return buf;
}

export function benchGemm(be: Backend, m: number, k: number, n: number, minMs = 400): GemmResult {
  const rng = new Rng(1);
  const a = randomBuf(be, m * k, rng);
  const b = randomBuf(be, k * n, rng);
  const c = be.alloc(m * n, "f32");
  const params = { batch: 1, m, n, k, transA: false, transB: false, strideA: 0, strideB: 0, accumulate: false };
  const ms = timeMedian(
    () => {
      be.matmul(a, b, c, params);
      be.readSync(c).length; // wait for the kernel on asynchronous backends
    },
    { minMs, minReps: be.name === "reference" ? 1 : 5, warmup: be.name === "reference" ? 0 : 2 },
  );
  for (const x of [a, b, c]) be.dispose(x);
  return { m, k, n, gflops: (2 * m * n * k) / (ms * 1e6) };
}

export function benchTrainStep(be: Backend, cfg = BENCH_MODEL, batch = 8, seq = 128, reps = 10): TrainStepResult {
  const model = new Llama(cfg, { seed: 1, backend: be });
  const opt = new AdamW(model.parameters(), { lr: 1e-4 });
  const rng = new Rng(2);
  const tokens = Array.from({ length: batch * (seq + 1) }, () => rng.int(cfg.vocab_size));
  const rows = (off: number) =>
    Array.from({ length: batch * seq }, (_, i) => tokens[Math.floor(i / seq) * (seq + 1) + (i % seq) + off]);
  const ids = tensor(rows(0), [batch, seq], "i32", be);
  const targets = tensor(rows(1), [batch, seq], "i32", be);
  const step = () => {
    zeroGrad(model.parameters());
    tidy(() => {
      const loss = crossEntropy(model.forward(ids), targets);
      backward(loss);
      return loss.item();
    });
    opt.step();
  };
  const ms = timeMedian(step, { warmup: 2, minReps: reps, minMs: 0, maxReps: reps });
  const flops = trainFlops(cfg, batch, seq);
  const result: TrainStepResult = {
    layers: cfg.num_hidden_layers,
    d_model: cfg.hidden_size,
    heads: cfg.num_attention_heads,
    seq,
    batch,
    vocab: cfg.vocab_size,
    params: model.numParams(),
    flops,
    ms,
    tokens_per_s: (batch * seq) / (ms / 1000),
    gflops: flops / (ms * 1e6),
  };
  ids.dispose();
  targets.dispose();
  opt.dispose();
  model.dispose();
  return result;
}

export function benchEngine(be: Backend, opts: { quick?: boolean } = {}): EngineBench {
  const peak = (be as Backend & { fmaPeakGflops?: () => number }).fmaPeakGflops?.() ?? null;
  const shapes = opts.quick ? GEMM_SHAPES.slice(0, 2) : GEMM_SHAPES;
  return {
    backend: be.name,
    fma_peak_gflops: peak,
    threads: be.threads(),
    gemm: shapes.map(([m, k, n]) => benchGemm(be, m, k, n)),
    train_step: benchTrainStep(be, BENCH_MODEL, 8, 128, opts.quick ? 3 : 10),
  };
}
