// Model folders: config.json parsing (every architecture option understood or rejected by name), save/load round
// trips in f32/f16/bf16 and shards, errors for missing tensors and wrong shapes, and, where Python with torch and
// transformers is installed, transformers loading folders we save and reproducing our logits.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { bf16ToF32, f32ToBf16 } from "../core/half.js";
import { InputError } from "../core/errors.js";
import { tensor, tidy } from "../engine/tensor.js";
import { parseHfConfig, toHfConfig } from "./config.js";
import { loadModel, readConfig, saveModel } from "./hub.js";
import { Llama, type LlamaConfig } from "./llama.js";
import { PRESETS, initConfig } from "./presets.js";
import { builtinTokenizer } from "./tokenizer.js";
import { writeCheckpoint, writeSafetensors } from "./safetensors.js";

const FIXTURES = fileURLToPath(new URL("../../src/model/fixtures/", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const be = referenceBackend();

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-hub-"));
}

const BASE = {
  model_type: "llama",
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 64,
};

function rejects(extra: Record<string, unknown>, pattern: RegExp) {
  assert.throws(
    () => parseHfConfig({ ...BASE, ...extra }, "x/config.json"),
    (e: unknown) => e instanceof InputError && pattern.test(e.message) && e.message.includes("x/config.json"),
    `expected ${pattern} for ${JSON.stringify(extra)}`,
  );
}

test("config.json: architectures and options are read, unsupported ones rejected by key", () => {
  const llama = readConfig(`${FIXTURES}llama-tiny/model`).config;
  assert.equal(llama.head_dim, 10);
  assert.deepEqual(llama.rope_scaling, {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 64,
  });
  const qwen = readConfig(`${FIXTURES}qwen2-tiny/model`).config;
  assert.equal(qwen.attention_bias, true);
  assert.equal(qwen.attention_out_bias, false);
  assert.equal(qwen.tie_word_embeddings, true);
  assert.equal(qwen.rope_theta, 1e6);
  // transformers 4 spelling (rope_theta + rope_scaling) == transformers 5 (rope_parameters)
  const v4 = parseHfConfig({
    ...BASE,
    rope_theta: 5e5,
    rope_scaling: {
      type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
  });
  const v5 = parseHfConfig({
    ...BASE,
    rope_parameters: {
      rope_type: "llama3",
      rope_theta: 5e5,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
  });
  assert.deepEqual(v4, v5);
  assert.equal(parseHfConfig({ ...BASE, num_key_value_heads: undefined }).num_key_value_heads, 2);
  assert.equal(parseHfConfig({ ...BASE, model_type: "mistral", sliding_window: null }).attention_bias, false);
  assert.equal(
    parseHfConfig({ ...BASE, model_type: "mistral", sliding_window: 4096 }).model_type,
    "mistral",
    "a window no shorter than the context is inactive",
  );
  assert.equal(
    parseHfConfig({ ...BASE, attention_bias: true }).attention_out_bias,
    true,
    "llama biases include o_proj",
  );
  rejects({ model_type: "gemma" }, /"model_type": "gemma" is not supported/);
  rejects({ model_type: "mistral", sliding_window: 16 }, /"sliding_window": 16/);
  rejects(
    { model_type: "qwen2", use_sliding_window: true, sliding_window: 16, max_window_layers: 0 },
    /"use_sliding_window"/,
  );
  rejects({ layer_types: ["sliding_attention"], sliding_window: 8 }, /"layer_types"/);
  rejects({ rope_scaling: { rope_type: "yarn", factor: 4 } }, /"rope_scaling\.rope_type": "yarn"/);
  rejects({ rope_parameters: { rope_type: "dynamic", rope_theta: 1e4 } }, /"rope_parameters\.rope_type": "dynamic"/);
  rejects({ hidden_act: "gelu" }, /"hidden_act"/);
  rejects({ mlp_bias: true }, /"mlp_bias"/);
  rejects({ hidden_size: undefined }, /"hidden_size": is missing/);
  rejects(
    { num_key_value_heads: 4, num_attention_heads: 6, hidden_size: 12 },
    /"num_key_value_heads": 4 does not divide/,
  );
  rejects({ head_dim: 7 }, /"head_dim"/);
  rejects({ quantization_config: { quant_method: "gptq" } }, /"quantization_config"/);
});

test("--init presets: tiny fits the built-in tokenizer; a config.json path works too", () => {
  assert.equal(PRESETS.tiny.vocab_size, builtinTokenizer().vocabSize);
  const tiny = initConfig("tiny");
  const m = new Llama(tiny, { seed: 1, backend: be });
  assert.ok(m.numParams() > 300_000 && m.numParams() < 2_000_000, `tiny has ${m.numParams()} parameters`);
  m.dispose();
  assert.equal(initConfig(`${FIXTURES}qwen2-tiny/model/config.json`).model_type, "qwen2");
  assert.throws(() => initConfig("huge"), /unknown --init "huge"/);
});

/** Logits of a model on a fixed batch, as a plain array. */
function logitsOf(m: Llama, ids: number[][]): Float64Array {
  return tidy(() =>
    Float64Array.from(m.forward(tensor(ids.flat(), [ids.length, ids[0].length], "i32", m.embed.backend)).toArray()),
  );
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const IDS = [
  [3, 1, 4, 1, 5, 9, 2, 6],
  [5, 3, 5, 8, 9, 7, 9, 3],
];

test("save -> load round trip: f32 exact, f16/bf16 rounded, shards, tied embeddings", () => {
  for (const name of ["llama-tiny", "qwen2-tiny"]) {
    const src = loadModel(`${FIXTURES}${name}/model`, { backend: be });
    const dir = tmpdir();
    saveModel(src, dir);
    const back = loadModel(dir, { backend: be });
    for (const [n, p] of src.params) assert.deepEqual(back.params.get(n)!.toArray(), p.toArray(), `${name} ${n}`);
    assert.equal(maxAbsDiff(logitsOf(src, IDS), logitsOf(back, IDS)), 0);
    const saved = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
    assert.equal(saved.transformers_version, src.hfConfig?.transformers_version, "unknown keys pass through");
    // bf16 on disk: every parameter is the bf16 rounding of the original.
    saveModel(src, dir, { dtype: "bf16", maxShardBytes: 40_000 });
    assert.ok(
      fs.existsSync(path.join(dir, "model.safetensors.index.json")) &&
        !fs.existsSync(path.join(dir, "model.safetensors")),
    );
    const bf = loadModel(dir, { backend: be });
    for (const [n, p] of src.params) {
      const want = Float32Array.from(p.toArray(), (x) => bf16ToF32(f32ToBf16(x)));
      assert.deepEqual(bf.params.get(n)!.toArray(), want, `${name} bf16 ${n}`);
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).torch_dtype, "bfloat16");
    saveModel(src, dir, { dtype: "f16" });
    const f16 = loadModel(dir, { backend: be });
    const d = maxAbsDiff(logitsOf(src, IDS), logitsOf(f16, IDS));
    assert.ok(d > 0 && d < 0.05, `f16 weights move logits by ${d}`);
    for (const m of [src, back, bf, f16]) m.dispose();
  }
});

test("missing tensors and wrong shapes name the file and the tensor", () => {
  const live = be.liveBuffers();
  const dir = tmpdir();
  const src = loadModel(`${FIXTURES}qwen2-tiny/model`, { backend: be });
  saveModel(src, dir);
  const file = path.join(dir, "model.safetensors");
  // Drop one tensor.
  const names = [...src.params.keys()].filter((n) => n !== "model.layers.1.self_attn.k_proj.bias");
  writeSafetensors(
    file,
    names.map((n) => ({
      name: n,
      shape: src.params.get(n)!.shape,
      dtype: "F32",
      data: () => src.params.get(n)!.toArray(),
    })),
  );
  assert.throws(
    () => loadModel(dir, { backend: be }),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.includes(file) &&
      e.message.includes('"model.layers.1.self_attn.k_proj.bias"') &&
      /missing/.test(e.message),
  );
  // A config that disagrees with the weights.
  saveModel(src, dir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 70 }));
  assert.throws(
    () => loadModel(dir, { backend: be }),
    /model\.safetensors.*"model\.layers\.0\.mlp\.gate_proj\.weight" has shape \(72, 40\), expected \(70, 40\)/,
  );
  fs.rmSync(path.join(dir, "config.json"));
  assert.throws(() => loadModel(dir, { backend: be }), /no config\.json/);
  src.dispose();
  assert.equal(be.liveBuffers(), live, "a failed load frees what it allocated");
});

function pythonHasTransformers(): boolean {
  const r = spawnSync("python3", ["-c", "import torch, transformers"], { stdio: "ignore" });
  return r.status === 0;
}

test("transformers loads folders we save and reproduces our logits", { timeout: 180_000 }, (t) => {
  if (!pythonHasTransformers()) return t.skip("python3 with torch and transformers is not installed");
  const configs: [string, LlamaConfig][] = [
    ["tiny preset (llama, tied)", initConfig("tiny")],
    ["qwen2 with biases", { ...initConfig(`${FIXTURES}qwen2-tiny/model/config.json`), tie_word_embeddings: false }],
    [
      "llama3 rope, head_dim 12, o bias",
      {
        ...initConfig(`${FIXTURES}llama-tiny/model/config.json`),
        head_dim: 12,
        attention_bias: true,
        attention_out_bias: true,
      },
    ],
    [
      "mistral",
      {
        ...BASE,
        model_type: "mistral",
        rms_norm_eps: 1e-5,
        rope_theta: 1e4,
        tie_word_embeddings: false,
        attention_bias: false,
      } as LlamaConfig,
    ],
  ];
  const saved: { label: string; dir: string; ours: Float64Array; model: Llama }[] = [];
  for (const [label, cfg] of configs) {
    const model = new Llama({ ...cfg, initializer_range: 0.2 }, { seed: 5, backend: be });
    // Random biases and norms too, so that every tensor matters.
    for (const [n, p] of model.params) {
      if (n.endsWith("norm.weight") || n.endsWith(".bias")) {
        const v = Float32Array.from(
          { length: p.size },
          (_, i) => (n.endsWith(".bias") ? 0.1 : 1) + 0.05 * Math.sin(i * 1.7 + n.length),
        );
        be.write(p.buf, v);
      }
    }
    const dir = tmpdir();
    saveModel(model, dir);
    saved.push({ label, dir, ours: logitsOf(model, IDS), model });
  }
  const r = spawnSync(
    "python3",
    [path.join(REPO, "reference/hf_logits.py"), JSON.stringify({ input_ids: IDS }), ...saved.map((s) => s.dir)],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  assert.equal(r.status, 0, `transformers failed to load a folder we saved:\n${r.stderr.slice(-2000)}`);
  const results = JSON.parse(r.stdout).results as { logits: number[][][] }[];
  for (const [i, { label, dir, ours, model }] of saved.entries()) {
    const theirs = Float64Array.from(results[i].logits.flat(2));
    const d = maxAbsDiff(ours, theirs);
    const scale = Math.max(...theirs.map(Math.abs));
    t.diagnostic(`${label}: max |ours - transformers| ${d.toExponential(2)} (logits up to ${scale.toFixed(2)})`);
    assert.ok(d <= 1e-5 * Math.max(scale, 1), `${label}: logits differ by ${d}`);
    const reread = parseHfConfig(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")));
    assert.deepEqual(reread, parseHfConfig(toHfConfig(model.config)), `${label}: config.json reads back the same`);
    model.dispose();
  }
});

test("a large checkpoint loads without a second copy in memory (peak RSS of a child process)", {
  timeout: 120_000,
}, (t) => {
  // About 100 MB of f32 weights in two shards (STEPWISE_BIG_CHECKPOINT_MB=500 for the 500 MB). The child's
  // peak resident memory may exceed its parameters by one tensor (the reused read buffer) and the runtime, not more.
  const mb = Number(process.env.STEPWISE_BIG_CHECKPOINT_MB ?? 100);
  const C = 512;
  const layers = Math.max(1, Math.round((mb * 1024 * 1024) / 4 / (12 * C * C) - 1));
  const cfg: LlamaConfig = {
    ...BASE,
    model_type: "llama",
    vocab_size: 4096,
    hidden_size: C,
    intermediate_size: 4 * C,
    num_hidden_layers: layers,
    num_attention_heads: 8,
    num_key_value_heads: 8,
    rms_norm_eps: 1e-5,
    rope_theta: 1e4,
    tie_word_embeddings: false,
    attention_bias: false,
  } as LlamaConfig;
  const dir = tmpdir();
  const shapes = new Llama(cfg, { backend: be, init: "none", maxPositions: 1 });
  const bytes = shapes.numParams() * 4;
  const largest = Math.max(...shapes.parameters().map((p) => p.size)) * 4;
  const fill = (n: number) => new Float32Array(n).fill(0.01);
  writeCheckpoint(
    dir,
    [...shapes.params].map(([name, p]) => ({ name, shape: p.shape, dtype: "F32" as const, data: () => fill(p.size) })),
    { maxShardBytes: bytes / 2 + 1 },
  );
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(toHfConfig(cfg)));
  shapes.dispose();
  const script = `
    import fs from "node:fs";
    import { referenceBackend } from ${JSON.stringify(new URL("../backend/index.js", import.meta.url).href)};
    import { loadModel } from ${JSON.stringify(new URL("./hub.js", import.meta.url).href)};
    const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
    const base = hwm();
    const m = loadModel(${JSON.stringify(dir)}, { backend: referenceBackend() });
    console.log(JSON.stringify({ base, peak: hwm(), params: m.numParams() }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const { base, peak, params } = JSON.parse(r.stdout);
  assert.equal(params * 4, bytes);
  const extra = peak - base - bytes;
  t.diagnostic(
    `${(bytes / 1e6).toFixed(0)} MB of weights: peak RSS grew by ${((peak - base) / 1e6).toFixed(0)} MB ` +
      `(largest tensor ${(largest / 1e6).toFixed(0)} MB)`,
  );
  assert.ok(extra < largest + 64e6, `loading used ${extra} bytes beyond the weights`);
  fs.rmSync(dir, { recursive: true });
});
