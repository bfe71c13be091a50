// `stepwise bench <suite>`: benchmarks whose JSON the issues name.

import { InputError } from "../core/errors.js";
import { backendByName, getBackend } from "../backend/index.js";
import { benchEngine } from "../bench/engine.js";
import { intOption, type Command } from "./main.js";

export const benchCommand: Command = {
  name: "bench",
  summary: "run a benchmark suite (engine) and print its figures",
  usage: "stepwise bench engine [--json] [--threads N] [--backend native|reference] [--quick]",
  options: {
    json: { type: "boolean" },
    threads: { type: "string" },
    backend: { type: "string" },
    quick: { type: "boolean" },
  },
  help: [
    "suites:",
    "  engine      FMA peak, GEMM GFLOP/s (256^3, 512^3, 1024^3, 2048x256x1024) and one training step of a",
    "              4-layer, d_model 256, 4-head decoder at seq 128, batch 8, vocab 64 (medians after warm-up)",
    "options:",
    "  --json      print one JSON object instead of a table",
    "  --threads N worker threads of the native backend (default: all cores)",
    "  --backend   native (default when built) or reference",
    "  --quick     fewer shapes and repetitions (a smoke test, not a measurement)",
  ].join("\n"),
  async run(values, positionals) {
    const suite = positionals[0];
    if (suite !== "engine") throw new InputError(`unknown bench suite "${suite ?? ""}"`, undefined, "use: stepwise bench engine");
    const be = values.backend ? backendByName(String(values.backend)) : getBackend();
    if (values.threads !== undefined) be.setThreads(intOption(values, "threads", 1));
    const r = benchEngine(be, { quick: Boolean(values.quick) });
    if (values.json) {
      console.log(JSON.stringify(r));
      return 0;
    }
    console.log(`backend ${r.backend}, ${r.threads} threads, FMA peak ${r.fma_peak_gflops?.toFixed(1) ?? "n/a"} GFLOP/s`);
    for (const g of r.gemm) console.log(`gemm ${g.m}x${g.k}x${g.n}: ${g.gflops.toFixed(1)} GFLOP/s`);
    const t = r.train_step;
    console.log(`train step (${t.layers} layers, d ${t.d_model}, ${t.heads} heads, seq ${t.seq}, batch ${t.batch}, ` +
      `${(t.params / 1e6).toFixed(2)}M params): ${t.ms.toFixed(1)} ms, ${t.tokens_per_s.toFixed(0)} tokens/s, ` +
      `${t.gflops.toFixed(1)} GFLOP/s`);
    return 0;
  },
};
