// Token-level examples and their padded batches. A completion's tokens are the only ones a loss sees: prompt and
// padding positions get the ignore target -100.
//
// Legend: B rows, T time (the longest row minus one).

import { InputError } from "../core/errors.js";
import type { Backend } from "../backend/backend.js";
import { Tensor, tensor } from "../engine/tensor.js";

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
}

/** Pads rows on the right; row r predicts completion tokens only. */
export function collate(examples: Example[], padId: number, backend?: Backend): Batch {
  if (examples.length === 0) throw new InputError("cannot batch zero examples");
  const rows = examples.map((e, i) => {
    if (e.prompt.length === 0) throw new InputError(`example ${i} has an empty prompt (it needs at least BOS)`);
    if (e.completion.length === 0) throw new InputError(`example ${i} has an empty completion`);
    return [...e.prompt, ...e.completion];
  });
  const T = Math.max(...rows.map((r) => r.length)) - 1;
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(IGNORE);
  const lengths: number[] = [];
  rows.forEach((row, b) => {
    const start = examples[b].prompt.length - 1; // position whose next token is the first completion token
    for (let t = 0; t < row.length - 1; t++) {
      ids[b * T + t] = row[t];
      if (t >= start) targets[b * T + t] = row[t + 1];
    }
    lengths.push(row.length - 1 - start);
  });
  return {
    ids: tensor(ids, [B, T], "i32", backend),
    targets: tensor(targets, [B, T], "i32", backend),
    lengths,
    tokens: lengths.reduce((a, b) => a + b, 0),
  };
}

export function disposeBatch(b: Batch): void {
  b.ids.dispose();
  b.targets.dispose();
}
