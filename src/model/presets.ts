// `--init` configs: small from-scratch models. `tiny` is sized for the built-in arithmetic task (the built-in
// character tokenizer's 100 tokens, 4 layers, d_model 128) and trains in minutes on a laptop CPU;
// `smollm2-135m` has SmolLM2-135M's shapes (random weights) for benchmarks.

import fs from "node:fs";
import { InputError } from "../core/errors.js";
import { parseHfConfig } from "./config.js";
import type { Backend, DType } from "../backend/backend.js";
import { Llama, type LlamaConfig } from "./llama.js";
import { builtinTokenizer, type TextTokenizer } from "./tokenizer.js";
import { trainBpeTokenizer } from "./bpe.js";

const BUILTIN_VOCAB = 100; // builtinTokenizer().vocabSize, checked in the tests

export const PRESETS = {
  tiny: {
    model_type: "llama",
    vocab_size: BUILTIN_VOCAB,
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 1024,
    tie_word_embeddings: true,
    attention_bias: false,
    initializer_range: 0.02,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
  },
  small: {
    model_type: "llama",
    vocab_size: BUILTIN_VOCAB,
    hidden_size: 256,
    intermediate_size: 704,
    num_hidden_layers: 6,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 1024,
    tie_word_embeddings: true,
    attention_bias: false,
    initializer_range: 0.02,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
  },
  "smollm2-135m": {
    model_type: "llama",
    vocab_size: 49152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    max_position_embeddings: 8192,
    tie_word_embeddings: true,
    attention_bias: false,
    initializer_range: 0.041666666666666664,
    bos_token_id: 0,
    eos_token_id: 0,
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
  throw new InputError(
    `unknown --init "${spec}"`,
    undefined,
    `use one of ${Object.keys(PRESETS).join(", ")}, or a Hugging Face config.json`,
  );
}

export type TokenizerKind = "bpe" | "chars";

export interface InitOptions {
  seed?: number;
  dtype?: DType;
  backend?: Backend;
  /** Training texts: with them the built-in presets learn a byte-level BPE tokenizer (default kind "bpe"). */
  texts?: string[];
  tokenizer?: TokenizerKind; // "chars": the built-in character tokenizer even when texts are given
  vocabSize?: number; // BPE: specials + bytes + merges at most, default 1024
}

/**
 * The tokenizer that goes with a preset (null for presets without one): for the built-in-task presets, a BPE
 * tokenizer learned from the training texts when there are any (words become tokens, digits stay single), else
 * the built-in character tokenizer.
 */
export function presetTokenizer(spec: string, opts: InitOptions = {}): TextTokenizer | null {
  if (spec !== "tiny" && spec !== "small") return null;
  const kind = opts.tokenizer ?? (opts.texts ? "bpe" : "chars");
  if (kind === "chars") return builtinTokenizer();
  if (!opts.texts || opts.texts.length === 0) throw new InputError("a BPE tokenizer needs training texts");
  return trainBpeTokenizer(opts.texts, { vocabSize: opts.vocabSize ?? 1024 });
}

/**
 * A fresh random model for `--init` and its tokenizer (built-in presets; null otherwise). The model's vocab_size
 * is the tokenizer's, rounded up to a multiple of 64.
 */
export function initModel(spec: string, opts: InitOptions = {}): { model: Llama; tokenizer: TextTokenizer | null } {
  const config = initConfig(spec);
  const tokenizer = presetTokenizer(spec, opts);
  if (tokenizer && tokenizer.vocabSize > BUILTIN_VOCAB) config.vocab_size = Math.ceil(tokenizer.vocabSize / 64) * 64;
  return { model: new Llama(config, opts), tokenizer };
}
