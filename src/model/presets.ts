// `--init` configs: small from-scratch models. `tiny` is sized for the built-in arithmetic task (the built-in
// character tokenizer's 100 tokens, 4 layers, d_model 128) and trains in minutes on a laptop CPU;
// `smollm2-135m` has SmolLM2-135M's shapes (random weights) for benchmarks.

import fs from "node:fs";
import { InputError } from "../core/errors.js";
import { parseHfConfig } from "./config.js";
import type { Backend, DType } from "../backend/backend.js";
import { Llama, type LlamaConfig } from "./llama.js";
import { builtinTokenizer } from "./tokenizer.js";

const BUILTIN_VOCAB = 100; // builtinTokenizer().vocabSize, checked in the tests

export const PRESETS = {
  tiny: {
    model_type: "llama", vocab_size: BUILTIN_VOCAB, hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4,
    num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 1024, tie_word_embeddings: true, attention_bias: false, initializer_range: 0.02,
    bos_token_id: 1, eos_token_id: 2, pad_token_id: 0,
  },
  small: {
    model_type: "llama", vocab_size: BUILTIN_VOCAB, hidden_size: 256, intermediate_size: 704, num_hidden_layers: 6,
    num_attention_heads: 8, num_key_value_heads: 4, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 1024, tie_word_embeddings: true, attention_bias: false, initializer_range: 0.02,
    bos_token_id: 1, eos_token_id: 2, pad_token_id: 0,
  },
  "smollm2-135m": {
    model_type: "llama", vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30,
    num_attention_heads: 9, num_key_value_heads: 3, rms_norm_eps: 1e-5, rope_theta: 100000,
    max_position_embeddings: 8192, tie_word_embeddings: true, attention_bias: false, initializer_range: 0.041666666666666664,
    bos_token_id: 0, eos_token_id: 0,
  },
} satisfies Record<string, LlamaConfig>;

export type PresetName = keyof typeof PRESETS;

/** A preset by name, or a Hugging Face config.json file (`--init tiny|CONFIG.json`). */
export function initConfig(spec: string): LlamaConfig {
  if (spec in PRESETS) return structuredClone(PRESETS[spec as PresetName]) as LlamaConfig;
  if (spec.endsWith(".json")) {
    if (!fs.existsSync(spec)) throw new InputError("no such config file", spec);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(spec, "utf8"));
    } catch (e) {
      throw new InputError(`not valid JSON (${(e as Error).message})`, spec);
    }
    return parseHfConfig(raw as Record<string, unknown>, spec);
  }
  throw new InputError(`unknown --init "${spec}"`, undefined,
    `use one of ${Object.keys(PRESETS).join(", ")}, or a Hugging Face config.json`);
}

/** The tokenizer that goes with a preset: the built-in one for the built-in-task presets. */
export function presetTokenizer(spec: string) {
  return spec === "tiny" || spec === "small" ? builtinTokenizer() : null;
}

/** A fresh random model for `--init` (and its tokenizer, for the built-in presets; null otherwise). */
export function initModel(spec: string, opts: { seed?: number; dtype?: DType; backend?: Backend } = {}) {
  return { model: new Llama(initConfig(spec), opts), tokenizer: presetTokenizer(spec) };
}
