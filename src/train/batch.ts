// Token-level examples and their padded batches. A completion's tokens are the only ones a loss sees: prompt and
// padding positions get the ignore target -100.
//
// Packing (`stepwise sft --pack`) puts several whole examples, each BOS..EOS, one after another in one row of at
// most --max-length tokens, so that rows carry little padding. Within a row, each example's completion tokens are
// still the only targets: its BOS is never predicted from the previous example's EOS.
// Attention DOES cross example boundaries in a packed row: the attention kernel takes only a per-row key mask (B, Tk),
// and block-diagonal (document) masking needs a per-query one or segment ids, a kernel change in every backend.
// So packing here is the classic kind (GPT pre-training, TRL's `packing=True` before padding-free): a later example
// may attend to the earlier ones in its row, and positions run on through the row. Position ids are NOT reset:
// RoPE makes attention within an example depend only on relative positions, so a reset would change nothing inside
// an example, and without a mask it would only give keys of earlier examples impossible (negative) distances.
// The first example of every row sees exactly what it sees alone; the others' losses differ (see sft.test.ts).
//
// Legend: B rows, T time (the longest row minus one).

import { InputError } from "../core/errors.js";
import type { Backend } from "../backend/backend.js";
import { type Tensor, tensor } from "../engine/tensor.js";

export const IGNORE = -100;

/** prompt (incl. BOS, and for Step-DPO the previous steps) + completion token ids. */
export interface Example {
  prompt: number[];
  completion: number[];
}

export interface Batch {
  ids: Tensor; // (B, T) i32, right-padded
  targets: Tensor; // (B, T) i32, next token or IGNORE
  lengths: number[]; // completion tokens counted per row
  tokens: number; // all counted tokens
  widths: number[]; // tokens of each row, prompt and completion, padding not (TRL's attention_mask.sum(1))
}

/** Pads rows on the right; row r predicts completion tokens only. */
export function collate(examples: Example[], padId: number, backend?: Backend): Batch {
  if (examples.length === 0) throw new InputError("cannot batch zero examples");
  return collatePacked(
    examples.map((e) => [e]),
    padId,
    backend,
  );
}

/** Packed rows, each the concatenation of its examples, padded on the right; completion tokens are the only targets. */
export function collatePacked(rows: Example[][], padId: number, backend?: Backend): Batch {
  if (rows.length === 0 || rows.some((r) => r.length === 0)) throw new InputError("cannot batch zero examples");
  let i = 0;
  for (const e of rows.flat()) {
    if (e.prompt.length === 0) throw new InputError(`example ${i} has an empty prompt (it needs at least BOS)`);
    if (e.completion.length === 0) throw new InputError(`example ${i} has an empty completion`);
    i++;
  }
  const T = Math.max(...rows.map(rowLength)) - 1;
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(IGNORE);
  const lengths: number[] = [];
  rows.forEach((row, b) => {
    const end = rowLength(row) - 1; // the row's last token predicts nothing and is left out
    let o = 0; // where this example starts in the row
    let counted = 0;
    for (const e of row) {
      const seq = [...e.prompt, ...e.completion];
      const start = o + e.prompt.length - 1; // position whose next token is the first completion token
      for (let t = 0; t < seq.length; t++) {
        const at = o + t;
        if (at < end) ids[b * T + at] = seq[t];
        if (at >= start && t < seq.length - 1) targets[b * T + at] = seq[t + 1];
      }
      counted += e.completion.length;
      o += seq.length;
    }
    lengths.push(counted);
  });
  return {
    ids: tensor(ids, [B, T], "i32", backend),
    targets: tensor(targets, [B, T], "i32", backend),
    lengths,
    tokens: lengths.reduce((a, b) => a + b, 0),
    widths: rows.map(rowLength),
  };
}

/** Tokens of one example, prompt and completion. */
export function exampleLength(e: Example): number {
  return e.prompt.length + e.completion.length;
}

/** Tokens of a packed row. */
export function rowLength(row: Example[]): number {
  return row.reduce((a, e) => a + exampleLength(e), 0);
}

/**
 * Packs whole examples into rows of at most `capacity` tokens: first-fit decreasing (longest first, each into the
 * first row with room, ties by input order), deterministic. Every example lands in exactly one row; an example
 * longer than `capacity` is an InputError (the data reader already drops those over --max-length).
 */
export function packExamples(examples: Example[], capacity: number): Example[][] {
  const order = examples
    .map((_, i) => i)
    .sort((a, b) => exampleLength(examples[b]) - exampleLength(examples[a]) || a - b);
  const rows: Example[][] = [];
  const free: number[] = []; // room left in each row
  for (const i of order) {
    const n = exampleLength(examples[i]);
    if (n > capacity) throw new InputError(`example ${i} has ${n} tokens, more than a packed row's ${capacity}`);
    const r = free.findIndex((f) => f >= n);
    if (r < 0) {
      rows.push([examples[i]]);
      free.push(capacity - n);
    } else {
      rows[r].push(examples[i]);
      free[r] -= n;
    }
  }
  return rows;
}

/**
 * The share of batch positions that are padding when items of these token `lengths` are batched in `order`,
 * `batchSize` at a time, each batch padded to its longest item: 1 - sum(length) / sum(B * longest).
 */
export function paddingFraction(lengths: number[], order: number[], batchSize: number): number {
  let real = 0;
  let all = 0;
  for (let i = 0; i < order.length; i += batchSize) {
    const ls = order.slice(i, i + batchSize).map((j) => lengths[j]);
    real += ls.reduce((a, b) => a + b, 0);
    all += ls.length * Math.max(...ls);
  }
  return all === 0 ? 0 : 1 - real / all;
}

export function disposeBatch(b: Batch): void {
  b.ids.dispose();
  b.targets.dispose();
}
