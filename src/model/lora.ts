// LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685) on a
// Llama's linear projections, read and written in Hugging Face PEFT's format so adapters move between stepwise and
// peft unchanged.
//
// A projection y = x W^T + b gains  s * (dropout(x) A^T) B^T  with A (r, in) drawn as PEFT draws it
// (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))) and B (out, r) zero, so a fresh adapter leaves
// the model exactly unchanged. s = alpha / r, or alpha / sqrt(r) with rsLoRA (Kalajdzievski 2023, arXiv:2312.03732).
//
// Attaching freezes every base parameter (requiresGrad = false) and adds each A and B to `model.params` under
// PEFT's module names (`model.layers.N.self_attn.q_proj.lora_A.weight`): a trainer that trains the parameters that
// require grad trains exactly the adapter. Dropout masks are drawn on the host from a seeded Rng, and only while
// the adapter is in training mode (`adapter.training`, off until a trainer sets it) and autograd records (never in
// no-grad scoring or generation).
//
// Files: adapter_config.json (PEFT's LoraConfig) + adapter_model.safetensors holding
// `base_model.model.<module>.lora_A.weight` (r, in) and `base_model.model.<module>.lora_B.weight` (out, r).
//
// Legend: B batch, T time, r rank, in and out a projection's input and output sizes.

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { hostArray } from "../backend/backend.js";
import { InputError, StepwiseError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { linear } from "../engine/nn.js";
import { add, matmul, mul, scale } from "../engine/ops.js";
import { type Tensor, empty, isGradEnabled, noGrad, tensor, tidy } from "../engine/tensor.js";
import type { Llama, LlamaLayer } from "./llama.js";
import { Checkpoint, type StDType, type TensorToWrite, writeSafetensors } from "./safetensors.js";

export const LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/** Where each module sits in a layer: its Hugging Face group and the LlamaLayer field holding W (out, in). */
const MODULE: Record<LoraModule, { group: "self_attn" | "mlp"; weight: keyof LlamaLayer }> = {
  q_proj: { group: "self_attn", weight: "q" },
  k_proj: { group: "self_attn", weight: "k" },
  v_proj: { group: "self_attn", weight: "v" },
  o_proj: { group: "self_attn", weight: "o" },
  gate_proj: { group: "mlp", weight: "gate" },
  up_proj: { group: "mlp", weight: "up" },
  down_proj: { group: "mlp", weight: "down" },
};

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** The prefix PEFT's PeftModelForCausalLM puts before the base model's module names in adapter files. */
const PEFT_PREFIX = "base_model.model.";

export interface LoraOptions {
  r: number; // rank of every adapter (rankPattern overrides it per module)
  alpha?: number; // lora_alpha: updates are scaled by alpha / r; default 2 r (PEFT's own default is 8)
  dropout?: number; // lora_dropout on each adapter's input while training, in [0, 1); default 0
  targetModules?: readonly string[] | string; // suffixes of module names, or one regex over them; default all seven
  excludeModules?: readonly string[] | string | null; // modules left alone, matched like targetModules; default none
  layers?: readonly number[] | null; // PEFT's layers_to_transform: only these layers (list targets only); default all
  rslora?: boolean; // scale by alpha / sqrt(r) (rsLoRA) instead of alpha / r; default false
  rankPattern?: Record<string, number>; // PEFT's rank_pattern: regex over module names -> rank; default {}
  alphaPattern?: Record<string, number>; // PEFT's alpha_pattern: regex over module names -> alpha; default {}
  seed?: number; // A's initialisation and the dropout masks; default 0
  baseModel?: string; // base_model_name_or_path for adapter_config.json; default the model's source folder
  baseRevision?: string | null; // PEFT's revision: the base's commit or ref when it is a hub name; default null (main)
}

/** One adapted projection: W (out, in) of the base plus the trainable pair A, B. */
export interface LoraLinear {
  key: string; // the module's name in the base model, e.g. model.layers.0.self_attn.q_proj
  layer: number;
  module: LoraModule;
  r: number;
  alpha: number;
  scale: number; // alpha / r, or alpha / sqrt(r)
  A: Tensor; // (r, in)
  B: Tensor; // (out, r)
  base: Tensor; // W (out, in), frozen
}

/** A model's attached adapter. Made by attachLora or loadAdapter; its tensors are owned by the model's params. */
export class LoraAdapter {
  readonly linears: LoraLinear[] = [];
  /** False inside Llama.withAdaptersDisabled: projections are the base's alone. */
  enabled = true;
  /** True after mergeLora: the update lives in the base weights and the adapter path is skipped. */
  merged = false;
  /**
   * Training mode: dropout is applied only while this is true and autograd records. False at first, like a
   * Hugging Face model after from_pretrained; a trainer sets it true (PyTorch's model.train()).
   */
  training = false;
  /** The adapter_config.json this adapter was loaded from, if any: its keys we do not own are written back. */
  peftConfig?: Record<string, unknown>;
  private readonly byLayer: Map<LoraModule, LoraLinear>[];
  private rng: Rng;

  constructor(
    readonly options: Readonly<Required<LoraOptions>>,
    layers: number,
    /** Each base parameter's requiresGrad before attaching, restored on detach. */
    readonly frozen: ReadonlyMap<Tensor, boolean>,
  ) {
    this.byLayer = Array.from({ length: layers }, () => new Map());
    this.rng = new Rng((options.seed ^ 0x6c6f7261) >>> 0); // the init stream's seed, offset: masks are a new stream
  }

  add(l: LoraLinear): void {
    this.linears.push(l);
    this.byLayer[l.layer].set(l.module, l);
  }

  /** The adapted projection of module `module` in layer `layer`: y (B, T, out) + s (dropout(x) A^T) B^T. */
  apply(layer: number, module: LoraModule, x: Tensor, y: Tensor): Tensor {
    if (!this.enabled || this.merged) return y;
    const m = this.byLayer[layer]?.get(module);
    if (!m) return y;
    const drop = this.options.dropout > 0 && this.training && isGradEnabled();
    const xin = drop ? mul(x, this.dropoutMask(x)) : x; // (B, T, in)
    const z = scale(linear(xin, m.A), m.scale); // (B, T, r)
    return add(y, linear(z, m.B)); // (B, T, out)
  }

  /** Inverted dropout: 0 with probability p, else 1 / (1 - p), drawn on the host from the adapter's stream. */
  private dropoutMask(x: Tensor): Tensor {
    const p = this.options.dropout;
    const cut = p * 4294967296; // P(nextU32 < cut) = p
    const kept = 1 / (1 - p);
    const host = hostArray(x.dtype, x.size);
    for (let i = 0; i < host.length; i++) host[i] = this.rng.nextU32() < cut ? 0 : kept;
    const mask = empty(x.shape, x.dtype, x.backend);
    x.backend.write(mask.buf, host);
    return mask;
  }

  /** The dropout stream's state, for checkpoints; setRngState resumes it exactly. */
  rngState(): Uint32Array {
    return this.rng.state();
  }
  setRngState(state: Uint32Array): void {
    this.rng = new Rng(state);
  }

  /** Runs fn with the adapter off (see Llama.withAdaptersDisabled). */
  disabled<T>(fn: () => T): T {
    if (this.merged) {
      throw new StepwiseError(
        "the LoRA adapter is merged into the base weights, so it cannot be switched off",
        "call unmergeLora(model) first, or keep the adapter unmerged while it serves as the reference",
      );
    }
    const prev = this.enabled;
    this.enabled = false;
    try {
      return fn();
    } finally {
      this.enabled = prev;
    }
  }
}

// --- attaching ---

/** The name of a module in the base model, as PEFT and Hugging Face write it. */
export function moduleKey(layer: number, module: LoraModule): string {
  return `model.layers.${layer}.${MODULE[module].group}.${module}`;
}

/** True for the parameter names of LoRA weights (in model.params). */
export function isLoraParam(name: string): boolean {
  return /\.lora_[AB]\.weight$/.test(name);
}

/** A regular expression from a config (PEFT's are Python `re`; the common subset means the same in JavaScript). */
function regex(source: string, pattern: string): RegExp {
  try {
    return new RegExp(source);
  } catch (e) {
    throw new InputError(`LoRA: bad module pattern ${JSON.stringify(pattern)} (${(e as Error).message})`);
  }
}

function fullMatch(pattern: string, key: string): boolean {
  return regex(`^(?:${pattern})$`, pattern).test(key);
}

function listMatch(list: readonly string[], key: string): boolean {
  return list.some((t) => key === t || key.endsWith(`.${t}`));
}

/** PEFT's check_target_module_exists over our module names. */
function isTarget(o: Required<LoraOptions>, key: string, layer: number): boolean {
  const ex = o.excludeModules;
  if (ex && (typeof ex === "string" ? fullMatch(ex, key) : listMatch(ex, key))) return false;
  const t = o.targetModules;
  if (typeof t === "string") return t === "all-linear" || fullMatch(t, key);
  return listMatch(t, key) && (!o.layers || o.layers.length === 0 || o.layers.includes(layer));
}

/** PEFT's get_pattern_key: the first pattern that matches the end of the module name, dot-aligned. */
function patternValue(patterns: Record<string, number>, key: string, fallback: number): number {
  const hit = Object.keys(patterns).find((p) => regex(`^(?:.*\\.)?(?:${p})$`, p).test(key));
  return hit === undefined ? fallback : patterns[hit];
}

function resolveOptions(o: LoraOptions, model: Llama): Required<LoraOptions> {
  const r = o.r;
  const targets = o.targetModules ?? [...LORA_MODULES];
  const out: Required<LoraOptions> = {
    r,
    alpha: o.alpha ?? 2 * r,
    dropout: o.dropout ?? 0,
    targetModules: targets,
    excludeModules: o.excludeModules ?? null,
    layers: o.layers ?? null,
    rslora: o.rslora ?? false,
    rankPattern: o.rankPattern ?? {},
    alphaPattern: o.alphaPattern ?? {},
    seed: o.seed ?? 0,
    baseModel: o.baseModel ?? model.source ?? "",
    baseRevision: o.baseRevision ?? null,
  };
  const bad = (what: string, hint?: string) => new InputError(`LoRA: ${what}`, undefined, hint);
  const ranks = [r, ...Object.values(out.rankPattern)];
  if (ranks.some((x) => !Number.isInteger(x) || x < 1)) {
    throw bad(`rank must be a positive integer, got ${ranks.join(", ")}`);
  }
  const alphas = [out.alpha, ...Object.values(out.alphaPattern)];
  if (alphas.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw bad(`alpha must be a finite number, got ${alphas.join(", ")}`);
  }
  if (!(out.dropout >= 0 && out.dropout < 1)) throw bad(`dropout must be in [0, 1), got ${out.dropout}`);
  const L = model.config.num_hidden_layers;
  if (out.layers?.some((i) => !Number.isInteger(i) || i < 0 || i >= L)) {
    throw bad(`layers_to_transform ${JSON.stringify(out.layers)} is outside the model's ${L} layers`);
  }
  if (typeof targets !== "string") {
    const all = Array.from({ length: L }, (_, i) => LORA_MODULES.map((m) => moduleKey(i, m))).flat();
    const unknown = targets.filter((t) => !all.some((k) => listMatch([t], k)));
    if (unknown.length > 0 || targets.length === 0) {
      const names = unknown.map((t) => `"${t}"`).join(", ") || "(none)";
      throw bad(
        `target module${unknown.length === 1 ? "" : "s"} ${names} not among the model's linear projections`,
        `stepwise adapts ${LORA_MODULES.join(", ")} (embeddings and lm_head are not supported)`,
      );
    }
  }
  return out;
}

/**
 * Attaches a LoRA adapter to every targeted projection: A kaiming-uniform (or left for a loader to fill, with
 * init "none"), B zero. Freezes the base parameters and adds A and B to model.params. One adapter per model.
 */
export function attachLora(model: Llama, options: LoraOptions, init: "kaiming" | "none" = "kaiming"): LoraAdapter {
  if (model.lora) {
    throw new StepwiseError(
      "the model already has a LoRA adapter",
      "call detachLora(model) or mergeAndUnload(model) first",
    );
  }
  const o = resolveOptions(options, model);
  const frozen = new Map<Tensor, boolean>([...model.params.values()].map((p) => [p, p.requiresGrad]));
  const adapter = new LoraAdapter(o, model.layers.length, frozen);
  const rng = new Rng(o.seed);
  const dtype = model.embed.dtype;
  const be = model.embed.backend;
  const made: Tensor[] = [];
  const param = (name: string, shape: number[], draw: () => number) => {
    const n = shape[0] * shape[1];
    const t =
      init === "none" ? empty(shape, dtype, be) : tensor(Float64Array.from({ length: n }, draw), shape, dtype, be);
    t.keep();
    made.push(t);
    t.name = name;
    t.requiresGrad = true;
    return t;
  };
  try {
    model.layers.forEach((layer, i) => {
      for (const module of LORA_MODULES) {
        const key = moduleKey(i, module);
        if (!isTarget(o, key, i)) continue;
        const base = layer[MODULE[module].weight] as Tensor;
        const [out, inp] = base.shape;
        const r = patternValue(o.rankPattern, key, o.r);
        const alpha = patternValue(o.alphaPattern, key, o.alpha);
        const bound = 1 / Math.sqrt(inp); // kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
        const A = param(`${key}.lora_A.weight`, [r, inp], () => rng.uniform(-bound, bound));
        const B = param(`${key}.lora_B.weight`, [out, r], () => 0);
        const s = o.rslora ? alpha / Math.sqrt(r) : alpha / r;
        adapter.add({ key, layer: i, module, r, alpha, scale: s, A, B, base });
      }
    });
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
  if (adapter.linears.length === 0) {
    for (const t of made) t.dispose();
    throw new InputError(`LoRA: target modules ${JSON.stringify(o.targetModules)} match no projection of the model`);
  }
  for (const p of model.params.values()) p.requiresGrad = false;
  for (const l of adapter.linears) {
    model.params.set(l.A.name, l.A);
    model.params.set(l.B.name, l.B);
  }
  model.lora = adapter;
  return adapter;
}

function adapterOf(model: Llama): LoraAdapter {
  if (!model.lora)
    throw new StepwiseError("the model has no LoRA adapter", "attach one with attachLora or loadAdapter");
  return model.lora;
}

/** The adapter's trainable tensors by parameter name (A and B of every adapted module, in layer order). */
export function loraParams(model: Llama): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const l of adapterOf(model).linears) {
    out.set(l.A.name, l.A);
    out.set(l.B.name, l.B);
  }
  return out;
}

/**
 * Removes the adapter: frees A, B and their gradients, takes them out of model.params and restores each base
 * parameter's requiresGrad. A merged adapter's update stays in the base weights (that is mergeAndUnload).
 */
export function detachLora(model: Llama): void {
  const a = model.lora;
  if (!a) return;
  for (const l of a.linears) {
    for (const t of [l.A, l.B]) {
      model.params.delete(t.name);
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    }
  }
  for (const [p, was] of a.frozen) p.requiresGrad = was;
  model.lora = null;
}

/** W += sign * s B A for every adapted module, in place, in the model's dtype. */
function addUpdate(a: LoraAdapter, sign: 1 | -1): void {
  noGrad(() =>
    tidy(() => {
      for (const l of a.linears) {
        const delta = scale(matmul(l.B, l.A), sign * l.scale); // (out, in)
        l.base.backend.copyRange(delta.buf, 1, 0, l.base.buf, 1, 0, 1, 1, l.base.size, true);
      }
    }),
  );
}

/** Folds the adapter into the base weights (W += s B A): one matmul per projection at inference. */
export function mergeLora(model: Llama): void {
  const a = adapterOf(model);
  if (a.merged) return;
  addUpdate(a, 1);
  a.merged = true;
}

/** Takes a merged update back out of the base weights (W -= s B A; equal to the original up to rounding). */
export function unmergeLora(model: Llama): void {
  const a = adapterOf(model);
  if (!a.merged) return;
  addUpdate(a, -1);
  a.merged = false;
}

/** Merges and removes the adapter: a plain model (saveModel then writes a plain Hugging Face folder). */
export function mergeAndUnload(model: Llama): void {
  mergeLora(model);
  detachLora(model);
}

// --- PEFT files ---

/** adapter_config.json for the adapter, as PEFT's LoraConfig.save_pretrained writes it (keys old peft knows). */
export function peftConfigJson(
  a: LoraAdapter,
  baseModel = a.options.baseModel,
  revision = a.options.baseRevision ?? null,
): Record<string, unknown> {
  const o = a.options;
  const ours: Record<string, unknown> = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    revision,
    inference_mode: true,
    r: o.r,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    target_modules: typeof o.targetModules === "string" ? o.targetModules : [...o.targetModules],
    bias: "none",
    fan_in_fan_out: false,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: o.layers ? [...o.layers] : null,
    layers_pattern: null,
    rank_pattern: { ...o.rankPattern },
    alpha_pattern: { ...o.alphaPattern },
    use_rslora: o.rslora,
    use_dora: false,
  };
  const ex = o.excludeModules;
  if (ex) ours.exclude_modules = typeof ex === "string" ? ex : [...ex]; // a key peft < 0.14 does not know: only when set
  return { ...a.peftConfig, ...ours };
}

/** Options that are fine at their "off" value only: anything else changes the math or adds weights we lack. */
const MUST_BE_OFF: [string, (v: unknown) => boolean, string][] = [
  ["bias", (v) => v == null || v === "none", 'only bias "none" is supported'],
  ["fan_in_fan_out", (v) => !v, "Conv1D-style (GPT-2) weights are not used by Llama-family models"],
  ["use_dora", (v) => !v, "DoRA is not supported"],
  ["lora_bias", (v) => !v, "LoRA biases are not supported"],
  [
    "modules_to_save",
    (v) => v == null || (Array.isArray(v) && v.length === 0),
    "fully trained modules are not supported",
  ],
  ["layer_replication", (v) => v == null, "layer replication is not supported"],
  ["trainable_token_indices", (v) => v == null, "trainable tokens are not supported"],
  [
    "target_parameters",
    (v) => v == null || (Array.isArray(v) && v.length === 0),
    "parameter targets are not supported",
  ],
  ["alora_invocation_tokens", (v) => v == null, "activated LoRA is not supported"],
  ["use_qalora", (v) => !v, "QA-LoRA is not supported"],
];

/** Reads PEFT's adapter_config.json into LoraOptions, rejecting by key what stepwise does not implement. */
export function parsePeftConfig(raw: Record<string, unknown>, where: string): LoraOptions {
  const bad = (key: string, why: string) =>
    new InputError(`"${key}": ${why}`, where, "stepwise reads plain LoRA adapters of causal LMs");
  if (raw.peft_type !== "LORA") throw bad("peft_type", `${JSON.stringify(raw.peft_type)} is not "LORA"`);
  if (raw.task_type != null && raw.task_type !== "CAUSAL_LM") {
    throw bad("task_type", `${JSON.stringify(raw.task_type)} is not "CAUSAL_LM"`);
  }
  for (const [key, ok, why] of MUST_BE_OFF) if (!ok(raw[key])) throw bad(key, `${JSON.stringify(raw[key])}: ${why}`);
  const num = (key: string, dflt: number) => {
    const v = raw[key] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v)) throw bad(key, `expected a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const strings = (key: string): string[] | string | null => {
    const v = raw[key];
    if (v == null || typeof v === "string") return (v as string | null | undefined) ?? null;
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
    throw bad(key, `expected a string or a list of strings, got ${JSON.stringify(v)}`);
  };
  const pattern = (key: string): Record<string, number> => {
    const v = raw[key] ?? {};
    if (typeof v !== "object" || Array.isArray(v) || Object.values(v as object).some((x) => typeof x !== "number")) {
      throw bad(key, `expected {pattern: number}, got ${JSON.stringify(v)}`);
    }
    return v as Record<string, number>;
  };
  let layers = raw.layers_to_transform ?? null;
  if (typeof layers === "number") layers = [layers];
  if (layers !== null && !(Array.isArray(layers) && layers.every((x) => Number.isInteger(x)))) {
    throw bad("layers_to_transform", `expected a layer index or a list of them, got ${JSON.stringify(layers)}`);
  }
  const lp = raw.layers_pattern;
  const lpOk = lp == null || lp === "layers" || (Array.isArray(lp) && (lp.length === 0 || lp.includes("layers")));
  if (layers && !lpOk) throw bad("layers_pattern", `${JSON.stringify(lp)}: Llama's layers are model.layers.N`);
  const base = raw.base_model_name_or_path ?? "";
  if (typeof base !== "string") throw bad("base_model_name_or_path", `expected a string, got ${JSON.stringify(base)}`);
  const revision = raw.revision ?? null;
  if (revision !== null && typeof revision !== "string")
    throw bad("revision", `expected a string or null, got ${JSON.stringify(revision)}`);
  return {
    r: num("r", 8), // PEFT's defaults where a key is absent
    alpha: num("lora_alpha", 8),
    dropout: num("lora_dropout", 0),
    targetModules: strings("target_modules") ?? ["q_proj", "v_proj"], // PEFT's default for llama and qwen2
    excludeModules: strings("exclude_modules"),
    layers: layers as number[] | null,
    rslora: Boolean(raw.use_rslora),
    rankPattern: pattern("rank_pattern"),
    alphaPattern: pattern("alpha_pattern"),
    baseModel: base,
    baseRevision: revision,
  };
}

/** Reads adapter_config.json of an adapter folder. */
export function readAdapterConfig(dir: string): { options: LoraOptions; raw: Record<string, unknown> } {
  const file = path.join(dir, ADAPTER_CONFIG);
  if (!fs.existsSync(file)) throw new InputError(`no ${ADAPTER_CONFIG} in the adapter folder`, dir);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new InputError(`not valid JSON (${(e as Error).message})`, file);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new InputError("expected a JSON object", file);
  return { options: parsePeftConfig(raw, file), raw };
}

/**
 * Loads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) onto `model`: every tensor
 * the config implies must be in the file with its shape, and the file may hold nothing else.
 */
export function loadAdapter(model: Llama, dir: string, opts: { seed?: number } = {}): LoraAdapter {
  const { options, raw } = readAdapterConfig(dir);
  const file = path.join(dir, ADAPTER_WEIGHTS);
  if (!fs.existsSync(file)) {
    const bin = fs.existsSync(path.join(dir, "adapter_model.bin"));
    throw new InputError(
      `no ${ADAPTER_WEIGHTS} in the adapter folder`,
      dir,
      bin ? "adapter_model.bin (pickle) is not read: save the adapter with safe_serialization=True" : undefined,
    );
  }
  const ckpt = Checkpoint.open(file);
  const adapter = attachLora(model, { ...options, seed: opts.seed }, "none");
  try {
    adapter.peftConfig = raw;
    const wanted = new Set<string>();
    const f64 = model.embed.dtype === "f64";
    noGrad(() => {
      for (const l of adapter.linears) {
        for (const t of [l.A, l.B]) {
          const name = PEFT_PREFIX + t.name;
          wanted.add(name);
          if (!ckpt.has(name)) {
            throw new InputError(
              `missing tensor "${name}"`,
              file,
              `${ADAPTER_CONFIG} targets ${l.key}; the weights do not match the config`,
            );
          }
          t.backend.write(t.buf, ckpt.read(name, f64 ? "f64" : "f32", t.shape));
        }
      }
    });
    const extra = [...ckpt.tensors.keys()].filter((n) => !wanted.has(n));
    if (extra.length > 0) {
      throw new InputError(
        `${extra.length} tensor(s) the config does not explain, e.g. "${extra[0]}"`,
        file,
        `stepwise adapts ${LORA_MODULES.join(", ")} with plain LoRA (no embeddings, lm_head, DoRA or extra modules)`,
      );
    }
  } catch (e) {
    detachLora(model);
    throw e;
  } finally {
    ckpt.close();
  }
  return adapter;
}

/** The adapter's tensors under PEFT's names, read from the backend as the writer reaches them. */
export function adapterTensors(model: Llama, dtype: StDType = "F32"): TensorToWrite[] {
  return [...loraParams(model)].map(([name, t]) => ({
    name: PEFT_PREFIX + name,
    shape: t.shape,
    dtype,
    data: () => t.toArray(),
  }));
}

/**
 * Writes the adapter as a PEFT folder: adapter_config.json and adapter_model.safetensors (each atomically), which
 * peft's PeftModel.from_pretrained(base, dir) loads. baseModel (base_model_name_or_path) and revision default to the
 * adapter's own; they are written as given (saveModel writes the base's hub name or a relative path, see hub.ts).
 */
export function saveAdapter(
  model: Llama,
  dir: string,
  opts: { dtype?: "f32" | "f16" | "bf16"; baseModel?: string; revision?: string | null } = {},
): void {
  const a = adapterOf(model);
  const st: StDType = opts.dtype === "f16" ? "F16" : opts.dtype === "bf16" ? "BF16" : "F32";
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), adapterTensors(model, st));
  writeJsonAtomic(path.join(dir, ADAPTER_CONFIG), peftConfigJson(a, opts.baseModel, opts.revision));
}
