// A small random-weight model folder with the built-in tokenizer, for the server's tests and the serve benchmark
// (nothing is downloaded: tests and benchmarks make their own checkpoints).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Backend } from "../backend/backend.js";
import { saveModel } from "../model/hub.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { PRESETS } from "../model/presets.js";
import { builtinTokenizer } from "../model/tokenizer.js";

/** The `tiny` preset, or a config of its own; written with the built-in tokenizer into `dir` (a temp dir by default). */
export function writeTinyModel(
  opts: { config?: LlamaConfig; seed?: number; dir?: string; backend?: Backend } = {},
): string {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-tiny-"));
  const model = new Llama(opts.config ?? (structuredClone(PRESETS.tiny) as LlamaConfig), {
    seed: opts.seed ?? 1,
    backend: opts.backend,
  });
  try {
    saveModel(model, dir);
  } finally {
    model.dispose();
  }
  builtinTokenizer().save(dir);
  return dir;
}
