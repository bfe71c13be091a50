// GGUF model file -> Hugging Face model: `stepwise import gguf` writes a folder that transformers loads unchanged
// (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json), and a `.gguf`
// path given as --model loads the same model in memory (loadGgufModel), with no folder.
//
// The plan (planGgufImport) is read from the header alone: a LlamaConfig from the {arch}.* metadata, and for every
// Hugging Face parameter the GGUF tensor it comes from. Tensors are then dequantized one at a time (gguf-quants.ts),
// q/k rows of arch "llama" moved back from llama.cpp's interleaved rotary pairs to Hugging Face's halves.
//
// Names (N a layer): token_embd -> model.embed_tokens, blk.N.attn_norm -> model.layers.N.input_layernorm,
// blk.N.attn_q/k/v/output -> self_attn.q/k/v/o_proj (weight and bias), blk.N.ffn_norm -> post_attention_layernorm,
// blk.N.ffn_gate/up/down -> mlp.gate/up/down_proj, output_norm -> model.norm, output -> lm_head (absent: tied);
// rope_freqs (llama.cpp's per-frequency divisors) becomes config.json's llama3 rope_scaling.
//
// Legend: C hidden size, H heads, Hkv key/value heads, D head size, F MLP size, V vocab.

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { getBackend } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { noGrad } from "../engine/tensor.js";
import { toHfConfig } from "./config.js";
import {
  type GgufArch,
  type GgufFile,
  type GgufTensorInfo,
  readGguf,
  readGgufTensor,
  unpermuteRotaryRows,
} from "./gguf.js";
import { ggmlTypeName } from "./gguf-quants.js";
import { tokenizerFilesFromGguf } from "./gguf-vocab.js";
import type { LoadOptions } from "./hub.js";
import { Llama, type LlamaConfig, ropeInvFreq } from "./llama.js";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from "./lora.js";
import { type StDType, type TensorToWrite, writeCheckpoint } from "./safetensors.js";

type Json = Record<string, unknown>;

const ARCHES: readonly GgufArch[] = ["llama", "qwen2"];

/** One Hugging Face parameter and where it comes from in the GGUF file. */
export interface ImportTensor {
  name: string; // Hugging Face name
  shape: number[]; // row-major, as the model holds it
  source: GgufTensorInfo;
  rotaryHeads: number; // > 0: undo llama.cpp's q/k row permutation over this many heads
}

export interface GgufImportPlan {
  gguf: GgufFile;
  arch: GgufArch;
  config: LlamaConfig;
  tensors: ImportTensor[];
}

// --- metadata -> config ---

/** The shortest decimal that rounds to the same float32 (1e-5, not 0.000009999999747378752). */
export function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

/** Reads {arch}.* hyperparameters, with errors naming the key. */
function hyper(g: GgufFile, arch: GgufArch) {
  const m = g.metadata;
  const get = (key: string, dflt?: number): number => {
    const v = m.get(`${arch}.${key}`);
    if (v === undefined && dflt !== undefined) return dflt;
    if (v?.type === "array") {
      const xs = v.value as number[];
      if (xs.length > 0 && xs.every((x) => x === xs[0])) return xs[0]; // per-layer values, all equal
      throw new InputError(
        `metadata "${arch}.${key}" differs between layers (${xs.join(", ")})`,
        g.file,
        "per-layer head counts or sizes are not supported",
      );
    }
    if (v === undefined || typeof v.value !== "number") {
      throw new InputError(
        `metadata "${arch}.${key}" is missing or not a number`,
        g.file,
        "is this a model GGUF (not vocab-only)?",
      );
    }
    return v.type === "f32" ? shortestF32(v.value) : v.value;
  };
  const str = (key: string): string | null => {
    const v = m.get(`${arch}.${key}`);
    return v?.type === "string" ? v.value : null;
  };
  return { get, str };
}

/** The rope scaling of the metadata: none or linear; others are errors naming the key. */
function ropeScaling(g: GgufFile, arch: GgufArch): LlamaConfig["rope_scaling"] {
  const { get, str } = hyper(g, arch);
  const type = str("rope.scaling.type") ?? "none";
  if (type === "none") return null;
  if (type === "linear") return { rope_type: "linear", factor: get("rope.scaling.factor") };
  throw new InputError(`metadata "${arch}.rope.scaling.type" is "${type}"`, g.file, "supported: none, linear");
}

/**
 * Llama 3 rope scaling from llama.cpp's rope_freqs tensor (one divisor r_i per frequency f_i = theta^(-2i/D)).
 * Hugging Face's llama3 rule: r = 1 where the wavelength 2pi/f < old/high, r = factor where it is > old/low, and
 * between, 1/r = (1 - s)/factor + s with s = (old * f/2pi - low) / (high - low), linear in f. So factor = max r,
 * and a least-squares line s = A*f/2pi + B through the blended frequencies gives old/(high - low) = A and
 * -low/(high - low) = B. Only the ratios are determined (scaling old, low, high together changes nothing), so low
 * is taken as 1, as Llama 3.x ships: high = 1 - 1/B, old = -A/B. The result is checked against every divisor.
 */
function llama3Scaling(g: GgufFile, theta: number, D: number): LlamaConfig["rope_scaling"] {
  const r = readGgufTensor(g, "rope_freqs.weight");
  const where = `${g.file}: tensor "rope_freqs.weight"`;
  if (r.length !== D / 2) throw new InputError(`has ${r.length} values, the head size ${D} needs ${D / 2}`, where);
  const factor = Math.max(...r);
  if (Math.abs(factor - 1) < 1e-6) return null; // no scaling at all
  const points: [number, number][] = []; // (f / 2pi, s) of the blended frequencies
  r.forEach((ri, i) => {
    if (ri > 1 + 1e-5 && ri < factor * (1 - 1e-5)) {
      points.push([theta ** ((-2 * i) / D) / (2 * Math.PI), (1 / ri - 1 / factor) / (1 - 1 / factor)]);
    }
  });
  const fail = (why: string) => new InputError(`divisors ${why}`, where, "only llama3-style rope scaling is supported");
  if (points.length < 2) {
    throw fail(`blend ${points.length} frequencies between 1 and ${factor}: the llama3 parameters are not determined`);
  }
  const n = points.length;
  const [mx, my] = [points.reduce((a, p) => a + p[0], 0) / n, points.reduce((a, p) => a + p[1], 0) / n];
  const A =
    points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0) / points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  const B = my - A * mx;
  const scaling = {
    rope_type: "llama3" as const,
    factor: shortestF32(factor),
    low_freq_factor: 1,
    high_freq_factor: Number((1 - 1 / B).toPrecision(6)),
    original_max_position_embeddings: Math.round(-A / B),
  };
  const base = ropeInvFreq({ rope_theta: theta }, D);
  const scaled = ropeInvFreq({ rope_theta: theta, rope_scaling: scaling }, D);
  const worst = Math.max(...r.map((ri, i) => Math.abs(base[i] / scaled[i] - ri) / ri));
  if (!(worst < 1e-4)) {
    throw fail(
      `do not follow llama3 scaling (best fit ${JSON.stringify(scaling)} is off by ${worst.toExponential(1)})`,
    );
  }
  return scaling;
}

function tokenId(g: GgufFile, key: string): number | null {
  const v = g.metadata.get(`tokenizer.ggml.${key}`);
  return v !== undefined && typeof v.value === "number" ? v.value : null;
}

/** A LlamaConfig from a GGUF's metadata and tensor shapes. */
function configFromGguf(g: GgufFile, arch: GgufArch): LlamaConfig {
  const { get } = hyper(g, arch);
  const has = (name: string) => g.tensors.some((t) => t.name === name);
  const embd = g.tensors.find((t) => t.name === "token_embd.weight");
  if (!embd) throw new InputError('no tensor "token_embd.weight"', g.file, "is this a model GGUF (not vocab-only)?");
  const C = get("embedding_length");
  const H = get("attention.head_count");
  const D = get("attention.key_length", C / H);
  if (get("attention.value_length", D) !== D) {
    throw new InputError(`${arch}.attention.value_length ${get("attention.value_length")} != key_length ${D}`, g.file);
  }
  const rot = get("rope.dimension_count", D);
  if (rot !== D) {
    throw new InputError(
      `${arch}.rope.dimension_count ${rot} != head size ${D}`,
      g.file,
      "partial rotary embeddings are not supported",
    );
  }
  const qBias = has("blk.0.attn_q.bias");
  const config: LlamaConfig = {
    model_type: arch,
    vocab_size: embd.shape[0],
    hidden_size: C,
    intermediate_size: get("feed_forward_length"),
    num_hidden_layers: get("block_count"),
    num_attention_heads: H,
    num_key_value_heads: get("attention.head_count_kv", H),
    rms_norm_eps: get("attention.layer_norm_rms_epsilon"),
    rope_theta: get("rope.freq_base", 10000),
    rope_scaling: has("rope_freqs.weight") ? llama3Scaling(g, get("rope.freq_base", 10000), D) : ropeScaling(g, arch),
    max_position_embeddings: get("context_length"),
    tie_word_embeddings: !has("output.weight"),
    attention_bias: arch === "qwen2" ? true : qBias,
    attention_out_bias: arch === "llama" && has("blk.0.attn_output.bias"),
    bos_token_id: tokenId(g, "bos_token_id"),
    eos_token_id: tokenId(g, "eos_token_id"),
    pad_token_id: tokenId(g, "padding_token_id"),
  };
  if (D * H !== C) config.head_dim = D;
  return config;
}

// --- the tensor plan ---

/** Hugging Face name -> (GGUF name, shape, rotary heads) for every parameter of a config. */
function tensorNames(c: LlamaConfig, arch: GgufArch): { hf: string; gguf: string; shape: number[]; rotary: number }[] {
  const C = c.hidden_size;
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = c.head_dim ?? C / H;
  const F = c.intermediate_size;
  const rope = (heads: number) => (arch === "llama" ? heads : 0);
  const out = [{ hf: "model.embed_tokens.weight", gguf: "token_embd.weight", shape: [c.vocab_size, C], rotary: 0 }];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const [p, b] = [`model.layers.${i}.`, `blk.${i}.`];
    const add = (hf: string, gguf: string, shape: number[], rotary = 0) =>
      out.push({ hf: p + hf, gguf: b + gguf, shape, rotary });
    add("input_layernorm.weight", "attn_norm.weight", [C]);
    add("self_attn.q_proj.weight", "attn_q.weight", [H * D, C], rope(H));
    add("self_attn.k_proj.weight", "attn_k.weight", [Hkv * D, C], rope(Hkv));
    add("self_attn.v_proj.weight", "attn_v.weight", [Hkv * D, C]);
    if (c.attention_bias) {
      add("self_attn.q_proj.bias", "attn_q.bias", [H * D], rope(H));
      add("self_attn.k_proj.bias", "attn_k.bias", [Hkv * D], rope(Hkv));
      add("self_attn.v_proj.bias", "attn_v.bias", [Hkv * D]);
    }
    add("self_attn.o_proj.weight", "attn_output.weight", [C, H * D]);
    if (c.attention_out_bias) add("self_attn.o_proj.bias", "attn_output.bias", [C]);
    add("post_attention_layernorm.weight", "ffn_norm.weight", [C]);
    add("mlp.gate_proj.weight", "ffn_gate.weight", [F, C]);
    add("mlp.up_proj.weight", "ffn_up.weight", [F, C]);
    add("mlp.down_proj.weight", "ffn_down.weight", [C, F]);
  }
  out.push({ hf: "model.norm.weight", gguf: "output_norm.weight", shape: [C], rotary: 0 });
  if (!c.tie_word_embeddings)
    out.push({ hf: "lm_head.weight", gguf: "output.weight", shape: [c.vocab_size, C], rotary: 0 });
  return out;
}

/** Pairs every parameter with its GGUF tensor, checking shapes; tensors left over are an error naming them. */
function tensorPlan(g: GgufFile, c: LlamaConfig, arch: GgufArch): ImportTensor[] {
  const byName = new Map(g.tensors.map((t) => [t.name, t]));
  const plan = tensorNames(c, arch).map(({ hf, gguf, shape, rotary }) => {
    const source = byName.get(gguf);
    if (!source)
      throw new InputError(`missing tensor "${gguf}" (for ${hf})`, g.file, "the tensors do not match the metadata");
    const same = source.shape.length === shape.length && source.shape.every((d, i) => d === shape[i]);
    if (!same) {
      throw new InputError(
        `tensor "${gguf}" (${ggmlTypeName(source.type)}) has shape (${source.shape.join(", ")}), ` +
          `the metadata says (${shape.join(", ")})`,
        g.file,
      );
    }
    byName.delete(gguf);
    return { name: hf, shape, source, rotaryHeads: rotary };
  });
  if (arch === "llama") byName.delete("rope_freqs.weight"); // read into the config's rope_scaling
  if (byName.size > 0) {
    const [t] = byName.values();
    throw new InputError(
      `${byName.size} tensor(s) the ${arch} model does not use, e.g. "${t.name}" (${ggmlTypeName(t.type)})`,
      g.file,
      "this GGUF holds parts a Llama-family model cannot express",
    );
  }
  return plan;
}

/** Reads a GGUF's header and plans its import: the config and, per Hugging Face parameter, its GGUF tensor. */
export function planGgufImport(file: string): GgufImportPlan {
  const g = readGguf(file);
  const arch = g.metadata.get("general.architecture")?.value;
  if (typeof arch !== "string" || !(ARCHES as readonly string[]).includes(arch)) {
    throw new InputError(
      `general.architecture "${String(arch)}" cannot be imported`,
      file,
      `supported: ${ARCHES.join(", ")} (llama.cpp writes Llama, SmolLM2 and Mistral as "llama")`,
    );
  }
  const a = arch as GgufArch;
  const config = configFromGguf(g, a);
  return { gguf: g, arch: a, config, tensors: tensorPlan(g, config, a) };
}

/** One parameter's values in Hugging Face layout (float32, row-major). */
export function readImportTensor(plan: GgufImportPlan, t: ImportTensor): Float32Array {
  const data = readGgufTensor(plan.gguf, t.source.name);
  if (t.rotaryHeads === 0) return data;
  const D = plan.config.head_dim ?? plan.config.hidden_size / plan.config.num_attention_heads;
  return unpermuteRotaryRows(data, t.rotaryHeads, D, t.shape.length === 2 ? t.shape[1] : 1);
}

// --- outputs ---

/** generation_config.json: the special tokens transformers' generate() stops and pads with. */
function generationConfig(c: LlamaConfig): Json {
  const j: Json = { _from_model_config: true };
  if (c.bos_token_id !== null && c.bos_token_id !== undefined) j.bos_token_id = c.bos_token_id;
  if (c.eos_token_id !== null && c.eos_token_id !== undefined) j.eos_token_id = c.eos_token_id;
  if (c.pad_token_id !== null && c.pad_token_id !== undefined) j.pad_token_id = c.pad_token_id;
  return j;
}

export interface ImportOptions {
  dtype?: "f32" | "bf16"; // safetensors dtype, default f32
  /** Called after each tensor: tensors done and in all. */
  progress?: (done: number, total: number) => void;
}

export interface ImportResult {
  out: string;
  arch: GgufArch;
  dtype: "f32" | "bf16";
  tensors: number;
  types: Record<string, number>; // ggml type name -> tensors of that type in the GGUF
  params: number;
}

const ST_DTYPES: Record<"f32" | "bf16", { st: StDType; torch: string }> = {
  f32: { st: "F32", torch: "float32" },
  bf16: { st: "BF16", torch: "bfloat16" },
};

/**
 * Writes a GGUF model as a Hugging Face folder, each file atomically: the weights first, then the tokenizer
 * files, generation_config.json, and config.json last; adapter files of an earlier save there are removed.
 */
export function importGguf(file: string, outDir: string, opts: ImportOptions = {}): ImportResult {
  const dtype = opts.dtype ?? "f32";
  const dt = ST_DTYPES[dtype];
  if (!dt) throw new InputError(`unknown import dtype "${dtype}"`, undefined, "use f32 or bf16");
  const plan = planGgufImport(file);
  const tokenizer = tokenizerFilesFromGguf(plan.gguf.metadata, file); // before the weights: fails fast
  const hfConfig = toHfConfig(plan.config, { dtype: dt.torch });
  fs.mkdirSync(outDir, { recursive: true });
  let done = 0;
  const tensors: TensorToWrite[] = plan.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: dt.st,
    data: () => {
      const d = readImportTensor(plan, t);
      opts.progress?.(++done, plan.tensors.length);
      return d;
    },
  }));
  writeCheckpoint(outDir, tensors);
  writeJsonAtomic(path.join(outDir, "tokenizer.json"), tokenizer.json);
  writeJsonAtomic(path.join(outDir, "tokenizer_config.json"), tokenizer.config);
  writeJsonAtomic(path.join(outDir, "generation_config.json"), generationConfig(plan.config));
  writeJsonAtomic(path.join(outDir, "config.json"), hfConfig);
  for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) fs.rmSync(path.join(outDir, f), { force: true }); // a stale adapter
  const types: Record<string, number> = {};
  for (const t of plan.gguf.tensors) types[ggmlTypeName(t.type)] = (types[ggmlTypeName(t.type)] ?? 0) + 1;
  const params = plan.tensors.reduce((s, t) => s + t.shape.reduce((p, d) => p * d, 1), 0);
  return { out: outDir, arch: plan.arch, dtype, tensors: plan.tensors.length, types, params };
}

/** Loads a GGUF model file straight into a Llama (no folder), as loadModel does a Hugging Face folder. */
export function loadGgufModel(file: string, opts: LoadOptions = {}): Llama {
  const plan = planGgufImport(file);
  const model = new Llama(plan.config, {
    dtype: opts.dtype,
    backend: opts.backend ?? getBackend(),
    init: "none",
    maxPositions: opts.maxPositions,
  });
  model.hfConfig = toHfConfig(plan.config);
  model.source = path.resolve(file);
  try {
    const f64 = model.parameters()[0].dtype === "f64";
    noGrad(() => {
      for (const t of plan.tensors) {
        const p = model.params.get(t.name);
        if (!p) throw new InputError(`the model has no parameter "${t.name}"`, file);
        const data = readImportTensor(plan, t);
        p.backend.write(p.buf, f64 ? Float64Array.from(data) : data);
      }
    });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
