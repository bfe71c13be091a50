// llama.cpp's side of `stepwise bench generate`, through node-llama-cpp (the pinned dev dependency): the model's
// own weights, exported to a temporary F32 GGUF, run with the same thread count, timed the way ours are.
//
// - prefill: B prompts of P tokens evaluated at once (B sequences of one context), the next token sampled for each;
// - decode: then N - 1 lock-step steps, each feeding every sequence its last token in one batch and sampling the
//   next (temperature 1, top-k 40: with top-k off llama.cpp would sort the whole vocabulary every token).
// node-llama-cpp merges the evaluations queued in one event-loop turn into one llama_decode; stepping all
// sequences together keeps each step one batch (its own evaluate() loops drift apart and decode a few rows at a
// time). The context keeps llama.cpp's defaults otherwise (F16 KV cache, flash attention "auto"). The times include
// node-llama-cpp's per-call overhead, as ours include our engine's.
//
// Legend: B sequences, P prompt tokens each, N new tokens each, V vocab.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type {
  ControlledEvaluateInputItem,
  Llama as LlamaCpp,
  LlamaModel as LlamaCppModel,
  Token,
} from "node-llama-cpp";
import { exportGguf } from "../model/gguf.js";
import type { Llama } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";

/** How llama.cpp is run, for the benchmark's note (package.json pins the version). */
export const LLAMA_CPP_SETUP =
  "node-llama-cpp@3.21.1, F32 GGUF of the same weights, default context (F16 KV cache, " +
  "flash attention auto), sequences stepped together, temperature 1 top-k 40";

const SAMPLING = { temperature: 1, topK: 40, topP: 1, minP: 0 };

/** Loads llama.cpp's CPU build; returns the reason instead when node-llama-cpp or its binary is missing. */
export async function loadLlamaCpp(): Promise<{ llama: LlamaCpp } | { error: string }> {
  try {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({
      gpu: false,
      build: "never",
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
    });
    return { llama };
  } catch (e) {
    return { error: `node-llama-cpp could not load llama.cpp: ${(e as Error).message.split("\n")[0]}` };
  }
}

/** One model exported and loaded in llama.cpp; owns its temporary GGUF. Call dispose(). */
export class LlamaCppModelBench {
  private constructor(
    private readonly model: LlamaCppModel,
    private readonly dir: string,
  ) {}

  /**
   * Exports `model` (our weights, F32) with the built-in tokenizer's vocabulary padded to the model's (the
   * benchmark feeds token ids, so the vocabulary's text does not matter) and loads it on the CPU. The file is
   * deleted as soon as llama.cpp has it mapped, so that a killed benchmark leaves no 500 MB file behind (where
   * an open file cannot be deleted, dispose() deletes it).
   */
  static async open(llama: LlamaCpp, model: Llama, name: string): Promise<LlamaCppModelBench> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-bench-"));
    const file = path.join(dir, `${name}.gguf`);
    try {
      exportGguf(model, builtinTokenizer(), file, { dtype: "f32", name });
      const m = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
      removeDir(dir);
      return new LlamaCppModelBench(m, dir);
    } catch (e) {
      removeDir(dir);
      throw e;
    }
  }

  /** A context of B sequences with room for P + N tokens each, on `threads` threads. */
  async runner(B: number, P: number, N: number, threads: number): Promise<LlamaCppRunner> {
    const ctx = await this.model.createContext({
      sequences: B,
      contextSize: B * (P + N),
      batchSize: B * P,
      threads: { ideal: threads, min: threads },
    });
    return new LlamaCppRunner(ctx);
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
    removeDir(this.dir);
  }
}

/** Deletes a temporary folder; a failure (a file still open, on some systems) leaves it for later. */
function removeDir(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // dispose() tries again
  }
}

type Context = Awaited<ReturnType<LlamaCppModel["createContext"]>>;
type Sequence = ReturnType<Context["getSequence"]>;

/** Prefill-then-decode runs on one context; each run starts from empty sequences. */
export class LlamaCppRunner {
  private readonly seqs: Sequence[];
  private seed = 1;

  constructor(private readonly ctx: Context) {
    this.seqs = Array.from({ length: ctx.totalSequences }, () => ctx.getSequence());
  }

  /** Prefills prompts (one per sequence), then samples `newTokens` tokens each; returns both times in ms. */
  async run(prompts: number[][], newTokens: number): Promise<{ prefillMs: number; decodeMs: number }> {
    if (prompts.length !== this.seqs.length)
      throw new Error(`${prompts.length} prompts for ${this.seqs.length} sequences`);
    await Promise.all(this.seqs.map((s) => s.clearHistory()));
    // Feeds tokens to sequence i and samples the token after the last one.
    const next = async (seq: Sequence, i: number, tokens: number[]): Promise<number> => {
      const input: ControlledEvaluateInputItem[] = tokens.map((t) => t as Token);
      const options = { ...SAMPLING, seed: this.seed + i };
      input[input.length - 1] = [tokens[tokens.length - 1] as Token, { generateNext: { token: true, options } }];
      const out = await seq.controlledEvaluate(input);
      const t = out[out.length - 1]?.next.token;
      if (t === undefined || t === null) throw new Error("llama.cpp returned no token");
      return t;
    };
    this.seed += prompts.length;
    let t0 = performance.now();
    let last = await Promise.all(this.seqs.map((s, i) => next(s, i, prompts[i]))); // (B) sampled after the prompt
    const prefillMs = performance.now() - t0;
    t0 = performance.now();
    for (let step = 1; step < newTokens; step++)
      last = await Promise.all(this.seqs.map((s, i) => next(s, i, [last[i]])));
    return { prefillMs, decodeMs: performance.now() - t0 };
  }

  async dispose(): Promise<void> {
    await this.ctx.dispose();
  }
}
