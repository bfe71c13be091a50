// GGUF import (gguf-import.ts):
// - the rotary row permutation and its inverse are inverses, both ways;
// - round trip: random llama (GQA, tied, built-in tokenizer; MQA + head_dim != C/H + q/k/v/o biases + linear rope
//   scaling, untied; llama3 rope scaling, recovered from rope_freqs) and qwen2 (q/k/v biases, untied, byte-level BPE) models exported by our own exporter (F32)
//   and imported back give the original config and the original weights exactly (F16 exports: to f16 rounding),
//   through the folder (`stepwise import gguf`, loaded by loadModel) and in memory (loadModel on the .gguf);
//   the folder's tokenizer gives the original ids; a LoRA adapter saved on a .gguf base loads back onto it;
// - quantized tensors in a GGUF file (fixture bytes of gguf-quants.test.ts) read back as the gguf package's values;
// - an independent oracle: a tiny llama GGUF written by the gguf package itself, one quant type per matrix
//   (reference/make_gguf_import_fixtures.py), imported here gives the logits transformers computes from that file;
//   and transformers loads the folder we import it into unchanged, with the same logits (skipped without torch);
// - errors: unknown architecture, an unknown quant type (naming the tensor and type), a tensor the model does
//   not use, rope_freqs that are not llama3 scaling, a vocab-only file.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { importCommand } from "../cli/import.js";
import { parseHfConfig } from "./config.js";
import {
  type GgufMetadata,
  exportGguf,
  gguf,
  permuteRotaryRows,
  readGguf,
  readGgufTensor,
  unpermuteRotaryRows,
  writeGguf,
} from "./gguf.js";
import { importGguf, loadGgufModel, planGgufImport, shortestF32 } from "./gguf-import.js";
import { GGML_TYPE_CODES } from "./gguf-quants.js";
import { tensor, tidy } from "../engine/tensor.js";
import { ggufTokenizerMetadata, byteLevelAlphabet, preTokenizerJson } from "./gguf-vocab.js";
import { loadModel, loadModelTokenizer } from "./hub.js";
import { Llama, type LlamaConfig } from "./llama.js";
import { attachLora, loraParams, saveAdapter } from "./lora.js";
import { TextTokenizer, builtinTokenizer } from "./tokenizer.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const TINY = path.join(REPO, "src/model/fixtures/gguf-tiny");
const GGML_NAMES = new Map<number, string>(Object.entries(GGML_TYPE_CODES).map(([k, v]) => [v, k]));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-gguf-import-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("unpermuteRotaryRows inverts permuteRotaryRows (weights and biases, several heads)", () => {
  const rng = new Rng(3);
  for (const [H, D, cols] of [
    [3, 8, 5],
    [1, 2, 1],
    [4, 6, 1],
  ]) {
    const x = Float32Array.from({ length: H * D * cols }, () => rng.normal());
    assert.deepEqual(unpermuteRotaryRows(permuteRotaryRows(x, H, D, cols), H, D, cols), x);
    assert.deepEqual(permuteRotaryRows(unpermuteRotaryRows(x, H, D, cols), H, D, cols), x);
    if (D > 2) assert.notDeepEqual(unpermuteRotaryRows(x, H, D, cols), x); // it does move rows
  }
});

test("shortestF32: f32 metadata values print as their short decimal", () => {
  assert.equal(shortestF32(Math.fround(1e-5)), 1e-5);
  assert.equal(shortestF32(Math.fround(1e-6)), 1e-6);
  assert.equal(shortestF32(Math.fround(0.1)), 0.1);
  assert.equal(shortestF32(10000), 10000);
});

// --- round trip through our exporter ---

const BASE: Omit<LlamaConfig, "vocab_size" | "model_type"> = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.3,
};

function tinyByteLevelTokenizer(): TextTokenizer {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((c, b) => (vocab[c] = b));
  const merges = [
    ["Ġ", "t"],
    ["h", "e"],
    ["Ġt", "he"],
    ["1", "2"],
  ];
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  const first = Object.keys(vocab).length;
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    normalizer: null,
    added_tokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map((content, i) => ({
      id: first + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    pre_tokenizer: preTokenizerJson("qwen2"),
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return new TextTokenizer(json, { eos_token: "<|endoftext|>", bos_token: null, add_bos_token: false }, "tiny");
}

const SPECS: { name: string; config: LlamaConfig; tokenizer: () => TextTokenizer }[] = [
  {
    name: "llama (GQA, tied, built-in tokenizer)",
    config: { ...BASE, model_type: "llama", vocab_size: 100, bos_token_id: 1, eos_token_id: 2 },
    tokenizer: builtinTokenizer,
  },
  {
    name: "llama (MQA, head_dim 12 != 32/4, q/k/v/o biases, linear rope, untied)",
    config: {
      ...BASE,
      model_type: "llama",
      vocab_size: 100,
      head_dim: 12,
      num_key_value_heads: 1,
      attention_bias: true,
      attention_out_bias: true,
      tie_word_embeddings: false,
      rope_theta: 500000,
      rope_scaling: { rope_type: "linear", factor: 2 },
      bos_token_id: 1,
      eos_token_id: 2,
    },
    tokenizer: builtinTokenizer,
  },
  {
    // head_dim 32 with theta 1e4: three frequencies fall in the blended band, so rope_freqs determines the scaling.
    name: "llama (head_dim 32, llama3 rope scaling from rope_freqs)",
    config: {
      ...BASE,
      model_type: "llama",
      vocab_size: 100,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 32,
      rope_scaling: {
        rope_type: "llama3",
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 400,
      },
      bos_token_id: 1,
      eos_token_id: 2,
    },
    tokenizer: builtinTokenizer,
  },
  {
    name: "qwen2 (q/k/v biases, untied, byte-level BPE)",
    config: {
      ...BASE,
      model_type: "qwen2",
      vocab_size: 270,
      attention_bias: true,
      tie_word_embeddings: false,
      rope_theta: 1e6,
    },
    tokenizer: tinyByteLevelTokenizer,
  },
];

/** A random float32 model with random norms and biases (not 1s and 0s). */
function randomModel(config: LlamaConfig): Llama {
  const model = new Llama(config, { seed: 5, dtype: "f32", backend: referenceBackend() });
  const rng = new Rng(9);
  for (const [name, p] of model.params) {
    if (!name.endsWith("norm.weight") && !name.endsWith(".bias")) continue;
    p.backend.write(
      p.buf,
      Float32Array.from({ length: p.size }, () => 1 + 0.3 * rng.normal()),
    );
  }
  return model;
}

/** The largest |a - b| over every parameter of two models with the same names. */
function maxParamDiff(a: Llama, b: Llama): { diff: number; worst: string } {
  let diff = 0;
  let worst = "";
  assert.deepEqual([...b.params.keys()].sort(), [...a.params.keys()].sort());
  for (const [name, p] of a.params) {
    const x = p.toArray();
    const y = b.params.get(name)!.toArray();
    assert.equal(y.length, x.length, name);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      if (d > diff) [diff, worst] = [d, name];
    }
  }
  return { diff, worst };
}

const TEXTS = ["Step 1: 48/2 = <<48/2=24>>24\n#### 24", "the 12 then  twelve\n\n"];

for (const spec of SPECS) {
  test(`export -> import round trip: ${spec.name}`, async (t) => {
    const model = randomModel(spec.config);
    const tok = spec.tokenizer();
    const file = path.join(tmp, `${spec.config.model_type}-${spec.config.vocab_size}.gguf`);
    exportGguf(model, tok, file, { dtype: "f32" });
    const plan = planGgufImport(file);
    for (const key of Object.keys(spec.config) as (keyof LlamaConfig)[]) {
      if (key === "initializer_range") continue; // not in GGUF
      assert.deepEqual(plan.config[key] ?? null, spec.config[key] ?? null, `config ${key}`);
    }
    // Through a folder, written by `stepwise import gguf FILE --out DIR --json` and read by loadModel.
    const dir = path.join(tmp, `hf-${spec.config.model_type}-${spec.config.vocab_size}`);
    const log = console.log;
    let printed = "";
    console.log = (s: string) => {
      printed += s;
    };
    try {
      assert.equal(await importCommand.run({ out: dir, json: true }, ["gguf", file]), 0);
    } finally {
      console.log = log;
    }
    const res = JSON.parse(printed);
    assert.equal(res.arch, spec.config.model_type);
    assert.deepEqual(fs.readdirSync(dir).sort(), [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    parseHfConfig(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")));
    const fromDir = loadModel(dir, { backend: referenceBackend() });
    const fromFile = loadModel(file, { backend: referenceBackend() });
    try {
      for (const [how, m] of [
        ["folder", fromDir],
        ["in memory", fromFile],
      ] as const) {
        const { diff, worst } = maxParamDiff(model, m);
        t.diagnostic(`${how}: max |weight diff| ${diff} (${worst})`);
        assert.equal(diff, 0, `${how}: ${worst} differs by ${diff}`);
      }
      for (const [how, tk] of [
        ["folder", TextTokenizer.load(dir)],
        ["gguf", loadModelTokenizer(file)],
      ] as const) {
        for (const text of TEXTS) assert.deepEqual(tk.encode(text), tok.encode(text), `${how} ${JSON.stringify(text)}`);
        assert.equal(tk.eosId, tok.eosId, how);
      }
      // F16: the same, to f16 rounding.
      const f16 = path.join(tmp, "f16.gguf");
      exportGguf(model, tok, f16, { dtype: "f16" });
      const half = loadGgufModel(f16, { backend: referenceBackend() });
      const { diff } = maxParamDiff(model, half);
      half.dispose();
      t.diagnostic(`f16 export: max |weight diff| ${diff.toExponential(2)}`);
      assert.ok(diff > 0 && diff < 2e-3, `f16: ${diff}`);
    } finally {
      for (const m of [model, fromDir, fromFile]) m.dispose();
    }
  });
}

test("a LoRA adapter whose base_model_name_or_path is a .gguf file loads onto the in-memory import", () => {
  const file = path.join(tmp, "lora-base.gguf");
  const base = randomModel(SPECS[0].config);
  exportGguf(base, builtinTokenizer(), file);
  base.dispose();
  const model = loadModel(file, { backend: referenceBackend() });
  attachLora(model, { r: 2, seed: 4 });
  for (const p of loraParams(model).values())
    p.backend.write(
      p.buf,
      Float32Array.from({ length: p.size }, (_, i) => Math.sin(i)),
    );
  const dir = path.join(tmp, "lora-on-gguf");
  saveAdapter(model, dir); // base_model_name_or_path: the model's source, the .gguf file
  assert.equal(
    JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8")).base_model_name_or_path,
    file,
  );
  const back = loadModel(dir, { backend: referenceBackend() });
  try {
    assert.ok(back.lora);
    assert.equal(maxParamDiff(model, back).diff, 0);
  } finally {
    model.dispose();
    back.dispose();
  }
});

// --- quantized tensors in a file ---

const QUANTS = JSON.parse(
  fs.readFileSync(fileURLToPath(new URL("../../src/model/fixtures/gguf-quants/quants.json", import.meta.url)), "utf8"),
) as {
  types: Record<string, { type: number; block: number; cases: { blocks: number; bytes: string; values: string }[] }>;
};

/**
 * Writes a GGUF of 1-D tensors given as raw bytes of any type code: written as F32 tensors of the same bytes, then
 * each tensor info's ne[0] and type are rewritten in place (same sizes, so every offset stays valid).
 */
function writeRawGguf(
  file: string,
  metadata: GgufMetadata,
  tensors: { name: string; n: number; type: number; bytes: Uint8Array }[],
): void {
  writeGguf(
    file,
    metadata,
    tensors.map((t) => {
      const padded = new Uint8Array(Math.ceil(t.bytes.length / 4) * 4);
      padded.set(t.bytes);
      return {
        name: t.name,
        shape: [padded.length / 4],
        type: "F32" as const,
        data: () => new Float32Array(padded.buffer),
      };
    }),
  );
  const buf = fs.readFileSync(file);
  for (const t of tensors) {
    const at = buf.indexOf(Buffer.from(t.name)) + Buffer.byteLength(t.name); // then u32 n_dims, u64 ne[0], u32 type
    assert.equal(buf.readUInt32LE(at), 1);
    buf.writeBigUInt64LE(BigInt(t.n), at + 4);
    buf.writeUInt32LE(t.type, at + 12);
  }
  fs.writeFileSync(file, buf);
}

test("quantized tensors in a GGUF file read back as the gguf package's values (every type)", () => {
  const file = path.join(tmp, "quants.gguf");
  const tensors = Object.entries(QUANTS.types).map(([name, t]) => {
    const c = t.cases[0];
    const n = Buffer.from(c.values, "base64").length / 4;
    return { name, n, type: t.type, bytes: new Uint8Array(Buffer.from(c.bytes, "base64")) };
  });
  writeRawGguf(file, new Map(), tensors);
  const g = readGguf(file);
  for (const [name, t] of Object.entries(QUANTS.types)) {
    const b = Buffer.from(t.cases[0].values, "base64");
    const want = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    assert.deepEqual(readGgufTensor(g, name), want, name);
  }
});

// --- an independent oracle: transformers' own GGUF loader ---

test("a tiny GGUF written by the gguf package (every quant type once): our import gives transformers' logits", (t) => {
  const fx = JSON.parse(fs.readFileSync(path.join(TINY, "logits.json"), "utf8")) as {
    generator: string;
    types: Record<string, string>;
    input_ids: number[][];
    logits: string;
  };
  const file = path.join(TINY, "tiny-llama.gguf");
  const plan = planGgufImport(file);
  assert.deepEqual(
    Object.fromEntries(plan.tensors.map((x) => [x.source.name, GGML_NAMES.get(x.source.type)])),
    fx.types,
  );
  const model = loadModel(file, { backend: referenceBackend(), dtype: "f64" });
  try {
    const [B, T] = [fx.input_ids.length, fx.input_ids[0].length];
    const V = model.config.vocab_size;
    const ours = tidy(() => model.forward(tensor(fx.input_ids.flat(), [B, T], "i32", referenceBackend())).toArray()); // (B, T, V)
    const b = Buffer.from(fx.logits, "base64");
    const want = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); // (B, T, V)
    assert.equal(want.length, B * T * V);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(ours[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    t.diagnostic(
      `${fx.generator}: max |logit diff| ${diff.toExponential(2)} (logits up to ${scale.toFixed(2)}), ${B}x${T}x${V}`,
    );
    assert.ok(diff < 1e-4, `max |logit diff| ${diff}`);
  } finally {
    model.dispose();
  }
});

test("transformers loads the folder `import gguf` writes unchanged: the same logits as from the GGUF itself", {
  timeout: 120_000,
}, (t) => {
  if (spawnSync("python3", ["-c", "import torch, transformers"], { stdio: "ignore" }).status !== 0) {
    return t.skip("python3 with torch and transformers is not installed");
  }
  const fx = JSON.parse(fs.readFileSync(path.join(TINY, "logits.json"), "utf8")) as {
    input_ids: number[][];
    logits: string;
  };
  const dir = path.join(tmp, "hf-tiny");
  importGguf(path.join(TINY, "tiny-llama.gguf"), dir);
  const r = spawnSync(
    "python3",
    [path.join(REPO, "reference/hf_logits.py"), JSON.stringify({ input_ids: fx.input_ids }), dir],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  assert.equal(r.status, 0, `transformers failed to load the imported folder:\n${r.stderr.slice(-2000)}`);
  const theirs = Float64Array.from((JSON.parse(r.stdout).results[0].logits as number[][][]).flat(2));
  const b = Buffer.from(fx.logits, "base64");
  const want = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(theirs[i] - want[i]));
  t.diagnostic(`transformers on our folder vs on the GGUF: max |logit diff| ${diff.toExponential(2)}`);
  assert.ok(diff < 1e-5, `${diff}`);
});

// --- errors ---

function tinyGguf(file: string, edit: (m: GgufMetadata) => void = () => {}): void {
  const model = randomModel(SPECS[0].config);
  exportGguf(model, builtinTokenizer(), file);
  model.dispose();
  const g = readGguf(file);
  edit(g.metadata);
  writeGguf(
    file,
    g.metadata,
    g.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: "F32" as const,
      data: () => readGgufTensor(g, t.name),
    })),
  );
}

test("import errors: unknown architecture, unknown quant type, unused tensor, non-llama3 rope_freqs, vocab-only file", () => {
  const bad = (fn: () => unknown, ...parts: string[]) =>
    assert.throws(
      fn,
      (e: unknown) => e instanceof InputError && parts.every((p) => e.message.includes(p)),
      parts.join(" | "),
    );
  const arch = path.join(tmp, "arch.gguf");
  tinyGguf(arch, (m) => m.set("general.architecture", gguf.str("gpt2")));
  bad(() => planGgufImport(arch), 'general.architecture "gpt2"', arch);

  const iq = path.join(tmp, "iq.gguf");
  writeRawGguf(iq, new Map(), [
    { name: "blk.0.ffn_up.weight", n: 256, type: GGML_TYPE_CODES.IQ2_XS, bytes: new Uint8Array(74) },
  ]);
  bad(() => readGgufTensor(readGguf(iq), "blk.0.ffn_up.weight"), "blk.0.ffn_up.weight", "IQ2_XS", "supported types");

  const extra = path.join(tmp, "extra.gguf");
  const model = randomModel(SPECS[0].config);
  const meta = new Map([
    ...(() => {
      exportGguf(model, builtinTokenizer(), extra);
      return readGguf(extra).metadata;
    })(),
  ]);
  const g = readGguf(extra);
  writeGguf(extra, meta, [
    ...g.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: "F32" as const,
      data: () => readGgufTensor(g, t.name),
    })),
    { name: "blk.0.attn_rot_embd", shape: [4], type: "F32" as const, data: () => new Float32Array(4) },
  ]);
  model.dispose();
  bad(() => planGgufImport(extra), "blk.0.attn_rot_embd", "does not use");

  const rope = path.join(tmp, "rope.gguf");
  const llama3 = randomModel(SPECS[2].config);
  exportGguf(llama3, builtinTokenizer(), rope);
  llama3.dispose();
  const gr = readGguf(rope);
  writeGguf(
    rope,
    gr.metadata,
    gr.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: "F32" as const,
      data: () =>
        t.name === "rope_freqs.weight"
          ? Float32Array.from({ length: 16 }, (_, i) => 1 + (i % 3))
          : readGgufTensor(gr, t.name),
    })),
  );
  bad(() => planGgufImport(rope), "rope_freqs.weight", "llama3");

  const vocabOnly = path.join(tmp, "vocab.gguf");
  const vm: GgufMetadata = new Map([
    ["general.architecture", gguf.str("llama")],
    ...ggufTokenizerMetadata(builtinTokenizer(), 100),
  ]);
  writeGguf(vocabOnly, vm, []);
  bad(() => planGgufImport(vocabOnly), "token_embd.weight", "vocab-only");
});
