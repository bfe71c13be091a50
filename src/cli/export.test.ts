// `stepwise export gguf` end to end: a saved model folder becomes a GGUF file with the model's hyperparameters,
// tokenizer and (f16-rounded) weights; bad input exits 2 with a clear message. That llama.cpp runs such files
// and agrees with our forward is src/model/gguf.test.ts's job.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { f16ToF32, f32ToF16 } from "../core/half.js";
import { readGguf, readGgufTensor } from "../model/gguf.js";
import { saveModel } from "../model/hub.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";

const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));
const CFG: LlamaConfig = {
  model_type: "llama",
  vocab_size: 100,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 64,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.2,
  bos_token_id: 1,
  eos_token_id: 2,
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-export-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "export", ...args], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_BACKEND: "reference" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("stepwise export gguf --dtype f16 --json: hyperparameters, tokenizer and f16 weights in the file", () => {
  const dir = path.join(tmp, "model");
  const m = new Llama(CFG, { seed: 1, backend: referenceBackend() });
  saveModel(m, dir);
  builtinTokenizer().save(dir);
  const out = path.join(tmp, "model.gguf");
  const r = cli("gguf", "--model", dir, "--out", out, "--dtype", "f16", "--json");
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out);
  assert.deepEqual(summary, { out, arch: "llama", dtype: "f16", tensors: 11, bytes: fs.statSync(out).size });
  const g = readGguf(out);
  const meta = (k: string) => g.metadata.get(k)?.value;
  assert.equal(meta("general.architecture"), "llama");
  assert.equal(meta("general.name"), "model");
  assert.equal(meta("general.file_type"), 1);
  assert.equal(meta("llama.embedding_length"), 16);
  assert.equal(meta("llama.attention.head_count_kv"), 1);
  assert.equal((meta("tokenizer.ggml.tokens") as string[]).length, 100);
  assert.equal(meta("tokenizer.ggml.bos_token_id"), 1);
  assert.equal(typeof meta("tokenizer.chat_template"), "string");
  assert.equal(
    g.tensors.find((t) => t.name === "output.weight"),
    undefined,
    "tied: llama.cpp reuses token_embd",
  );
  const embed = m.embed.toArray();
  const stored = readGgufTensor(g, "token_embd.weight");
  embed.forEach((x, i) => assert.equal(stored[i], f16ToF32(f32ToF16(x))));
  assert.equal(g.tensors.find((t) => t.name === "blk.0.attn_norm.weight")?.type, 0, "norms stay F32");
  m.dispose();
});

test("stepwise export: bad input exits 2 with a message", () => {
  const empty = fs.mkdtempSync(path.join(tmp, "empty-"));
  const cases: [string[], RegExp][] = [
    [["onnx", "--model", empty, "--out", "x"], /unknown export format "onnx"/],
    [["gguf", "--out", "x"], /--model DIR is required/],
    [["gguf", "--model", empty], /--out FILE is required/],
    [["gguf", "--model", empty, "--out", "x", "--dtype", "q4"], /--dtype must be f32 or f16/],
    [["gguf", "--model", empty, "--out", "x"], /no tokenizer\.json/],
  ];
  for (const [args, msg] of cases) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, msg);
  }
});
