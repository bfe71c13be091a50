// What the sample and eval stages agree on about sample records: how sample s of a problem is seeded, and the
// fields later stages define.

import { fnv1a } from "../data/task.js";
import { sequenceSeed } from "../model/generate.js";

/** The seed of sample `sample` of problem `id`: independent of every other sample, the batching and resuming. */
export function sampleSeed(seed: number, id: string, sample: number): number {
  return sequenceSeed(fnv1a(`${seed >>> 0}\u0000${id}`), sample);
}

/** Fields later stages define: a problem's own field of that name is not carried into the records. */
export const RESERVED_FIELDS = new Set([
  "sample",
  "completion",
  "finish_reason",
  "logprobs",
  "cut",
  "prefix",
  "steps",
  "correct",
  "pred",
  "first_error_step",
  "result",
]);
