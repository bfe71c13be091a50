// `stepwise bench <suite>`: benchmarks whose JSON the issues name; flags -> BenchConfig -> runBench
// (src/bench/suites.ts).

import { asFlags } from "../core/config.js";
import { GENERATE_BENCH_MODELS } from "../bench/generate.js";
import { benchConfig, benchText, runBench, trainLine } from "../bench/suites.js";
import type { Command } from "./command.js";
import { cliContext } from "./context.js";

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
    const c = benchConfig({ ...values, suite: positionals[0] }, asFlags);
    const onTrainRow = values.json ? undefined : (r: Parameters<typeof trainLine>[0]) => console.log(trainLine(r));
    const r = await runBench(c, cliContext(), { onTrainRow });
    if (values.json) console.log(JSON.stringify(r.result));
    else if (r.suite !== "train") console.log(benchText(r)); // the train suite's rows were printed as they came
    return 0;
  },
};
