// A Llama-family decoder (Llama, Qwen2, Mistral, SmolLM2) on the engine, with Hugging Face parameter names.
// RMSNorm, rotary embeddings (rotate_half), grouped-query attention, SwiGLU MLP, tied or untied embeddings,
// optional q/k/v biases (Qwen2).
//
// Legend: B batch, T time, C hidden size, H heads, Hkv key/value heads, D head size, F MLP size, V vocab.

import type { Backend, DType } from "../backend/backend.js";
import { getBackend } from "../backend/index.js";
import { ShapeError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { linear } from "../engine/nn.js";
import { add, attention, gather, mul, reshape, rmsnorm, rope, silu } from "../engine/ops.js";
import { Tensor, tensor } from "../engine/tensor.js";

export interface LlamaConfig {
  vocab_size: number;
  hidden_size: number; // C
  intermediate_size: number; // F
  num_hidden_layers: number;
  num_attention_heads: number; // H
  num_key_value_heads: number; // Hkv
  head_dim?: number; // D, default C / H
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  attention_bias: boolean; // q/k/v biases (Qwen2)
  initializer_range?: number; // std of the normal init, default 0.02
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
  private ropeCos: Tensor; // (P, D/2)
  private ropeSin: Tensor; // (P, D/2)

  /** A model with random weights (normal, std initializer_range; norms at 1), deterministic by seed. */
  constructor(readonly config: LlamaConfig, opts: { seed?: number; dtype?: DType; backend?: Backend } = {}) {
    const c = config;
    const dtype = opts.dtype ?? "f32";
    const be = opts.backend ?? getBackend();
    this.headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    const D = this.headDim;
    if (!Number.isInteger(D) || D % 2 !== 0 || c.num_attention_heads % c.num_key_value_heads !== 0) {
      throw new ShapeError("Llama", { heads: [c.num_attention_heads, c.num_key_value_heads, D] },
        "head size must be an even integer and heads a multiple of key/value heads");
    }
    const rng = new Rng(opts.seed ?? 0);
    const std = c.initializer_range ?? 0.02;
    const param = (name: string, shape: number[], init: "normal" | "ones" | "zeros") => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float64Array(n);
      if (init === "normal") for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
      else if (init === "ones") data.fill(1);
      const t = tensor(data, shape, dtype, be).keep();
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
        postNorm: param(`${p}post_attention_layernorm.weight`, [C], "ones"),
        gate: param(`${p}mlp.gate_proj.weight`, [F, C], "normal"),
        up: param(`${p}mlp.up_proj.weight`, [F, C], "normal"),
        down: param(`${p}mlp.down_proj.weight`, [C, F], "normal"),
      });
    }
    this.norm = param("model.norm.weight", [C], "ones");
    this.lmHead = c.tie_word_embeddings ? this.embed : param("lm_head.weight", [c.vocab_size, C], "normal");
    [this.ropeCos, this.ropeSin] = ropeTables(c.max_position_embeddings, D, c.rope_theta, dtype, be);
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
    const [B, T] = ids.shape;
    if (ids.rank !== 2) throw new ShapeError("Llama.forward", { ids: ids.shape }, "ids must be (B, T)");
    const c = this.config;
    const D = this.headDim;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const pos = opts.pos ?? tensor(Array.from({ length: B * T }, (_, i) => i % T), [B, T], "i32", ids.backend);

    let x = gather(this.embed, ids); // (B, T, C)
    for (const l of this.layers) {
      const h = rmsnorm(x, l.inputNorm, c.rms_norm_eps); // (B, T, C)
      const q = rope(reshape(linear(h, l.q, l.qBias), [B, T, H, D]), this.ropeCos, this.ropeSin, pos); // (B, T, H, D)
      const k = rope(reshape(linear(h, l.k, l.kBias), [B, T, Hkv, D]), this.ropeCos, this.ropeSin, pos); // (B, T, Hkv, D)
      const v = reshape(linear(h, l.v, l.vBias), [B, T, Hkv, D]); // (B, T, Hkv, D)
      const a = attention(q, k, v, { keyMask: opts.keyMask ?? null }); // (B, T, H, D)
      x = add(x, linear(reshape(a, [B, T, H * D]), l.o)); // (B, T, C)
      const m = rmsnorm(x, l.postNorm, c.rms_norm_eps); // (B, T, C)
      const mlp = mul(silu(linear(m, l.gate)), linear(m, l.up)); // (B, T, F)
      x = add(x, linear(mlp, l.down)); // (B, T, C)
    }
    return linear(rmsnorm(x, this.norm, c.rms_norm_eps), this.lmHead); // (B, T, V)
  }

  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.dispose();
    }
    this.ropeCos.dispose();
    this.ropeSin.dispose();
  }
}

/** cos and sin of p * theta^(-2i/D) for p < P, i < D/2, computed in float64. */
export function ropeTables(positions: number, d: number, theta: number, dtype: DType, be: Backend): [Tensor, Tensor] {
  const half = d / 2;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / theta ** ((2 * i) / d);
    for (let p = 0; p < positions; p++) {
      cos[p * half + i] = Math.cos(p * invFreq);
      sin[p * half + i] = Math.sin(p * invFreq);
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
