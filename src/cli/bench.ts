// `stepwise bench <suite>`: benchmarks whose JSON the issues name.

import { InputError } from "../core/errors.js";
import type { Backend } from "../backend/backend.js";
import { backendByName, getBackend } from "../backend/index.js";
import { benchEngine } from "../bench/engine.js";
import { benchServe } from "../bench/serve.js";
import { benchTrain, type TrainBenchRow } from "../bench/train.js";
import { benchVerify } from "../bench/verify.js";
import {
  GENERATE_BENCH_MODELS,
  type GenerateBenchModel,
  type GenerateBenchRow,
  benchGenerateVsLlamaCpp,
} from "../bench/generate.js";
import type { Command } from "./command.js";
import { intOption } from "./options.js";
import { Progress } from "../core/progress.js";

const SUITES = ["engine", "generate", "train", "verify", "serve"] as const;

function printJson(r: object, values: Record<string, string | boolean | undefined>): number {
  console.log(values.json ? JSON.stringify(r) : JSON.stringify(r, null, 2));
  return 0;
}

function trainLine(r: TrainBenchRow): string {
  const ratio = (a: number, b: number | null) => (b ? ` (${(a / b).toFixed(2)}x PyTorch)` : "");
  return (
    `${r.model} ${r.mode}: SFT ${r.sft_tokens_per_s.toFixed(0)} tokens/s${ratio(r.sft_tokens_per_s, r.pytorch_sft_tokens_per_s)}, ` +
    `DPO ${r.dpo_pairs_per_s.toFixed(2)} pairs/s${ratio(r.dpo_pairs_per_s, r.pytorch_dpo_pairs_per_s)}${r.note ? ` [${r.note}]` : ""}`
  );
}

export const benchCommand: Command = {
  name: "bench",
  summary: "run a benchmark suite (engine, generate, train, verify, serve) and print its figures",
  usage:
    "stepwise bench engine|generate|train|verify|serve [--json] [--threads N] [--backend native|reference] [--quick]",
  help: [
    "suites:",
    "  engine      FMA peak, GEMM GFLOP/s (256^3, 512^3, 1024^3, 2048x256x1024) and one training step of a",
    "              4-layer, d_model 256, 4-head decoder at seq 128, batch 8, vocab 64 (medians after warm-up)",
    "  generate    prefill and batched-decode tokens/s of KV-cache generation (tiny preset and a random",
    "              SmolLM2-135M-shaped model, batch 1 and 16, 128 prompt + 128 new tokens per row), ours and",
    "              llama.cpp's (node-llama-cpp, the same weights as an F32 GGUF, the same threads) alternating;",
    "              --json prints a list of {model, batch, prompt_tokens, new_tokens, tokens_per_s,",
    "              prefill_tokens_per_s, llama_cpp_tokens_per_s, llama_cpp_prefill_tokens_per_s,",
    "              step_controlled_tokens_per_s, ...}; step_controlled_tokens_per_s is SCDPO's step-controlled",
    "              sampling (one request per step, default gsm8k temperature schedule, local engine, batch B) on",
    "              the tiny preset, null for models without a built-in tokenizer",
    "  train       SFT tokens/s and DPO pairs/s of one optimizer step (tiny and SmolLM2-135M-shaped, full and",
    "              LoRA r=8), ours and PyTorch's (reference/bench_train.py, when python3 has torch) on the same",
    "              shapes and threads: [{model, mode, sft_tokens_per_s, dpo_pairs_per_s, pytorch_sft_tokens_per_s,",
    "              pytorch_dpo_pairs_per_s}]",
    "  verify      {answer_checks_per_s, step_checks_per_s, sandbox_runs_per_s}",
    "  serve       {clients, requests_per_s, p50_ms, p99_ms}: 16 concurrent clients against `stepwise serve`",
    "              on the tiny preset",
    "options:",
    "  --json      print JSON instead of a table",
    "  --threads N worker threads of the native backend, and of llama.cpp (default: all cores)",
    "  --backend B native (default when built) or reference",
    "  --quick     fewer shapes, tokens and repetitions (a smoke test, not a measurement)",
    "generate options:",
    `  --models A,B        of ${GENERATE_BENCH_MODELS.join(", ")} (default both)`,
    "  --batches 1,16      rows generated together (default 1,16)",
    "  --prompt-tokens P   prompt tokens per row (default 128)",
    "  --new-tokens N      new tokens per row (default 128)",
    "  --reps R            timed runs per side after a warm-up; medians (default 3)",
    "  --no-llama-cpp      ours only (llama.cpp columns null)",
  ].join("\n"),
  async run(values, positionals) {
    const suite = positionals[0];
    if (!SUITES.includes(suite as (typeof SUITES)[number])) {
      throw new InputError(
        `unknown bench suite "${suite ?? ""}"`,
        undefined,
        `use: stepwise bench ${SUITES.join("|")}`,
      );
    }
    if (suite === "verify") return printJson(await benchVerify({ quick: Boolean(values.quick) }), values);
    const be = values.backend ? backendByName(String(values.backend)) : getBackend();
    if (values.threads !== undefined) be.setThreads(intOption(values, "threads", 1));
    if (suite === "generate") return runGenerate(be, values);
    if (suite === "train") {
      const rows = benchTrain(be, {
        quick: Boolean(values.quick),
        onRow: values.json ? undefined : (r) => console.log(trainLine(r)),
      });
      if (values.json) console.log(JSON.stringify(rows));
      return 0;
    }
    if (suite === "serve") {
      const name = be.name === "native" || be.name === "reference" ? be.name : undefined;
      return printJson(
        await benchServe({
          quick: Boolean(values.quick),
          backend: name,
          threads: values.threads === undefined ? undefined : be.threads(),
        }),
        values,
      );
    }
    const r = benchEngine(be, { quick: Boolean(values.quick) });
    if (values.json) {
      console.log(JSON.stringify(r));
      return 0;
    }
    console.log(
      `backend ${r.backend}, ${r.threads} threads, FMA peak ${r.fma_peak_gflops?.toFixed(1) ?? "n/a"} GFLOP/s`,
    );
    for (const g of r.gemm) console.log(`gemm ${g.m}x${g.k}x${g.n}: ${g.gflops.toFixed(1)} GFLOP/s`);
    const t = r.train_step;
    console.log(
      `train step (${t.layers} layers, d ${t.d_model}, ${t.heads} heads, seq ${t.seq}, batch ${t.batch}, ` +
        `${(t.params / 1e6).toFixed(2)}M params): ${t.ms.toFixed(1)} ms, ${t.tokens_per_s.toFixed(0)} tokens/s, ` +
        `${t.gflops.toFixed(1)} GFLOP/s`,
    );
    return 0;
  },
};

/** Comma-separated positive integers, e.g. --batches 1,16. */
function intList(values: Record<string, unknown>, name: string): number[] | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const xs = String(v)
    .split(",")
    .map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new InputError(`--${name} must be a comma-separated list of integers >= 1, got "${v}"`);
  }
  return xs;
}

function modelList(values: Record<string, unknown>): GenerateBenchModel[] | undefined {
  if (values.models === undefined) return undefined;
  const names = String(values.models)
    .split(",")
    .map((x) => x.trim());
  const bad = names.find((n) => !(GENERATE_BENCH_MODELS as readonly string[]).includes(n));
  if (bad !== undefined || names.length === 0) {
    throw new InputError(
      `unknown model "${bad ?? ""}" for --models`,
      undefined,
      `use: ${GENERATE_BENCH_MODELS.join(", ")}`,
    );
  }
  return names as GenerateBenchModel[];
}

async function runGenerate(be: Backend, values: Record<string, string | boolean | undefined>): Promise<number> {
  const quick = Boolean(values.quick);
  const models = modelList(values);
  const batches = intList(values, "batches");
  const opt = (name: string) => (values[name] === undefined ? undefined : intOption(values, name, 1));
  const bar = new Progress("bench generate", {
    total: (models ?? GENERATE_BENCH_MODELS).length * (batches ?? [1, 16]).length,
    unit: " rows",
  });
  const rows = await benchGenerateVsLlamaCpp(be, {
    models,
    batches,
    quick,
    promptTokens: opt("prompt-tokens"),
    newTokens: opt("new-tokens"),
    reps: opt("reps"),
    llamaCpp: !values["no-llama-cpp"],
    onRow: (r) => {
      bar.note(`${r.model} batch ${r.batch}`);
      bar.tick();
    },
  });
  bar.finish();
  if (values.json) {
    console.log(JSON.stringify(rows));
    return 0;
  }
  console.log(`backend ${be.name}, ${be.threads()} threads; tokens/s (ours / llama.cpp = ratio)`);
  const ratio = (a: number, b: number | null) => (b === null ? "n/a" : `${(a / b).toFixed(2)}x`);
  const fmt = (x: number | null) => (x === null ? "n/a" : x.toFixed(x < 100 ? 1 : 0));
  for (const r of rows as GenerateBenchRow[]) {
    console.log(
      `${r.model.padEnd(13)} batch ${String(r.batch).padStart(2)}  P ${r.prompt_tokens} N ${r.new_tokens}  ` +
        `decode ${fmt(r.tokens_per_s)} / ${fmt(r.llama_cpp_tokens_per_s)} = ${ratio(r.tokens_per_s, r.llama_cpp_tokens_per_s)}  ` +
        `prefill ${fmt(r.prefill_tokens_per_s)} / ${fmt(r.llama_cpp_prefill_tokens_per_s)} = ` +
        `${ratio(r.prefill_tokens_per_s, r.llama_cpp_prefill_tokens_per_s)}` +
        (r.step_controlled_tokens_per_s === null ? "" : `  step-controlled ${fmt(r.step_controlled_tokens_per_s)}`),
    );
  }
  const note = rows.find((r) => r.llama_cpp_note)?.llama_cpp_note;
  if (note) console.log(`llama.cpp: ${note}`);
  return 0;
}
