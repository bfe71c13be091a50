// Hugging Face `config.json` <-> LlamaConfig, for the Llama family: llama (Llama 2/3, SmolLM2), qwen2 (Qwen2/2.5),
// mistral (without sliding window). Every key that changes the math is either understood or rejected with an
// error naming it; keys that do not (use_cache, transformers_version, ...) pass through untouched on save.
// Both transformers 4 (`rope_theta`, `rope_scaling`) and 5 (`rope_parameters`) spellings are read and written.

import { InputError } from "../core/errors.js";
import type { LlamaConfig, ModelType, RopeScaling } from "./llama.js";

export const MODEL_TYPES: readonly ModelType[] = ["llama", "qwen2", "mistral"];
const ARCHITECTURES: Record<ModelType, string> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  mistral: "MistralForCausalLM",
};

type Json = Record<string, unknown>;

function bad(key: string, detail: string, where: string, hint?: string): InputError {
  return new InputError(`config key "${key}": ${detail}`, where, hint);
}

function num(j: Json, key: string, where: string, dflt?: number): number {
  const v = j[key] ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw bad(key, v === undefined ? "is missing" : `must be a number, got ${JSON.stringify(v)}`, where);
  }
  return v;
}

function int(j: Json, key: string, where: string, dflt?: number): number {
  const v = num(j, key, where, dflt);
  if (!Number.isInteger(v) || v <= 0) throw bad(key, `must be a positive integer, got ${v}`, where);
  return v;
}

function optId(v: unknown): number | number[] | null {
  if (typeof v === "number") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
  return null;
}

/** rope_parameters (v5) or rope_theta + rope_scaling (v4) -> theta and scaling. */
function parseRope(j: Json, where: string): { theta: number; scaling: RopeScaling | null } {
  const params = (j.rope_parameters ?? j.rope_scaling ?? null) as Json | null;
  const theta = typeof params?.rope_theta === "number" ? params.rope_theta : num(j, "rope_theta", where, 10000);
  if (params === null) return { theta, scaling: null };
  const key = j.rope_parameters ? "rope_parameters" : "rope_scaling";
  if (typeof params !== "object") throw bad(key, "must be an object or null", where);
  const type = params.rope_type ?? params.type ?? "default";
  switch (type) {
    case "default":
      return { theta, scaling: null };
    case "linear":
      return { theta, scaling: { rope_type: "linear", factor: num(params, "factor", `${where} ${key}`) } };
    case "llama3":
      return {
        theta,
        scaling: {
          rope_type: "llama3",
          factor: num(params, "factor", `${where} ${key}`),
          low_freq_factor: num(params, "low_freq_factor", `${where} ${key}`),
          high_freq_factor: num(params, "high_freq_factor", `${where} ${key}`),
          original_max_position_embeddings: int(params, "original_max_position_embeddings", `${where} ${key}`),
        },
      };
    default:
      throw bad(`${key}.rope_type`, `"${String(type)}" is not supported`, where, "supported: default, linear, llama3");
  }
}

/** Rejects sliding-window attention that would actually bound attention (window shorter than the context). */
function checkSlidingWindow(j: Json, type: ModelType, maxPos: number, layers: number, where: string): void {
  const window = typeof j.sliding_window === "number" ? j.sliding_window : null;
  const active = window !== null && window < maxPos;
  if (!active) return;
  if (Array.isArray(j.layer_types) && j.layer_types.some((t) => t === "sliding_attention")) {
    throw bad(
      "layer_types",
      `has sliding_attention layers with sliding_window ${window}`,
      where,
      "sliding-window attention is not supported",
    );
  }
  if (type === "mistral") {
    throw bad(
      "sliding_window",
      `${window} is shorter than max_position_embeddings ${maxPos}`,
      where,
      "sliding-window attention is not supported; Mistral v0.2+ checkpoints have sliding_window null",
    );
  }
  const maxWindowLayers = typeof j.max_window_layers === "number" ? j.max_window_layers : layers;
  if (j.use_sliding_window === true && maxWindowLayers < layers) {
    throw bad(
      "use_sliding_window",
      `is true (window ${window}, from layer ${maxWindowLayers})`,
      where,
      "sliding-window attention is not supported",
    );
  }
}

/** Parses a Hugging Face config.json object. `where` names the file in errors. */
export function parseHfConfig(j: Json, where = "config.json"): LlamaConfig {
  if (!j || typeof j !== "object") throw new InputError("is not a JSON object", where);
  const type = j.model_type;
  if (typeof type !== "string" || !(MODEL_TYPES as readonly string[]).includes(type)) {
    throw bad(
      "model_type",
      `"${String(type)}" is not supported`,
      where,
      `supported: ${MODEL_TYPES.join(", ")} (SmolLM2 and Llama 2/3 are "llama", Qwen2/2.5 are "qwen2")`,
    );
  }
  const mt = type as ModelType;
  const act = j.hidden_act ?? "silu";
  if (act !== "silu") throw bad("hidden_act", `"${String(act)}" is not supported`, where, "Llama-family MLPs use silu");
  if (j.quantization_config) throw bad("quantization_config", "quantized checkpoints are not supported", where);
  if (j.mlp_bias === true) throw bad("mlp_bias", "true is not supported", where);
  if (typeof j.pretraining_tp === "number" && j.pretraining_tp !== 1) {
    throw bad("pretraining_tp", `${j.pretraining_tp} is not supported`, where);
  }
  const bias = mt === "qwen2" ? true : mt === "llama" ? j.attention_bias === true : false;
  const H = int(j, "num_attention_heads", where);
  const C = int(j, "hidden_size", where);
  const layers = int(j, "num_hidden_layers", where);
  const maxPos = int(j, "max_position_embeddings", where, 2048);
  checkSlidingWindow(j, mt, maxPos, layers, where);
  const { theta, scaling } = parseRope(j, where);
  const cfg: LlamaConfig = {
    model_type: mt,
    vocab_size: int(j, "vocab_size", where),
    hidden_size: C,
    intermediate_size: int(j, "intermediate_size", where),
    num_hidden_layers: layers,
    num_attention_heads: H,
    num_key_value_heads: int(j, "num_key_value_heads", where, H),
    rms_norm_eps: num(j, "rms_norm_eps", where, 1e-6),
    rope_theta: theta,
    rope_scaling: scaling,
    max_position_embeddings: maxPos,
    tie_word_embeddings: j.tie_word_embeddings === true,
    attention_bias: bias,
    attention_out_bias: mt === "llama" && bias,
    initializer_range: num(j, "initializer_range", where, 0.02),
    bos_token_id: optId(j.bos_token_id),
    eos_token_id: optId(j.eos_token_id),
    pad_token_id: optId(j.pad_token_id),
  };
  if (j.head_dim !== undefined && j.head_dim !== null) cfg.head_dim = int(j, "head_dim", where);
  const D = cfg.head_dim ?? C / H;
  if (!Number.isInteger(D) || D % 2 !== 0) {
    throw bad(
      "head_dim",
      `hidden_size / num_attention_heads = ${C} / ${H} is not an even integer`,
      where,
      "set head_dim explicitly",
    );
  }
  if (H % cfg.num_key_value_heads !== 0) {
    throw bad("num_key_value_heads", `${cfg.num_key_value_heads} does not divide num_attention_heads ${H}`, where);
  }
  return cfg;
}

/**
 * A config.json object that transformers loads as the same model. Keys of `base` (the config the model was
 * loaded from) that we do not own are kept.
 */
export function toHfConfig(c: LlamaConfig, opts: { dtype?: string; base?: Json } = {}): Json {
  const mt = c.model_type ?? "llama";
  const out = c.attention_out_bias ?? false;
  const expressible =
    mt === "llama" ? c.attention_bias === out : mt === "qwen2" ? c.attention_bias && !out : !c.attention_bias && !out;
  if (!expressible) {
    throw new InputError(
      `model_type ${mt} cannot express attention_bias=${c.attention_bias}, ` + `attention_out_bias=${out}`,
      "config",
      "llama: q/k/v/o biases together; qwen2: q/k/v only; mistral: none",
    );
  }
  const rope: Json = { ...(c.rope_scaling ?? { rope_type: "default" }), rope_theta: c.rope_theta };
  const j: Json = {
    ...(opts.base ?? {}),
    architectures: [ARCHITECTURES[mt]],
    model_type: mt,
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    head_dim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    hidden_act: "silu",
    rms_norm_eps: c.rms_norm_eps,
    max_position_embeddings: c.max_position_embeddings,
    tie_word_embeddings: c.tie_word_embeddings,
    initializer_range: c.initializer_range ?? 0.02,
    rope_theta: c.rope_theta, // transformers 4
    rope_scaling: c.rope_scaling ?? null, // transformers 4
    rope_parameters: rope, // transformers 5
    bos_token_id: c.bos_token_id ?? null,
    eos_token_id: c.eos_token_id ?? null,
    pad_token_id: c.pad_token_id ?? null,
    torch_dtype: opts.dtype ?? "float32", // transformers 4
    dtype: opts.dtype ?? "float32", // transformers 5
  };
  if (mt === "llama") Object.assign(j, { attention_bias: c.attention_bias, mlp_bias: false });
  if (mt === "qwen2" || mt === "mistral") Object.assign(j, { sliding_window: null, use_sliding_window: false });
  if (mt === "qwen2") {
    j.max_window_layers = c.num_hidden_layers;
    j.layer_types = Array.from({ length: c.num_hidden_layers }, () => "full_attention");
  }
  return j;
}
