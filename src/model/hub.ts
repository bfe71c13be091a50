// Hugging Face model folders: config.json + model.safetensors (or shards) [+ tokenizer files], read into a Llama and
// written back so that transformers' from_pretrained loads them unchanged.
//
// Loading allocates each parameter once on the backend and reads its bytes from the file into one host array of
// that tensor's size: a checkpoint is never held twice. Names follow Hugging Face (model.layers.N.self_attn.q_proj...).
//
// LoRA (lora.ts): a folder with adapter_config.json is an adapter. With config.json beside it, the folder holds its
// own base weights (what saveModel writes for a model with an unmerged adapter); without, the base is the folder
// named by base_model_name_or_path. Either way loadModel returns the base with the adapter attached, unmerged, and
// loadModelTokenizer gives the adapter folder's tokenizer.json, or, when it has none (what PEFT's save_pretrained
// writes holds none), the base's. saveModel records the base as PEFT would: its Hugging Face name when it was loaded
// from the hub cache, else its path relative to the adapter folder (never an absolute path of this machine).
//
// A `.gguf` path (a llama.cpp model file) loads in memory through the importer (gguf-import.ts), no folder needed;
// loadModelTokenizer gives its vocabulary's tokenizer.

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import type { Backend, DType } from "../backend/backend.js";
import { getBackend } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { noGrad } from "../engine/tensor.js";
import { parseHfConfig, toHfConfig } from "./config.js";
import { baseModelRecord, cachedSnapshot, parseHubName } from "./hubcache.js";
import { loadGgufTokenizer } from "./gguf.js";
import { loadGgufModel } from "./gguf-import.js";
import { Llama, type LlamaConfig } from "./llama.js";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, isLoraParam, loadAdapter, readAdapterConfig, saveAdapter } from "./lora.js";
import { Checkpoint, type StDType, type TensorToWrite, writeCheckpoint } from "./safetensors.js";
import { TextTokenizer } from "./tokenizer.js";

/** Tensors some checkpoints carry that are not parameters (rotary caches of older transformers). */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

export interface LoadOptions {
  dtype?: DType; // compute dtype of the parameters, default f32
  backend?: Backend;
  maxPositions?: number; // initial rotary table size, see Llama
  /** Receives warnings (unexpected tensors); default: written to stderr. */
  warn?: (msg: string) => void;
  /** Attach the LoRA adapter of an adapter folder (default true); false loads only the base. */
  adapter?: boolean;
}

export function readConfig(dir: string): { config: LlamaConfig; raw: Record<string, unknown> } {
  const file = path.join(dir, "config.json");
  if (!fs.existsSync(file))
    throw new InputError("no config.json in the model folder", dir, "is this a Hugging Face model folder?");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new InputError(`not valid JSON (${(e as Error).message})`, file);
  }
  return { config: parseHfConfig(raw, file), raw };
}

function stderrWarn(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Whether a --model argument names a GGUF file rather than a folder. */
export function isGgufPath(where: string): boolean {
  return /\.gguf$/i.test(where);
}

/** A --model path that does not exist, reported as such (not as the first file the loader looks for in it). */
function requireModelPath(where: string): void {
  if (fs.existsSync(where)) return;
  const gguf = isGgufPath(where);
  throw new InputError(
    gguf ? "no such model file" : "no such model folder",
    where,
    gguf ? undefined : "pass a model folder, an adapter folder, a .gguf file or a Hugging Face name (owner/name)",
  );
}

/** An adapter folder without base weights of its own (no config.json): PEFT's save_pretrained output. */
function isAdapterOnly(dir: string): boolean {
  return fs.existsSync(path.join(dir, ADAPTER_CONFIG)) && !fs.existsSync(path.join(dir, "config.json"));
}

/**
 * The tokenizer of a model folder (tokenizer.json), of a GGUF file's vocabulary, or, for an adapter folder without
 * a tokenizer.json, of the adapter's base.
 */
export function loadModelTokenizer(where: string): TextTokenizer {
  requireModelPath(where);
  if (isGgufPath(where)) return loadGgufTokenizer(where);
  if (isAdapterOnly(where) && !fs.existsSync(path.join(where, "tokenizer.json")))
    return loadModelTokenizer(adapterBase(where));
  return TextTokenizer.load(where);
}

/**
 * Loads a Hugging Face model folder (config.json + safetensors) into a Llama; an adapter folder (adapter_config.json)
 * loads as its base with the adapter attached (see the top of this file); a .gguf file through the importer.
 */
export function loadModel(dir: string, opts: LoadOptions = {}): Llama {
  requireModelPath(dir);
  if (isGgufPath(dir)) return loadGgufModel(dir, opts);
  const isAdapter = opts.adapter !== false && fs.existsSync(path.join(dir, ADAPTER_CONFIG));
  const baseDir = isAdapterOnly(dir) ? adapterBase(dir) : dir; // with adapter: false, that base alone
  if (isGgufPath(baseDir)) {
    const base = loadGgufModel(baseDir, opts); // an adapter on a .gguf base
    return isAdapter ? withAdapter(base, dir) : base;
  }
  const { config, raw } = readConfig(baseDir);
  const model = new Llama(config, {
    dtype: opts.dtype,
    backend: opts.backend ?? getBackend(),
    init: "none",
    maxPositions: opts.maxPositions,
  });
  model.hfConfig = raw;
  model.source = path.resolve(baseDir);
  try {
    loadWeights(model, baseDir, opts.warn);
    if (isAdapter) loadAdapter(model, dir);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Attaches the adapter of folder `dir` to a loaded base (freeing the base if that fails). */
function withAdapter(model: Llama, dir: string): Llama {
  try {
    loadAdapter(model, dir);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/**
 * The base model of an adapter folder: base_model_name_or_path (a folder or a .gguf file), relative to the adapter
 * folder or the cwd, or a Hugging Face name (at PEFT's revision, if set) found in the local hub cache (hubcache.ts).
 */
function adapterBase(dir: string): string {
  const { baseModel: name = "", baseRevision } = readAdapterConfig(dir).options;
  const where = path.join(dir, ADAPTER_CONFIG);
  if (!name) throw new InputError("the adapter names no base model (base_model_name_or_path is empty)", where);
  const tried = [...new Set([path.resolve(dir, name), path.resolve(name)])];
  const found = tried.find((d) => fs.existsSync(isGgufPath(d) ? d : path.join(d, "config.json")));
  if (found) return found;
  const hubName = tried.some((d) => fs.existsSync(d)) ? null : parseHubName(name);
  if (hubName) return cachedSnapshot(baseRevision ? { ...hubName, revision: baseRevision } : hubName); // as PEFT names it
  throw new InputError(
    `base model "${name}" not found (looked in ${tried.join(", ")})`,
    where,
    "base_model_name_or_path must be a local model folder or a Hugging Face name in the cache; edit it or copy the base there",
  );
}

/** Reads every parameter of `model` from the checkpoint at `where` (folder or file), checking names and shapes. */
export function loadWeights(model: Llama, where: string, warn: (msg: string) => void = stderrWarn): void {
  const ckpt = Checkpoint.open(where);
  try {
    const wanted = new Set([...model.params.keys()].filter((n) => !isLoraParam(n)));
    const missing = [...wanted].filter((n) => !ckpt.has(n));
    if (missing.length > 0) {
      throw new InputError(
        `missing tensor${missing.length > 1 ? "s" : ""} ${missing
          .slice(0, 5)
          .map((n) => `"${n}"`)
          .join(", ")}` + `${missing.length > 5 ? ` and ${missing.length - 5} more` : ""}`,
        ckpt.where,
        "the checkpoint does not match config.json",
      );
    }
    const tied = model.config.tie_word_embeddings ? ["lm_head.weight"] : [];
    const extra = [...ckpt.tensors.keys()].filter((n) => !wanted.has(n) && !IGNORED.test(n) && !tied.includes(n));
    if (extra.length > 0) {
      warn(`stepwise: ${ckpt.where}: ${extra.length} tensor(s) not used by the model, e.g. "${extra[0]}"`);
    }
    // One host array of the largest tensor's size is reused for every tensor: file -> scratch -> backend buffer.
    const largest = Math.max(...[...wanted].map((n) => model.params.get(n)!.size));
    const f64 = model.parameters()[0].dtype === "f64";
    const scratch = f64 ? new Float64Array(largest) : new Float32Array(largest);
    noGrad(() => {
      for (const name of wanted) {
        const p = model.params.get(name)!;
        p.backend.write(p.buf, ckpt.read(name, f64 ? "f64" : "f32", p.shape, scratch.subarray(0, p.size)));
      }
    });
  } finally {
    ckpt.close();
  }
}

export interface SaveOptions {
  dtype?: "f32" | "f16" | "bf16"; // on-disk dtype, default f32
  maxShardBytes?: number; // shard above this size (default 5 GB, as transformers)
}

const ST: Record<NonNullable<SaveOptions["dtype"]>, { st: StDType; torch: string }> = {
  f32: { st: "F32", torch: "float32" },
  f16: { st: "F16", torch: "float16" },
  bf16: { st: "BF16", torch: "bfloat16" },
};

/** The model's base tensors for writing (no LoRA weights), read from the backend as the writer reaches them. */
export function modelTensors(model: Llama, dtype: StDType = "F32"): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (const [name, p] of model.params) {
    if (name === "lm_head.weight" && model.config.tie_word_embeddings) continue;
    if (isLoraParam(name)) continue;
    out.push({ name, shape: p.shape, dtype, data: () => p.toArray() });
  }
  return out;
}

/**
 * Writes config.json and the weights (model.safetensors, or shards + index) into `dir`, each file atomically.
 * Keys of the config the model was loaded from that we do not own are kept. Tokenizer files are the caller's.
 * With an unmerged LoRA adapter the base weights are written plus the adapter's PEFT files; otherwise (no adapter,
 * or merged) a plain Hugging Face folder, and adapter files of an earlier save there are removed.
 */
export function saveModel(model: Llama, dir: string, opts: SaveOptions = {}): void {
  const dt = ST[opts.dtype ?? "f32"];
  if (!dt) throw new InputError(`unknown save dtype "${opts.dtype}"`, undefined, "use f32, f16 or bf16");
  fs.mkdirSync(dir, { recursive: true });
  writeCheckpoint(dir, modelTensors(model, dt.st), { maxShardBytes: opts.maxShardBytes });
  writeJsonAtomic(path.join(dir, "config.json"), toHfConfig(model.config, { dtype: dt.torch, base: model.hfConfig }));
  if (model.lora && !model.lora.merged) {
    const base = baseModelRecord(model.lora.options.baseModel || path.resolve(dir), dir);
    saveAdapter(model, dir, { dtype: opts.dtype, baseModel: base.name, revision: base.revision });
  } else {
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) fs.rmSync(path.join(dir, f), { force: true });
  }
}
