// `stepwise bench generate`, our side: prefill and batched-decode throughput of KV-cache generation on the tiny
// preset and a random SmolLM2-135M-shaped model, batch 1 and 16, medians after a warm-up. The llama.cpp columns of
// the JSON are measured elsewhere on the same weights and merged by the caller.
//
// prefill_tokens_per_s: B*P prompt tokens through one cached forward (last-slot logits read back, as generation
// does). tokens_per_s: B*(N-1) tokens of the decode steps after the prefill, host sampling (temperature 1)
// included, EOS ignored so every row runs N tokens.

import type { Backend } from "../backend/backend.js";
import { Rng } from "../core/rng.js";
import { tensor, tidy } from "../engine/tensor.js";
import { BatchDecoder } from "../model/generate.js";
import { Llama } from "../model/llama.js";
import { PRESETS } from "../model/presets.js";
import { median } from "./stats.js";

export interface GenerateBenchRow {
  model: string;
  batch: number;
  prompt_tokens: number; // per row
  new_tokens: number; // per row
  tokens_per_s: number; // decode, all rows together
  prefill_tokens_per_s: number;
  backend: string;
  threads: number;
}

export interface GenerateBenchOptions {
  models?: ("tiny" | "smollm2-135m")[]; // default both
  batches?: number[]; // default [1, 16]
  promptTokens?: number; // default 128 (quick: 32)
  newTokens?: number; // default 128 (quick: 16)
  reps?: number; // timed repetitions after one warm-up, default 3 (quick: 1)
  quick?: boolean; // a smoke test, not a measurement
  onRow?: (row: GenerateBenchRow) => void; // each row as soon as it is measured
}

/** Measures prefill and decode throughput for every (model, batch); one row each. */
export function benchGenerate(be: Backend, opts: GenerateBenchOptions = {}): GenerateBenchRow[] {
  const quick = opts.quick ?? false;
  const P = opts.promptTokens ?? (quick ? 32 : 128);
  const N = opts.newTokens ?? (quick ? 16 : 128);
  const reps = opts.reps ?? (quick ? 1 : 3);
  const rows: GenerateBenchRow[] = [];
  for (const name of opts.models ?? ["tiny", "smollm2-135m"]) {
    const model = new Llama(PRESETS[name], { seed: 1, backend: be });
    try {
      for (const B of opts.batches ?? [1, 16]) {
        const row = benchOne(model, name, B, P, N, reps);
        rows.push(row);
        opts.onRow?.(row);
      }
    } finally {
      model.dispose();
    }
  }
  return rows;
}

function benchOne(model: Llama, name: string, B: number, P: number, N: number, reps: number): GenerateBenchRow {
  const be = model.embed.backend;
  const V = model.config.vocab_size;
  const rng = new Rng(B * 1000 + P);
  const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => 3 + rng.int(V - 3)));
  const flat = prompts.flat();
  const prefill = () => {
    const cache = model.newCache(B, P);
    const t0 = performance.now();
    tidy(() => model.forwardCached(tensor(flat, [B, P], "i32", be), cache, { lastOnly: true }).toArray());
    const ms = performance.now() - t0;
    cache.dispose();
    return ms;
  };
  const decode = (maxTokens = N) => {
    const dec = new BatchDecoder(model, null, prompts.map((ids, index) => ({ ids, index })),
      { maxTokens, temperature: 1, eosIds: [], seed: 1 });
    try {
      dec.step(); // the prefill
      const t0 = performance.now();
      while (!dec.done) dec.step();
      return performance.now() - t0;
    } finally {
      dec.dispose();
    }
  };
  prefill(); // warm-up (thread pool, allocator, rotary tables)
  const prefillMs = median(Array.from({ length: reps }, prefill));
  decode(Math.min(N, 4)); // warm-up
  const decodeMs = median(Array.from({ length: reps }, () => decode()));
  return {
    model: name, batch: B, prompt_tokens: P, new_tokens: N,
    tokens_per_s: (B * (N - 1)) / (decodeMs / 1000),
    prefill_tokens_per_s: (B * P) / (prefillMs / 1000),
    backend: be.name, threads: be.threads(),
  };
}
