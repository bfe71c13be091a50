// The bench suites behind one typed config: `benchConfig` validates the knobs once (errors name the flag or the
// key), `runBench(config, ctx)` runs the suite on the backend the config names, and `benchText` / `trainLine`
// write a result for a terminal. The JSON of each suite is its result as it stands (the issues name its fields).

import type { Backend } from "../backend/backend.js";
import { backendFor } from "../backend/index.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { progressOf, type StageContext } from "../core/stage.js";
import { benchEngine, type EngineBench } from "./engine.js";
import {
  benchGenerateVsLlamaCpp,
  GENERATE_BENCH_MODELS,
  type GenerateBenchModel,
  type GenerateBenchRow,
} from "./generate.js";
import { benchServe, type ServeBenchResult } from "./serve.js";
import { benchTrain, type TrainBenchRow } from "./train.js";
import { benchVerify, type VerifyBench } from "./verify.js";

export const BENCH_SUITES = ["engine", "generate", "train", "verify", "serve"] as const;
export type BenchSuite = (typeof BENCH_SUITES)[number];

export interface BenchConfig {
  suite: BenchSuite;
  quick: boolean; // fewer shapes, tokens and repetitions (a smoke test, not a measurement)
  backend: string | null; // native or reference (null: the current backend); verify runs no kernels
  threads: number | null; // worker threads of the native backend, and of llama.cpp
  // generate only (null: the suite's default)
  models: GenerateBenchModel[] | null; // of GENERATE_BENCH_MODELS (both)
  batches: number[] | null; // rows generated together (1, 16)
  prompt_tokens: number | null; // prompt tokens per row (128)
  new_tokens: number | null; // new tokens per row (128)
  reps: number | null; // timed runs per side after a warm-up; medians (3)
  no_llama_cpp: boolean; // ours only (llama.cpp columns null)
}

export type BenchResult =
  | { suite: "engine"; result: EngineBench }
  | { suite: "generate"; result: GenerateBenchRow[]; backend: string; threads: number }
  | { suite: "train"; result: TrainBenchRow[] }
  | { suite: "verify"; result: VerifyBench }
  | { suite: "serve"; result: ServeBenchResult };

/** Names of GENERATE_BENCH_MODELS, comma-separated or a list. */
function modelList(r: KnobReader): GenerateBenchModel[] | null {
  const names = r.list("models");
  if (names === null) return null;
  const bad = names.find((n) => !(GENERATE_BENCH_MODELS as readonly string[]).includes(n));
  if (bad !== undefined || names.length === 0) {
    throw new InputError(
      `unknown model "${bad ?? ""}" for ${r.naming.name("models")}`,
      undefined,
      `use: ${GENERATE_BENCH_MODELS.join(", ")}`,
    );
  }
  return names as GenerateBenchModel[];
}

/** A full BenchConfig from the knobs given (flag or key spellings); knobs a suite does not use are not read. */
export function benchConfig(
  given: Partial<BenchConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
): BenchConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming);
  const suite = r.raw("suite");
  if (!BENCH_SUITES.includes(suite as BenchSuite)) {
    throw new InputError(
      `unknown bench suite "${suite ?? ""}"`,
      undefined,
      `use: stepwise bench ${BENCH_SUITES.join("|")}`,
    );
  }
  const kernels = suite !== "verify";
  const generate = suite === "generate";
  return {
    suite: suite as BenchSuite,
    quick: Boolean(r.raw("quick")),
    backend: kernels ? r.str("backend", null) : null,
    threads: kernels ? r.int("threads", null) : null,
    models: generate ? modelList(r) : null,
    batches: generate ? r.intList("batches") : null,
    prompt_tokens: generate ? r.int("prompt_tokens", null) : null,
    new_tokens: generate ? r.int("new_tokens", null) : null,
    reps: generate ? r.int("reps", null) : null,
    no_llama_cpp: generate && Boolean(r.raw("no_llama_cpp")),
  };
}

/** Runs the suite c names; the train suite hands each row to `onTrainRow` as soon as it is measured. */
export async function runBench(
  c: BenchConfig,
  ctx: StageContext = {},
  o: { onTrainRow?: (r: TrainBenchRow) => void } = {},
): Promise<BenchResult> {
  const quick = c.quick;
  if (c.suite === "verify") return { suite: "verify", result: await benchVerify({ quick }) };
  const be = backendFor(c.backend, c.threads);
  switch (c.suite) {
    case "generate":
      return runGenerate(be, c, ctx);
    case "train":
      return { suite: "train", result: benchTrain(be, { quick, onRow: o.onTrainRow }) };
    case "serve": {
      const backend = be.name === "native" || be.name === "reference" ? be.name : undefined;
      const threads = c.threads === null ? undefined : be.threads();
      return { suite: "serve", result: await benchServe({ quick, backend, threads }) };
    }
    case "engine":
      return { suite: "engine", result: benchEngine(be, { quick }) };
    default:
      return c.suite satisfies never;
  }
}

async function runGenerate(be: Backend, c: BenchConfig, ctx: StageContext): Promise<BenchResult> {
  const bar = progressOf(ctx, "bench generate", {
    total: (c.models ?? GENERATE_BENCH_MODELS).length * (c.batches ?? [1, 16]).length,
    unit: " rows",
  });
  const rows = await benchGenerateVsLlamaCpp(be, {
    models: c.models ?? undefined,
    batches: c.batches ?? undefined,
    quick: c.quick,
    promptTokens: c.prompt_tokens ?? undefined,
    newTokens: c.new_tokens ?? undefined,
    reps: c.reps ?? undefined,
    llamaCpp: !c.no_llama_cpp,
    onRow: (r) => {
      bar.note(`${r.model} batch ${r.batch}`);
      bar.tick();
    },
  });
  bar.finish();
  return { suite: "generate", result: rows, backend: be.name, threads: be.threads() };
}

/** One row of the train suite: ours, and the ratio to PyTorch where it was measured. */
export function trainLine(r: TrainBenchRow): string {
  const ratio = (a: number, b: number | null) => (b ? ` (${(a / b).toFixed(2)}x PyTorch)` : "");
  return (
    `${r.model} ${r.mode}: SFT ${r.sft_tokens_per_s.toFixed(0)} tokens/s${ratio(r.sft_tokens_per_s, r.pytorch_sft_tokens_per_s)}, ` +
    `DPO ${r.dpo_pairs_per_s.toFixed(2)} pairs/s${ratio(r.dpo_pairs_per_s, r.pytorch_dpo_pairs_per_s)}${r.note ? ` [${r.note}]` : ""}`
  );
}

/** A result for a terminal: engine and generate as lines of figures, train as trainLine's, the rest as JSON. */
export function benchText(r: BenchResult): string {
  switch (r.suite) {
    case "engine":
      return engineText(r.result);
    case "generate":
      return generateText(r.result, r.backend, r.threads);
    case "train":
      return r.result.map(trainLine).join("\n");
    case "verify":
    case "serve":
      return JSON.stringify(r.result, null, 2);
    default:
      return r satisfies never;
  }
}

function engineText(r: EngineBench): string {
  const lines = [
    `backend ${r.backend}, ${r.threads} threads, FMA peak ${r.fma_peak_gflops?.toFixed(1) ?? "n/a"} GFLOP/s`,
  ];
  for (const g of r.gemm) lines.push(`gemm ${g.m}x${g.k}x${g.n}: ${g.gflops.toFixed(1)} GFLOP/s`);
  const t = r.train_step;
  lines.push(
    `train step (${t.layers} layers, d ${t.d_model}, ${t.heads} heads, seq ${t.seq}, batch ${t.batch}, ` +
      `${(t.params / 1e6).toFixed(2)}M params): ${t.ms.toFixed(1)} ms, ${t.tokens_per_s.toFixed(0)} tokens/s, ` +
      `${t.gflops.toFixed(1)} GFLOP/s`,
  );
  return lines.join("\n");
}

function generateText(rows: GenerateBenchRow[], backend: string, threads: number): string {
  const lines = [`backend ${backend}, ${threads} threads; tokens/s (ours / llama.cpp = ratio)`];
  const ratio = (a: number, b: number | null) => (b === null ? "n/a" : `${(a / b).toFixed(2)}x`);
  const fmt = (x: number | null) => (x === null ? "n/a" : x.toFixed(x < 100 ? 1 : 0));
  for (const r of rows) {
    lines.push(
      `${r.model.padEnd(13)} batch ${String(r.batch).padStart(2)}  P ${r.prompt_tokens} N ${r.new_tokens}  ` +
        `decode ${fmt(r.tokens_per_s)} / ${fmt(r.llama_cpp_tokens_per_s)} = ${ratio(r.tokens_per_s, r.llama_cpp_tokens_per_s)}  ` +
        `prefill ${fmt(r.prefill_tokens_per_s)} / ${fmt(r.llama_cpp_prefill_tokens_per_s)} = ` +
        `${ratio(r.prefill_tokens_per_s, r.llama_cpp_prefill_tokens_per_s)}` +
        (r.step_controlled_tokens_per_s === null ? "" : `  step-controlled ${fmt(r.step_controlled_tokens_per_s)}`),
    );
  }
  const note = rows.find((r) => r.llama_cpp_note)?.llama_cpp_note;
  if (note) lines.push(`llama.cpp: ${note}`);
  return lines.join("\n");
}
