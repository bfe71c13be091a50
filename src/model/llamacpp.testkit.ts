// llama.cpp (node-llama-cpp, pinned) as a test oracle: loading it without downloads or GPUs, exact-comparison
// contexts (1 thread, no flash attention, F32 KV cache), full-vocabulary next-token log-probs, and our side's
// float64 log-softmax. For tests only; a missing or unloadable node-llama-cpp is a skip reason, not a failure.
//
// Legend: T time, V vocab.

import assert from "node:assert/strict";
import type { Llama as LlamaCpp, LlamaModel as LlamaCppModel } from "node-llama-cpp";
import { tensor, tidy } from "../engine/tensor.js";
import type { Llama } from "./llama.js";

export type { LlamaCpp, LlamaCppModel };
type Sequence = ReturnType<Awaited<ReturnType<LlamaCppModel["createContext"]>>["getSequence"]>;

/** llama.cpp on the CPU, or why it cannot be loaded. */
export async function loadLlamaCpp(): Promise<{ llama: LlamaCpp } | { skip: string }> {
  try {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const expected = /missing tensor 'token_embd\.weight'|failed to load model|Failed simulating model resource usage/;
    const llama = await getLlama({
      gpu: false,
      build: "never",
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
      logger: (level, message) =>
        void (expected.test(message) || process.stderr.write(`[llama.cpp ${level}] ${message}\n`)),
    });
    return { llama };
  } catch (e) {
    return { skip: `node-llama-cpp could not load llama.cpp: ${(e as Error).message.split("\n")[0]}` };
  }
}

/** Runs fn on a fresh single-sequence context set up for exact comparisons. */
export async function withSequence<T>(
  model: LlamaCppModel,
  fn: (seq: Sequence) => Promise<T>,
  contextSize = 256,
): Promise<T> {
  const ctx = await model.createContext({
    contextSize,
    batchSize: contextSize,
    sequences: 1,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
  });
  try {
    return await fn(ctx.getSequence());
  } finally {
    await ctx.dispose();
  }
}

/** llama.cpp's next-token log-probs (V) after each of ids, evaluated as one batch on the sequence's cache. */
export async function llamaCppLogprobs(seq: Sequence, ids: number[], V: number): Promise<Float64Array[]> {
  const out = await seq.controlledEvaluate(ids.map((t) => [t as never, { generateNext: { probabilities: true } }]));
  return out.map((r) => {
    const p = r?.next.probabilities;
    assert.ok(p && p.size === V, `llama.cpp gave ${p?.size} probabilities, vocabulary ${V}`);
    const lp = new Float64Array(V).fill(-Infinity);
    for (const [tok, prob] of p) lp[tok as number] = Math.log(prob);
    return lp;
  });
}

/** Our next-token log-probs after each of ids (T rows of V), float64 log-softmax of the logits. */
export function ourLogprobs(model: Llama, ids: number[]): Float64Array[] {
  const V = model.config.vocab_size;
  const logits = tidy(() => model.forward(tensor(ids, [1, ids.length], "i32", model.embed.backend)).toArray()); // (1, T, V)
  return ids.map((_, t) => {
    const row = Float64Array.from(logits.subarray(t * V, (t + 1) * V));
    let max = -Infinity;
    for (const x of row) if (x > max) max = x;
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    const lse = max + Math.log(sum);
    return row.map((x) => x - lse);
  });
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** The largest |a - b| over rows of log-probs, where probabilities are above `floor` on either side. */
export function maxLogprobDiff(a: Float64Array[], b: Float64Array[], floor = 0): number {
  assert.equal(a.length, b.length);
  let d = 0;
  a.forEach((row, t) =>
    row.forEach((x, v) => {
      const y = b[t][v];
      if (Math.max(x, y) >= Math.log(floor)) d = Math.max(d, Math.abs(x - y));
    }),
  );
  return d;
}
