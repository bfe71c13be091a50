// Shared by the CLI tests: the stepwise binary and small random-weight model folders made at test time.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { saveModel } from "../model/hub.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";

export const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));

/** A one-layer model on the built-in character tokenizer (vocabulary 100). */
export const MICRO_CONFIG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 512,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.2,
  bos_token_id: 1,
  eos_token_id: 2,
};

/** Writes a random model folder (weights, config, built-in tokenizer) to dir/name and returns its path. */
export function microModelDir(dir: string, name: string, seed: number, overrides: Partial<LlamaConfig> = {}): string {
  const d = path.join(dir, name);
  const m = new Llama({ ...MICRO_CONFIG, ...overrides }, { seed, backend: referenceBackend() });
  saveModel(m, d);
  builtinTokenizer().save(d);
  m.dispose();
  return d;
}
