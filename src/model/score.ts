// Teacher-forced scoring: the log-probability of every token of many sequences given the tokens before it, in
// batches, without gradients (DPO's reference pass, `stepwise score`, per-token implicit rewards).
//
// Rows are sorted by length and right-padded into batches (causal attention never lets a real token see the
// padding after it). Logits are made a slice of positions at a time, so a large vocabulary never holds (B, T, V)
// at once.
//
// Legend: B rows in a batch, T longest row minus one, C hidden size, V vocab, N positions in a logits chunk.

import { InputError } from "../core/errors.js";
import { reshape, slice, tokenLogprobs } from "../engine/ops.js";
import { noGrad, tensor, tidy } from "../engine/tensor.js";
import type { Llama } from "./llama.js";

export interface ScoreOptions {
  batchSize?: number; // rows a forward takes at most, default 16
  maxBatchTokens?: number; // rows * longest row a forward takes at most (one row always fits), default 8192
  maxLogits?: number; // logits elements made at once (positions * V), default 2^22
  onProgress?: (done: number, total: number) => void; // sequences scored so far
}

const IGNORE = -100;

/**
 * Per-token log-probs of each sequence: out[i][t] = log p(ids[t + 1] | ids[0..t]) (length n - 1; the first token
 * has no context and no log-prob), computed in the model's dtype and read back as float64.
 */
export function scoreTokens(model: Llama, sequences: number[][], opts: ScoreOptions = {}): Float64Array[] {
  const V = model.config.vocab_size;
  sequences.forEach((s, i) => {
    if (s.length === 0) throw new InputError(`sequence ${i} is empty`);
    const bad = s.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
    if (bad !== undefined) throw new InputError(`sequence ${i}: token id ${bad} is outside the vocabulary [0, ${V})`);
  });
  const batchSize = opts.batchSize ?? 16;
  const maxTokens = opts.maxBatchTokens ?? 8192;
  const out = new Array<Float64Array>(sequences.length);
  const order = sequences.map((_, i) => i).sort((a, b) => sequences[b].length - sequences[a].length || a - b);
  let done = 0;
  for (let i = 0; i < order.length; ) {
    const longest = sequences[order[i]].length; // rows are sorted longest first
    const rows = Math.max(1, Math.min(batchSize, Math.floor(maxTokens / longest), order.length - i));
    const idx = order.slice(i, i + rows);
    scoreBatch(
      model,
      idx.map((j) => sequences[j]),
      opts.maxLogits ?? 1 << 22,
    ).forEach((lp, k) => (out[idx[k]] = lp));
    i += rows;
    done += rows;
    opts.onProgress?.(done, sequences.length);
  }
  return out;
}

/** One right-padded forward over rows (B), its logits made N positions at a time. */
function scoreBatch(model: Llama, rows: number[][], maxLogits: number): Float64Array[] {
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.length)) - 1;
  if (T === 0) return rows.map(() => new Float64Array(0));
  const V = model.config.vocab_size;
  const ids = new Int32Array(B * T); // (B, T), padded with id 0
  const targets = new Int32Array(B * T).fill(IGNORE); // (B, T): the next token, or IGNORE on padding
  rows.forEach((r, b) => {
    for (let t = 0; t < r.length - 1; t++) {
      ids[b * T + t] = r[t];
      targets[b * T + t] = r[t + 1];
    }
  });
  const lp = new Float64Array(B * T);
  const be = model.embed.backend;
  tidy(() =>
    noGrad(() => {
      const h = reshape(model.hidden(tensor(ids, [B, T], "i32", be)), [B * T, -1]); // (B*T, C)
      const N = Math.max(1, Math.floor(maxLogits / V));
      for (let a = 0; a < B * T; a += N) {
        const n = Math.min(N, B * T - a);
        tidy(() => {
          const logits = model.logits(slice(h, 0, a, n)); // (N, V)
          lp.set(tokenLogprobs(logits, tensor(targets.subarray(a, a + n), [n], "i32", be)).toArray(), a);
        });
      }
    }),
  );
  return rows.map((r, b) => lp.slice(b * T, b * T + r.length - 1));
}

/**
 * Summed log-probs of each completion given its prompt: sum over completion tokens of log p(token | prefix), as
 * DPO's reference pass needs. prompt holds at least one token (BOS); completion at least one.
 */
export function completionLogps(
  model: Llama,
  examples: { prompt: number[]; completion: number[] }[],
  opts: ScoreOptions = {},
): Float64Array {
  examples.forEach((e, i) => {
    if (e.prompt.length === 0) throw new InputError(`example ${i} has an empty prompt (it needs at least BOS)`);
  });
  const lps = scoreTokens(
    model,
    examples.map((e) => [...e.prompt, ...e.completion]),
    opts,
  );
  return Float64Array.from(lps, (lp, i) => {
    let s = 0;
    for (let t = examples[i].prompt.length - 1; t < lp.length; t++) s += lp[t];
    return s;
  });
}
