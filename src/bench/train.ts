// `stepwise bench train`: SFT tokens/s and DPO pairs/s of one optimizer step (forward, backward, AdamW), ours and
// PyTorch's (reference/bench_train.py, run when python3 with torch is present) on the same shapes and threads.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Backend } from "../backend/backend.js";
import { withBackend } from "../backend/index.js";
import { Rng } from "../core/rng.js";
import { AdamW, zeroGrad } from "../engine/optim.js";
import { tidy } from "../engine/tensor.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { PRESETS } from "../model/presets.js";
import { attachLora } from "../model/lora.js";

const LORA_R = 8; // rank of the LoRA rows, on all seven projections, both sides
import type { Example } from "../train/batch.js";
import { dpoObjective, type TokenPair } from "../train/dpo.js";
import { sftObjective } from "../train/sft.js";
import { timeMedian } from "./stats.js";

export interface TrainBenchRow {
  model: string;
  mode: "full" | "lora";
  threads: number;
  sft_tokens_per_s: number;
  dpo_pairs_per_s: number;
  pytorch_sft_tokens_per_s: number | null;
  pytorch_dpo_pairs_per_s: number | null;
  note?: string;
}

interface Shapes {
  sft: { batch: number; seq: number };
  dpo: { pairs: number; prompt: number; completion: number };
}

export const TRAIN_BENCH_MODELS: { name: string; config: LlamaConfig; shapes: Shapes; reps: number }[] = [
  {
    name: "tiny",
    config: PRESETS.tiny as LlamaConfig,
    reps: 5,
    shapes: { sft: { batch: 8, seq: 256 }, dpo: { pairs: 8, prompt: 64, completion: 96 } },
  },
  {
    name: "smollm2-135m",
    config: PRESETS["smollm2-135m"] as LlamaConfig,
    reps: 2,
    shapes: { sft: { batch: 4, seq: 128 }, dpo: { pairs: 2, prompt: 32, completion: 64 } },
  },
];

function ours(
  be: Backend,
  config: LlamaConfig,
  s: Shapes,
  reps: number,
  mode: "full" | "lora",
): { sft: number; dpo: number } {
  return withBackend(be, () => {
    const model = new Llama(config, { seed: 1, backend: be });
    if (mode === "lora") attachLora(model, { r: LORA_R, alpha: 2 * LORA_R, dropout: 0 });
    const trainable = model.parameters().filter((p) => p.requiresGrad);
    const opt = new AdamW(trainable, { lr: 1e-5, weightDecay: 0 });
    const rng = new Rng(2);
    const toks = (n: number) => Array.from({ length: n }, () => rng.int(config.vocab_size));
    const cut = s.sft.seq / 8;
    const examples: Example[] = Array.from({ length: s.sft.batch }, () => ({
      prompt: toks(cut),
      completion: toks(s.sft.seq - cut),
    }));
    const pairs: TokenPair[] = Array.from({ length: s.dpo.pairs }, () => ({
      prompt: toks(s.dpo.prompt),
      chosen: toks(s.dpo.completion),
      rejected: toks(s.dpo.completion),
    }));
    const ref = { chosen: Float64Array.from(pairs, () => -50), rejected: Float64Array.from(pairs, () => -50) };
    const sft = sftObjective(model, 0);
    const dpo = dpoObjective(
      model,
      { kind: "precomputed", logps: ref },
      { beta: 0.1, labelSmoothing: 0, losses: [{ name: "sigmoid", weight: 1 }], padId: 0 },
    );
    const step = (run: () => void) => () => {
      zeroGrad(trainable);
      tidy(run);
      opt.step();
    };
    const units = examples.reduce((a, e) => a + e.completion.length, 0);
    const idx = pairs.map((_, i) => i);
    const sftMs = timeMedian(
      step(() => sft.run(examples, idx, 1 / units)),
      { warmup: 1, minReps: reps, maxReps: reps, minMs: 0 },
    );
    const dpoMs = timeMedian(
      step(() => dpo.run(pairs, idx, 1 / pairs.length)),
      { warmup: 1, minReps: reps, maxReps: reps, minMs: 0 },
    );
    opt.dispose();
    model.dispose();
    return { sft: (s.sft.batch * s.sft.seq) / (sftMs / 1000), dpo: s.dpo.pairs / (dpoMs / 1000) };
  });
}

function pytorch(
  config: LlamaConfig,
  s: Shapes,
  mode: string,
  threads: number,
  reps: number,
): { sft: number; dpo: number } | { error: string } {
  const script = fileURLToPath(new URL("../../reference/bench_train.py", import.meta.url));
  if (!existsSync(script)) return { error: "reference/bench_train.py not found" };
  const spec = { config, mode, lora_r: LORA_R, threads, reps, seed: 0, ...s };
  const r = spawnSync("python3", [script, JSON.stringify(spec)], { encoding: "utf8" });
  if (r.error || r.status !== 0)
    return { error: `PyTorch side not run: ${(r.error?.message ?? r.stderr).trim().split("\n").at(-1)}` };
  const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { sft_tokens_per_s: number; dpo_pairs_per_s: number };
  return { sft: j.sft_tokens_per_s, dpo: j.dpo_pairs_per_s };
}

export function benchTrain(
  be: Backend,
  opts: { quick?: boolean; onRow?: (r: TrainBenchRow) => void } = {},
): TrainBenchRow[] {
  const rows: TrainBenchRow[] = [];
  const models = opts.quick ? TRAIN_BENCH_MODELS.slice(0, 1) : TRAIN_BENCH_MODELS;
  for (const m of models)
    for (const mode of ["full", "lora"] as const) {
      const reps = opts.quick ? 1 : m.reps;
      const o = ours(be, m.config, m.shapes, reps, mode);
      const p = pytorch(m.config, m.shapes, mode, be.threads(), reps);
      const row: TrainBenchRow = {
        model: m.name,
        mode,
        threads: be.threads(),
        sft_tokens_per_s: o.sft,
        dpo_pairs_per_s: o.dpo,
        pytorch_sft_tokens_per_s: "error" in p ? null : p.sft,
        pytorch_dpo_pairs_per_s: "error" in p ? null : p.dpo,
        ...("error" in p ? { note: p.error } : {}),
      };
      rows.push(row);
      opts.onRow?.(row);
    }
  return rows;
}
