// `stepwise bench generate`: prefill and batched-decode throughput of KV-cache generation on the tiny preset and a
// random SmolLM2-135M-shaped model, batch 1 and 16, ours and llama.cpp's on the same weights in the same run.
//
// One run = B prompts of P random token ids prefilled at once, then N - 1 decode steps that sample one token per
// row (temperature 1 over the whole vocabulary on our side, EOS ignored so every row runs N tokens).
// prefill_tokens_per_s = B*P / (time of the prefill step, its B sampled tokens included); tokens_per_s =
// B*(N-1) / (time of the decode steps). Each side gets a short warm-up run, then `reps` timed runs, ours and
// llama.cpp's alternating so that other load on the machine falls on both; the figures are medians.
//
// step_controlled_tokens_per_s (tiny only: the one preset with a built-in tokenizer; null elsewhere): SCDPO's
// step-controlled sampling as `stepwise sample --step-temperature` runs it, continueStepwise with the default
// (gsm8k) schedule through a LocalCompleter of batch B. B built-in test problems, each cut after its first step,
// are continued one step (one request that stops at "\n") at a time, up to N tokens each; the figure is generated
// tokens / wall time, per-step re-prefill of prompt + steps so far and text handling included. Random weights
// end a step at about one token in 100 (the "\n" of the 100-token vocabulary), so a row makes one to a few steps.
//
// Legend: B rows (sequences), P prompt tokens per row, N new tokens per row, V vocab.

import type { Backend } from "../backend/backend.js";
import { Rng } from "../core/rng.js";
import { promptText } from "../data/format.js";
import { generateProblems, PRESETS as TASK_PRESETS } from "../data/task.js";
import { BatchDecoder } from "../model/generate.js";
import { Llama } from "../model/llama.js";
import { PRESETS, presetTokenizer } from "../model/presets.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { LocalCompleter } from "../sample/local.js";
import { continueStepwise, DEFAULT_SCHEDULE, solutionPrefix, type StepTask } from "../sample/stepcontrol.js";
import { LLAMA_CPP_SETUP, LlamaCppModelBench, type LlamaCppRunner, loadLlamaCpp } from "./llamacpp.js";
import { median } from "./stats.js";

export const GENERATE_BENCH_MODELS = ["tiny", "smollm2-135m"] as const;
export type GenerateBenchModel = (typeof GENERATE_BENCH_MODELS)[number];

export interface GenerateBenchRow {
  model: string;
  batch: number;
  prompt_tokens: number; // per row
  new_tokens: number; // per row
  tokens_per_s: number; // decode, all rows together
  prefill_tokens_per_s: number;
  llama_cpp_tokens_per_s: number | null; // null when llama.cpp was not measured (llama_cpp_note says why)
  llama_cpp_prefill_tokens_per_s: number | null;
  step_controlled_tokens_per_s: number | null; // continueStepwise, default schedule; null: no built-in tokenizer
  backend: string;
  threads: number; // ours and llama.cpp's
  llama_cpp_note?: string;
}

export interface GenerateBenchOptions {
  models?: GenerateBenchModel[]; // default both
  batches?: number[]; // default [1, 16]
  promptTokens?: number; // default 128 (quick: 32)
  newTokens?: number; // default 128 (quick: 16)
  reps?: number; // timed runs per side after one warm-up, default 3 (quick: 1)
  quick?: boolean; // a smoke test, not a measurement
  llamaCpp?: boolean; // benchGenerateVsLlamaCpp: measure llama.cpp too, default true
  onRow?: (row: GenerateBenchRow) => void; // each row as soon as it is measured
}

interface RunTimes {
  prefillMs: number;
  decodeMs: number;
}

/** Ours only (llama.cpp columns null): one row per (model, batch). */
export async function benchGenerate(be: Backend, opts: GenerateBenchOptions = {}): Promise<GenerateBenchRow[]> {
  const o = resolve(opts);
  const rows: GenerateBenchRow[] = [];
  for (const name of o.models) {
    const model = new Llama(PRESETS[name], { seed: 1, backend: be });
    try {
      for (const B of o.batches) {
        const prompts = randomPrompts(model, B, o.P);
        ourRun(model, shortPrompts(prompts), Math.min(o.N, 4)); // warm-up (thread pool, allocator, rotary tables)
        const times = Array.from({ length: o.reps }, () => ourRun(model, prompts, o.N));
        const stepwise = await stepControlled(model, name, B, o);
        const row = makeRow(name, be, B, o, times, null, stepwise, "not measured (ours only)");
        rows.push(row);
        opts.onRow?.(row);
      }
    } finally {
      model.dispose();
    }
  }
  return rows;
}

/**
 * Ours and llama.cpp's (node-llama-cpp, same weights as an F32 GGUF, same thread count) side by side. Without
 * node-llama-cpp, or when llama.cpp fails on a model, its columns are null and llama_cpp_note says why.
 */
export async function benchGenerateVsLlamaCpp(
  be: Backend,
  opts: GenerateBenchOptions = {},
): Promise<GenerateBenchRow[]> {
  const o = resolve(opts);
  const loaded = opts.llamaCpp === false ? { error: "not measured (--no-llama-cpp)" } : await loadLlamaCpp();
  const rows: GenerateBenchRow[] = [];
  try {
    for (const name of o.models) {
      const model = new Llama(PRESETS[name], { seed: 1, backend: be });
      let theirs: LlamaCppModelBench | null = null;
      let note = "error" in loaded ? loaded.error : undefined;
      try {
        if ("llama" in loaded) {
          theirs = await LlamaCppModelBench.open(loaded.llama, model, name).catch((e: Error) => {
            note = `llama.cpp could not load the exported model: ${e.message.split("\n")[0]}`;
            return null;
          });
        }
        for (const B of o.batches) {
          const row = await benchPair(model, name, be, B, o, theirs, note);
          rows.push(row);
          opts.onRow?.(row);
        }
      } finally {
        await theirs?.dispose();
        model.dispose();
      }
    }
  } finally {
    if ("llama" in loaded) await loaded.llama.dispose();
  }
  return rows;
}

/**
 * One (model, batch): warm-ups, then reps alternating ours and llama.cpp's. A llama.cpp failure leaves its
 * columns null (with the reason in the note), not the whole benchmark failed.
 */
async function benchPair(
  model: Llama,
  name: string,
  be: Backend,
  B: number,
  o: Resolved,
  theirs: LlamaCppModelBench | null,
  note: string | undefined,
): Promise<GenerateBenchRow> {
  const prompts = randomPrompts(model, B, o.P);
  let runner: LlamaCppRunner | null = null;
  const fail = (what: string) => (e: Error) => {
    note = `llama.cpp failed to ${what}: ${e.message.split("\n")[0]}`;
    return null;
  };
  if (theirs) runner = await theirs.runner(B, o.P, o.N, be.threads()).catch(fail(`create a context of ${B} sequences`));
  try {
    ourRun(model, shortPrompts(prompts), Math.min(o.N, 4));
    let cppOk =
      runner !== null && (await runner.run(shortPrompts(prompts), Math.min(o.N, 4)).catch(fail("generate"))) !== null;
    const ours: RunTimes[] = [];
    const cpp: RunTimes[] = [];
    for (let r = 0; r < o.reps; r++) {
      ours.push(ourRun(model, prompts, o.N));
      if (!runner || !cppOk) continue;
      const t = await runner.run(prompts, o.N).catch(fail("generate"));
      if (t) cpp.push(t);
      else cppOk = false;
    }
    const stepwise = await stepControlled(model, name, B, o);
    return makeRow(name, be, B, o, ours, cppOk ? cpp : null, stepwise, note);
  } finally {
    await runner?.dispose();
  }
}

/** Our prefill (first step) and decode (the other N - 1 steps) times for one batch of prompts. */
function ourRun(model: Llama, prompts: number[][], N: number): RunTimes {
  const dec = new BatchDecoder(
    model,
    null,
    prompts.map((ids, index) => ({ ids, index })),
    { maxTokens: N, temperature: 1, eosIds: [], seed: 1 },
  );
  try {
    let t0 = performance.now();
    dec.step(); // the prefill, and one sampled token per row
    const prefillMs = performance.now() - t0;
    t0 = performance.now();
    while (!dec.done) dec.step();
    return { prefillMs, decodeMs: performance.now() - t0 };
  } finally {
    dec.dispose();
  }
}

/**
 * Tokens/s of step-controlled sampling on B built-in problems cut after their first step (median of `reps` timed
 * runs after a short warm-up); null for a preset without a built-in tokenizer.
 */
async function stepControlled(model: Llama, name: string, B: number, o: Resolved): Promise<number | null> {
  const tokenizer = presetTokenizer(name);
  if (!tokenizer) return null;
  const tasks: StepTask[] = generateProblems(TASK_PRESETS.medium, { seed: 1, split: "test", n: B }).map((p, i) => ({
    prompt: promptText(p.question) + solutionPrefix(p.answer, 1),
    seed: i,
  }));
  await stepControlledRun(model, tokenizer, tasks, B, Math.min(o.N, 4)); // warm-up
  const runs: { tokens: number; ms: number }[] = [];
  for (let r = 0; r < o.reps; r++) runs.push(await stepControlledRun(model, tokenizer, tasks, B, o.N));
  const tokens = runs[0].tokens; // seeded: every run generates the same tokens
  return tokens / (median(runs.map((x) => x.ms)) / 1000);
}

/** One continueStepwise pass: the tokens it generated and its wall time. */
async function stepControlledRun(model: Llama, tokenizer: TextTokenizer, tasks: StepTask[], B: number, N: number) {
  const completer = new LocalCompleter(model, tokenizer, { batchSize: B, name: "bench" }); // close() would dispose the model
  const t0 = performance.now();
  const out = await continueStepwise(completer, tasks, { schedule: DEFAULT_SCHEDULE, maxTokens: N });
  return { tokens: out.reduce((a, c) => a + c.tokens, 0), ms: performance.now() - t0 };
}

interface Resolved {
  models: GenerateBenchModel[];
  batches: number[];
  P: number;
  N: number;
  reps: number;
}

function resolve(opts: GenerateBenchOptions): Resolved {
  const quick = opts.quick ?? false;
  return {
    models: opts.models ?? [...GENERATE_BENCH_MODELS],
    batches: opts.batches ?? [1, 16],
    P: opts.promptTokens ?? (quick ? 32 : 128),
    N: opts.newTokens ?? (quick ? 16 : 128),
    reps: opts.reps ?? (quick ? 1 : 3),
  };
}

/** B prompts of P token ids drawn from [3, V), seeded by (B, P): the same for both sides. */
function randomPrompts(model: Llama, B: number, P: number): number[][] {
  const V = model.config.vocab_size;
  const rng = new Rng(B * 1000 + P);
  return Array.from({ length: B }, () => Array.from({ length: P }, () => 3 + rng.int(V - 3)));
}

/** The warm-up's prompts: the first 8 tokens of each. */
function shortPrompts(prompts: number[][]): number[][] {
  return prompts.map((p) => p.slice(0, 8));
}

function makeRow(
  name: string,
  be: Backend,
  B: number,
  o: Resolved,
  ours: RunTimes[],
  cpp: RunTimes[] | null,
  stepControlled: number | null,
  note: string | undefined,
): GenerateBenchRow {
  const decodeTokens = B * (o.N - 1);
  const perSecond = (tokens: number, ms: number[]) => tokens / (median(ms) / 1000);
  const row: GenerateBenchRow = {
    model: name,
    batch: B,
    prompt_tokens: o.P,
    new_tokens: o.N,
    tokens_per_s: perSecond(
      decodeTokens,
      ours.map((t) => t.decodeMs),
    ),
    prefill_tokens_per_s: perSecond(
      B * o.P,
      ours.map((t) => t.prefillMs),
    ),
    llama_cpp_tokens_per_s: cpp
      ? perSecond(
          decodeTokens,
          cpp.map((t) => t.decodeMs),
        )
      : null,
    llama_cpp_prefill_tokens_per_s: cpp
      ? perSecond(
          B * o.P,
          cpp.map((t) => t.prefillMs),
        )
      : null,
    step_controlled_tokens_per_s: stepControlled,
    backend: be.name,
    threads: be.threads(),
  };
  if (!cpp) row.llama_cpp_note = note ?? "llama.cpp was not measured";
  else row.llama_cpp_note = `${LLAMA_CPP_SETUP}, threads ${row.threads}`;
  return row;
}
