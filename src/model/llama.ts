// A Llama-family decoder (Llama, Qwen2, Mistral, SmolLM2) on the engine, with Hugging Face parameter names.
// RMSNorm, rotary embeddings (rotate_half; linear or llama3 frequency scaling), grouped-query attention, SwiGLU
// MLP, tied or untied embeddings, optional q/k/v biases (Qwen2) and o bias (Llama's attention_bias). Hugging Face
// folders are read and written by hub.ts; config.json by config.ts; LoRA adapters (lora.ts) hook into the seven
// linear projections of every layer.
//
// Legend: B batch, T time, C hidden size, H heads, Hkv key/value heads, D head size, F MLP size, V vocab.

import type { Backend, DType } from "../backend/backend.js";
import { getBackend } from "../backend/index.js";
import { ShapeError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { linear } from "../engine/nn.js";
import { add, attention, gather, mul, reshape, rmsnorm, rope, silu, slice } from "../engine/ops.js";
import { type Tensor, empty, noGrad, tensor, zeros } from "../engine/tensor.js";
import type { LoraAdapter, LoraModule } from "./lora.js";

export type ModelType = "llama" | "qwen2" | "mistral";

/** Rotary frequency scaling (Hugging Face `rope_scaling` / `rope_parameters`). */
export type RopeScaling =
  | { rope_type: "linear"; factor: number }
  | {
      rope_type: "llama3";
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };

export interface LlamaConfig {
  model_type?: ModelType; // default "llama"; decides config.json's architecture on save
  vocab_size: number;
  hidden_size: number; // C
  intermediate_size: number; // F
  num_hidden_layers: number;
  num_attention_heads: number; // H
  num_key_value_heads: number; // Hkv
  head_dim?: number; // D, default C / H
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling?: RopeScaling | null; // default none
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  attention_bias: boolean; // q/k/v biases (Qwen2; Llama's attention_bias adds o too)
  attention_out_bias?: boolean; // o_proj bias (Llama with attention_bias), default false
  initializer_range?: number; // std of the normal init, default 0.02
  bos_token_id?: number | number[] | null; // passed through to config.json
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | number[] | null;
}

export interface LlamaLayer {
  inputNorm: Tensor; // (C)
  q: Tensor; // (H*D, C)
  k: Tensor; // (Hkv*D, C)
  v: Tensor; // (Hkv*D, C)
  qBias: Tensor | null; // (H*D)
  kBias: Tensor | null; // (Hkv*D)
  vBias: Tensor | null; // (Hkv*D)
  o: Tensor; // (C, H*D)
  oBias: Tensor | null; // (C)
  postNorm: Tensor; // (C)
  gate: Tensor; // (F, C)
  up: Tensor; // (F, C)
  down: Tensor; // (C, F)
}

export class Llama {
  readonly headDim: number;
  readonly params = new Map<string, Tensor>(); // Hugging Face names -> parameters
  readonly embed: Tensor; // (V, C)
  readonly layers: LlamaLayer[] = [];
  readonly norm: Tensor; // (C)
  readonly lmHead: Tensor; // (V, C), the embedding itself when tied
  /** The config.json this model was loaded from, if any: its keys we do not own are written back on save. */
  hfConfig?: Record<string, unknown>;
  /** The folder this model was loaded from, if any (an adapter's base_model_name_or_path). */
  source?: string;
  /** The attached LoRA adapter (lora.ts: attachLora, loadAdapter), or null. Its A and B are in `params` too. */
  lora: LoraAdapter | null = null;
  private ropeCos: Tensor; // (P, D/2)
  private ropeSin: Tensor; // (P, D/2)
  private readonly retiredRope: Tensor[] = [];
  private readonly dtype: DType;
  private readonly be: Backend;

  /**
   * A model with random weights (normal, std initializer_range; norms at 1), deterministic by seed; with
   * init "none", zero-filled parameters for a loader to overwrite (no time spent drawing random numbers).
   * Rotary tables cover min(max_position_embeddings, maxPositions ?? 4096) positions and grow on demand.
   */
  constructor(
    readonly config: LlamaConfig,
    opts: { seed?: number; dtype?: DType; backend?: Backend; init?: "random" | "none"; maxPositions?: number } = {},
  ) {
    const c = config;
    const dtype = opts.dtype ?? "f32";
    const be = opts.backend ?? getBackend();
    this.dtype = dtype;
    this.be = be;
    this.headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    const D = this.headDim;
    if (!Number.isInteger(D) || D % 2 !== 0 || c.num_attention_heads % c.num_key_value_heads !== 0) {
      throw new ShapeError(
        "Llama",
        { heads: [c.num_attention_heads, c.num_key_value_heads, D] },
        "head size must be an even integer and heads a multiple of key/value heads",
      );
    }
    const rng = new Rng(opts.seed ?? 0);
    const std = c.initializer_range ?? 0.02;
    const random = (opts.init ?? "random") === "random";
    const param = (name: string, shape: number[], init: "normal" | "ones" | "zeros") => {
      let t: Tensor;
      if (!random) t = empty(shape, dtype, be).keep();
      else {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = new Float64Array(n);
        if (init === "normal") for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
        else if (init === "ones") data.fill(1);
        t = tensor(data, shape, dtype, be).keep();
      }
      t.name = name;
      t.requiresGrad = true;
      this.params.set(name, t);
      return t;
    };
    const C = c.hidden_size;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const F = c.intermediate_size;
    this.embed = param("model.embed_tokens.weight", [c.vocab_size, C], "normal");
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      this.layers.push({
        inputNorm: param(`${p}input_layernorm.weight`, [C], "ones"),
        q: param(`${p}self_attn.q_proj.weight`, [H * D, C], "normal"),
        k: param(`${p}self_attn.k_proj.weight`, [Hkv * D, C], "normal"),
        v: param(`${p}self_attn.v_proj.weight`, [Hkv * D, C], "normal"),
        qBias: c.attention_bias ? param(`${p}self_attn.q_proj.bias`, [H * D], "zeros") : null,
        kBias: c.attention_bias ? param(`${p}self_attn.k_proj.bias`, [Hkv * D], "zeros") : null,
        vBias: c.attention_bias ? param(`${p}self_attn.v_proj.bias`, [Hkv * D], "zeros") : null,
        o: param(`${p}self_attn.o_proj.weight`, [C, H * D], "normal"),
        oBias: c.attention_out_bias ? param(`${p}self_attn.o_proj.bias`, [C], "zeros") : null,
        postNorm: param(`${p}post_attention_layernorm.weight`, [C], "ones"),
        gate: param(`${p}mlp.gate_proj.weight`, [F, C], "normal"),
        up: param(`${p}mlp.up_proj.weight`, [F, C], "normal"),
        down: param(`${p}mlp.down_proj.weight`, [C, F], "normal"),
      });
    }
    this.norm = param("model.norm.weight", [C], "ones");
    this.lmHead = c.tie_word_embeddings ? this.embed : param("lm_head.weight", [c.vocab_size, C], "normal");
    const positions = Math.min(c.max_position_embeddings, opts.maxPositions ?? 4096);
    [this.ropeCos, this.ropeSin] = ropeTables(positions, D, ropeInvFreq(c, D), dtype, be);
  }

  /** Rotary positions the tables cover now. */
  get ropePositions(): number {
    return this.ropeCos.shape[0];
  }

  /** Grows the rotary tables to cover positions [0, n) (e.g. before generating past 4096 tokens). */
  ensurePositions(n: number): void {
    if (n <= this.ropePositions) return;
    const size = Math.max(n, 2 * this.ropePositions);
    // A pending backward may still read the old tables: they are freed with the model, not now.
    this.retiredRope.push(this.ropeCos, this.ropeSin);
    [this.ropeCos, this.ropeSin] = ropeTables(
      size,
      this.headDim,
      ropeInvFreq(this.config, this.headDim),
      this.dtype,
      this.be,
    );
  }

  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  numParams(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /**
   * Logits (B, T, V) for token ids (B, T) i32. pos (B, T) i32 defaults to 0..T-1 on every row; keyMask (B, T)
   * i32 marks padding keys with 0.
   */
  forward(ids: Tensor, opts: { pos?: Tensor; keyMask?: Tensor | null } = {}): Tensor {
    return this.logits(this.hidden(ids, opts)); // (B, T, V)
  }

  /** The final hidden states (B, T, C), after the last norm: `forward` is `logits(hidden(...))`. */
  hidden(ids: Tensor, opts: { pos?: Tensor; keyMask?: Tensor | null } = {}): Tensor {
    if (ids.rank !== 2) throw new ShapeError("Llama.forward", { ids: ids.shape }, "ids must be (B, T)");
    const [B, T] = ids.shape;
    if (!opts.pos) this.ensurePositions(T);
    const pos =
      opts.pos ??
      tensor(
        Array.from({ length: B * T }, (_, i) => i % T),
        [B, T],
        "i32",
        ids.backend,
      );
    const keyMask = opts.keyMask ?? null;
    return this.decoder(ids, pos, (q, k, v) => attention(q, k, v, { keyMask }));
  }

  /**
   * Runs fn with the LoRA adapter switched off: the base model, e.g. the DPO reference, without a second copy of
   * the weights. fn must be synchronous. Without an adapter, just fn(). An error if the adapter is merged.
   */
  withAdaptersDisabled<T>(fn: () => T): T {
    return this.lora ? this.lora.disabled(fn) : fn();
  }

  /** Hidden states (..., C) -> logits (..., V). */
  logits(h: Tensor): Tensor {
    return linear(h, this.lmHead);
  }

  /**
   * The decoder stack, top to bottom, up to the final norm: (B, T) ids -> (B, T, C). `attend` gets layer i's
   * rotated queries (B, T, H, D) and keys, values (B, T, Hkv, D) and returns (B, T, H, D): plain causal attention
   * for `hidden`, attention over the KV cache for `forwardCached`.
   */
  private decoder(
    ids: Tensor,
    pos: Tensor,
    attend: (q: Tensor, k: Tensor, v: Tensor, layer: number) => Tensor,
  ): Tensor {
    const [B, T] = ids.shape;
    const c = this.config;
    const D = this.headDim;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const [cos, sin] = [this.ropeCos, this.ropeSin];
    let x = gather(this.embed, ids); // (B, T, C)
    this.layers.forEach((l, i) => {
      const h = rmsnorm(x, l.inputNorm, c.rms_norm_eps); // (B, T, C)
      const q = rope(reshape(this.proj(h, i, "q_proj", l.q, l.qBias), [B, T, H, D]), cos, sin, pos); // (B, T, H, D)
      const k = rope(reshape(this.proj(h, i, "k_proj", l.k, l.kBias), [B, T, Hkv, D]), cos, sin, pos); // (B, T, Hkv, D)
      const v = reshape(this.proj(h, i, "v_proj", l.v, l.vBias), [B, T, Hkv, D]); // (B, T, Hkv, D)
      const a = attend(q, k, v, i); // (B, T, H, D)
      x = add(x, this.proj(reshape(a, [B, T, H * D]), i, "o_proj", l.o, l.oBias)); // (B, T, C)
      const m = rmsnorm(x, l.postNorm, c.rms_norm_eps); // (B, T, C)
      const gate = silu(this.proj(m, i, "gate_proj", l.gate, null)); // (B, T, F)
      const mlp = mul(gate, this.proj(m, i, "up_proj", l.up, null)); // (B, T, F)
      x = add(x, this.proj(mlp, i, "down_proj", l.down, null)); // (B, T, C)
    });
    return rmsnorm(x, this.norm, c.rms_norm_eps); // (B, T, C)
  }

  /** x (B, T, in) -> x W^T + b (B, T, out), plus layer i's LoRA update of this module where one is active. */
  private proj(x: Tensor, i: number, module: LoraModule, w: Tensor, b: Tensor | null): Tensor {
    const y = linear(x, w, b); // (B, T, out)
    return this.lora ? this.lora.apply(i, module, x, y) : y;
  }

  /** An empty KV cache for `batch` rows of up to `capacity` tokens each (prompt and generated). */
  newCache(batch: number, capacity: number): KVCache {
    this.ensurePositions(capacity);
    const c = this.config;
    return new KVCache(batch, capacity, c.num_hidden_layers, c.num_key_value_heads, this.headDim, this.dtype, this.be);
  }

  /**
   * Logits of ids (B, T) i32 appended to `cache` after its filled slots: prefill (empty cache, any T) and decode
   * (T = 1) for generation, without gradients. `valid` (B*T on the host, default all 1) marks real tokens; 0 marks
   * padding, which no query attends to and which takes no rotary position: prompts of different lengths are
   * left-padded so that every row's last token sits in the same slot, and each row's positions count its own real
   * tokens. lastOnly returns only the last slot's logits (B, 1, V), else (B, T, V). The cache grows by T slots;
   * keys and values are appended in place (copyRange), never copied whole, except that a multi-token append after a
   * prefill that does not end at the cache's capacity attends over a copy of the filled prefix.
   */
  forwardCached(ids: Tensor, cache: KVCache, opts: { valid?: ArrayLike<number>; lastOnly?: boolean } = {}): Tensor {
    if (
      ids.rank !== 2 ||
      ids.shape[0] !== cache.batch ||
      ids.shape[1] < 1 ||
      cache.length + ids.shape[1] > cache.capacity ||
      cache.keys.length !== this.layers.length
    ) {
      throw new ShapeError(
        "Llama.forwardCached",
        { ids: ids.shape, cache: [cache.batch, cache.length, cache.capacity] },
        "ids must be (B, T) with B the cache's rows and T within its free slots, for a cache of this model",
      );
    }
    const [B, T] = ids.shape;
    return noGrad(() => {
      const start = cache.length;
      const end = start + T;
      const pos = tensor(cache.advance(T, opts.valid), [B, T], "i32", this.be); // (B, T)
      // Keys a query may see: this chunk alone (prefill), the whole cache (its filled slots unmasked), or a prefix.
      const whole = start > 0 && (T === 1 || end === cache.capacity);
      const keyMask = whole ? cache.mask : tensor(cache.maskSlots(end), [B, end], "i32", this.be); // (B, Tk)
      const h = this.decoder(ids, pos, (q, k, v, i) => {
        cache.append(i, k, v, start);
        if (start === 0) return attention(q, k, v, { keyMask });
        if (whole) return attention(q, cache.keys[i], cache.values[i], { keyMask });
        return attention(q, slice(cache.keys[i], 1, 0, end), slice(cache.values[i], 1, 0, end), { keyMask });
      }); // (B, T, C)
      return this.logits(opts.lastOnly ? slice(h, 1, T - 1, 1) : h); // (B, T or 1, V)
    });
  }

  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.dispose();
    }
    this.ropeCos.dispose();
    this.ropeSin.dispose();
    for (const r of this.retiredRope) r.dispose();
  }
}

/**
 * Keys and values of every layer for incremental decoding: B rows of S slots, filled left to right, the same slot
 * index in every row at each step. Made by `Llama.newCache`; owned by its creator, who calls dispose(). Slots start
 * zeroed and masked, so unfilled ones are never read as garbage.
 */
export class KVCache {
  readonly keys: Tensor[] = []; // per layer (B, S, Hkv, D)
  readonly values: Tensor[] = []; // per layer (B, S, Hkv, D)
  readonly mask: Tensor; // (B, S) i32: 1 where a slot holds a real token, 0 for padding and empty slots
  /** Slots filled so far, the same for every row. */
  length = 0;
  private readonly maskHost: Int32Array; // (B, S), mirrored into `mask`
  private readonly nextPos: Int32Array; // (B): rotary position of each row's next real token
  private readonly rowSize: number; // Hkv * D

  constructor(
    readonly batch: number,
    readonly capacity: number,
    layers: number,
    private readonly hkv: number,
    private readonly d: number,
    private readonly dtype: DType,
    be: Backend,
  ) {
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(capacity) || capacity < 1) {
      throw new ShapeError("KVCache", { cache: [batch, capacity] }, "needs at least one row and one slot");
    }
    this.rowSize = hkv * d;
    try {
      for (let i = 0; i < layers; i++) {
        this.keys.push(zeros([batch, capacity, hkv, d], dtype, be).keep());
        this.values.push(zeros([batch, capacity, hkv, d], dtype, be).keep());
      }
      this.mask = zeros([batch, capacity], "i32", be).keep();
    } catch (e) {
      this.dispose();
      throw e;
    }
    this.maskHost = new Int32Array(batch * capacity);
    this.nextPos = new Int32Array(batch);
  }

  /**
   * Claims the next T slots of every row: marks them in the mask (valid[b*T + t], default 1) and returns the rotary
   * positions (B*T) of their tokens (each row counts its own real tokens; padding gets 0).
   */
  advance(T: number, valid?: ArrayLike<number>): Int32Array {
    const B = this.batch;
    const S = this.capacity;
    if (valid && valid.length !== B * T) {
      throw new ShapeError("KVCache.advance", { valid: [valid.length], ids: [B, T] }, "one valid flag per token");
    }
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const real = valid ? (valid[b * T + t] ? 1 : 0) : 1;
        this.maskHost[b * S + this.length + t] = real;
        pos[b * T + t] = real ? this.nextPos[b]++ : 0;
      }
    }
    this.length += T;
    this.mask.backend.write(this.mask.buf, this.maskHost);
    return pos;
  }

  /** The mask of slots [0, n) of every row (B*n), for attention over a prefix of the cache. */
  maskSlots(n: number): Int32Array {
    const out = new Int32Array(this.batch * n);
    for (let b = 0; b < this.batch; b++)
      out.set(this.maskHost.subarray(b * this.capacity, b * this.capacity + n), b * n);
    return out;
  }

  /** Writes layer i's keys and values (B, T, Hkv, D) into slots [start, start + T) of every row. */
  append(i: number, k: Tensor, v: Tensor, start: number): void {
    const T = k.shape[1];
    const be = k.backend;
    be.copyRange(k.buf, T, 0, this.keys[i].buf, this.capacity, start, this.batch, T, this.rowSize, false);
    be.copyRange(v.buf, T, 0, this.values[i].buf, this.capacity, start, this.batch, T, this.rowSize, false);
  }

  /**
   * A new cache holding only `rows` of this one (in that order), e.g. the sequences still generating once others have
   * finished; this cache is left as it was. Copies those rows' filled slots once.
   */
  select(rows: number[]): KVCache {
    const B = this.batch;
    const S = this.capacity;
    const bad = rows.find((r) => !Number.isInteger(r) || r < 0 || r >= B);
    if (bad !== undefined || rows.length === 0) {
      throw new ShapeError(
        "KVCache.select",
        { rows: [rows.length], cache: [B] },
        `rows must be in [0, ${B}), got ${bad}`,
      );
    }
    const be = this.mask.backend;
    const out = new KVCache(rows.length, S, this.keys.length, this.hkv, this.d, this.dtype, be);
    const n = this.length;
    rows.forEach((r, i) => {
      for (let l = 0; l < this.keys.length; l++) {
        // slots [0, n) of row r, viewing (B, S, Hkv*D) as (B*S, Hkv*D)
        be.copyRange(
          this.keys[l].buf,
          B * S,
          r * S,
          out.keys[l].buf,
          rows.length * S,
          i * S,
          1,
          n,
          this.rowSize,
          false,
        );
        be.copyRange(
          this.values[l].buf,
          B * S,
          r * S,
          out.values[l].buf,
          rows.length * S,
          i * S,
          1,
          n,
          this.rowSize,
          false,
        );
      }
      out.maskHost.set(this.maskHost.subarray(r * S, (r + 1) * S), i * S);
      out.nextPos[i] = this.nextPos[r];
    });
    out.length = n;
    be.write(out.mask.buf, out.maskHost);
    return out;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.mask?.dispose();
  }
}

/**
 * Rotary inverse frequencies theta^(-2i/D) for i < D/2, computed in float64, with Hugging Face's rope scaling:
 * linear divides every frequency by factor; llama3 divides low frequencies (wavelength > original context /
 * low_freq_factor) by factor, keeps high ones (wavelength < original context / high_freq_factor), and blends between.
 */
export function ropeInvFreq(c: Pick<LlamaConfig, "rope_theta" | "rope_scaling">, d: number): Float64Array {
  const inv = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / c.rope_theta ** ((2 * i) / d);
  const s = c.rope_scaling;
  if (!s) return inv;
  switch (s.rope_type) {
    case "linear":
      return inv.map((f) => f / s.factor);
    case "llama3": {
      const old = s.original_max_position_embeddings;
      const lowWavelen = old / s.low_freq_factor;
      const highWavelen = old / s.high_freq_factor;
      return inv.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen > lowWavelen) return f / s.factor;
        if (wavelen < highWavelen) return f;
        const smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        return (1 - smooth) * (f / s.factor) + smooth * f;
      });
    }
    default:
      return s satisfies never;
  }
}

/** cos and sin of p * invFreq[i] for p < P, i < D/2, computed in float64. */
export function ropeTables(
  positions: number,
  d: number,
  invFreq: Float64Array | number,
  dtype: DType,
  be: Backend,
): [Tensor, Tensor] {
  const half = d / 2;
  const inv = typeof invFreq === "number" ? ropeInvFreq({ rope_theta: invFreq }, d) : invFreq;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let i = 0; i < half; i++) {
    for (let p = 0; p < positions; p++) {
      cos[p * half + i] = Math.cos(p * inv[i]);
      sin[p * half + i] = Math.sin(p * inv[i]);
    }
  }
  return [tensor(cos, [positions, half], dtype, be).keep(), tensor(sin, [positions, half], dtype, be).keep()];
}

/** FLOPs of one forward + backward over B*T tokens: 6 per parameter-token in matmuls plus attention. */
export function trainFlops(c: LlamaConfig, batch: number, seq: number): number {
  const D = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const C = c.hidden_size;
  const perLayer = C * c.num_attention_heads * D * 2 + C * c.num_key_value_heads * D * 2 + 3 * C * c.intermediate_size;
  const matmulParams = c.num_hidden_layers * perLayer + c.vocab_size * C; // embedding lookup is not a matmul
  const tokens = batch * seq;
  const visible = (seq * (seq + 1)) / 2; // causal (query, key) pairs
  const attn = c.num_hidden_layers * batch * c.num_attention_heads * visible * D * 2 * 2; // QK^T and PV
  return 6 * matmulParams * tokens + 3 * attn;
}
