// `stepwise import gguf` end to end through the binary: the gguf package's tiny every-quant-type GGUF becomes a
// bf16 Hugging Face folder with a progress bar and a JSON summary; bad input exits 2 naming what is wrong (an
// unknown quant type names the tensor, and leaves no config.json behind); and a .gguf file works as --model
// (sample, through the in-memory import). The importer's numbers are src/model/gguf-import.test.ts's job.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { exportGguf } from "../model/gguf.js";
import { loadModel } from "../model/hub.js";
import { readHeader } from "../model/safetensors.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import { BIN, microModelDir } from "./testkit.js";

const TINY = fileURLToPath(new URL("../../src/model/fixtures/gguf-tiny/tiny-llama.gguf", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-import-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_BACKEND: "reference" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("stepwise import gguf --dtype bf16 --json: a Hugging Face folder, bf16 weights, progress on stderr", () => {
  const out = path.join(tmp, "tiny-bf16");
  const r = cli("import", "gguf", TINY, "--out", out, "--dtype", "bf16", "--json");
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out);
  const params = 7 * 256 * 256 + 2 * 64 * 256 + 3 * 256; // embed, q, o, gate, up, down, output; k, v; 3 norms
  assert.deepEqual(
    { ...res, types: undefined },
    { out, arch: "llama", dtype: "bf16", tensors: 12, params, types: undefined },
  );
  assert.deepEqual(res.types, {
    Q8_0: 1,
    Q4_0: 1,
    Q4_1: 1,
    Q5_0: 1,
    Q5_1: 1,
    Q2_K: 1,
    Q3_K: 1,
    Q4_K: 1,
    Q6_K: 1,
    F16: 1,
    BF16: 1,
    F32: 1,
  });
  assert.match(r.err, /import gguf .*12\/12 tensors/);
  assert.deepEqual(fs.readdirSync(out).sort(), [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
  ]);
  const config = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
  assert.equal(config.torch_dtype, "bfloat16");
  assert.equal(config.tie_word_embeddings, false);
  const header = readHeader(path.join(out, "model.safetensors"));
  assert.ok([...header.tensors.values()].every((t) => t.dtype === "BF16"));
  // bf16 keeps 8 bits of mantissa: within 2^-8 (relative) of the f32 import.
  const f32 = loadModel(TINY, { backend: referenceBackend() });
  const bf16 = loadModel(out, { backend: referenceBackend() });
  for (const [name, p] of f32.params) {
    const [a, b] = [p.toArray(), bf16.params.get(name)!.toArray()];
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(a[i]) * 2 ** -8, `${name}[${i}]: ${a[i]} vs ${b[i]}`);
  }
  f32.dispose();
  bf16.dispose();
});

test("stepwise import: bad input exits 2 with a clear message", () => {
  const bad = (args: string[], re: RegExp) => {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, re, args.join(" "));
  };
  bad(["import", "onnx", TINY, "--out", tmp], /unknown import format "onnx"/);
  bad(["import", "gguf", "--out", tmp], /the GGUF FILE is required/);
  bad(["import", "gguf", TINY], /--out DIR is required/);
  bad(["import", "gguf", TINY, "--out", tmp, "--dtype", "f16"], /--dtype must be f32 or bf16/);
  bad(["import", "gguf", path.join(tmp, "nope.gguf"), "--out", tmp], /nope\.gguf: cannot open/);
  // An IQ3_XXS tensor (its type code patched in): the error names the tensor and type, and no config.json is left.
  const buf = fs.readFileSync(TINY);
  const name = Buffer.from("blk.0.ffn_up.weight");
  const at = buf.indexOf(name) + name.length; // then u32 n_dims = 2, u64 ne[2], u32 type
  assert.equal(buf.readUInt32LE(at), 2);
  buf.writeUInt32LE(18, at + 4 + 16); // IQ3_XXS
  const iq = path.join(tmp, "iq.gguf");
  fs.writeFileSync(iq, buf);
  const out = path.join(tmp, "iq-out");
  bad(["import", "gguf", iq, "--out", out], /tensor "blk\.0\.ffn_up\.weight" has ggml type IQ3_XXS \(code 18\)/);
  assert.ok(!fs.existsSync(path.join(out, "config.json")));
});

test("a .gguf file as --model: stepwise sample runs on it (in-memory import)", () => {
  const dir = microModelDir(tmp, "micro", 3);
  const file = path.join(tmp, "micro.gguf");
  const model = loadModel(dir, { backend: referenceBackend() });
  exportGguf(model, builtinTokenizer(), file);
  model.dispose();
  const problems = path.join(tmp, "problems.jsonl");
  fs.writeFileSync(problems, `${JSON.stringify({ id: "p1", question: "What is 2 + 3?", answer: "#### 5" })}\n`);
  const run = (m: string, out: string) => {
    const r = cli(
      "sample",
      "--model",
      m,
      "--problems",
      problems,
      "--n",
      "2",
      "--temperature",
      "0",
      "--max-tokens",
      "6",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.err);
    return fs
      .readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).completion);
  };
  // The same completions as from the folder it was exported from.
  assert.deepEqual(run(file, path.join(tmp, "from-gguf.jsonl")), run(dir, path.join(tmp, "from-dir.jsonl")));
});

test("a .gguf file as --model: score gives the folder's log-probs, sft trains from it, dpo uses it as the reference", () => {
  const dir = microModelDir(tmp, "micro2", 4);
  const file = path.join(tmp, "micro2.gguf");
  const model = loadModel(dir, { backend: referenceBackend() });
  exportGguf(model, builtinTokenizer(), file);
  model.dispose();
  const score = (m: string) => {
    const r = cli("score", "--model", m, "--text", "2 + 3 = 5", "--json");
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { total_logprob: number }).total_logprob;
  };
  assert.ok(Math.abs(score(file) - score(dir)) < 1e-4, "the same log-prob from the .gguf as from its folder");

  const data = path.join(tmp, "sft.jsonl");
  fs.writeFileSync(data, `${JSON.stringify({ question: "What is 2 + 3?", answer: "2 + 3 = <<2+3=5>>5\n#### 5" })}\n`);
  const out = path.join(tmp, "sft-from-gguf");
  let r = cli("sft", "--model", file, "--data", data, "--out", out, "--max-steps", "1", "--batch-size", "1", "--json");
  assert.equal(r.code, 0, r.err);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json"])
    assert.ok(fs.existsSync(path.join(out, f)), `${f} written`);

  const pairs = path.join(tmp, "pairs.jsonl");
  fs.writeFileSync(pairs, `${JSON.stringify({ prompt: "What is 2 + 3?", chosen: " 5", rejected: " 6" })}\n`);
  r = cli(
    "dpo",
    "--model",
    out,
    "--ref",
    file,
    "--pairs",
    pairs,
    "--out",
    path.join(tmp, "dpo-ref-gguf"),
    "--max-steps",
    "1",
    "--batch-size",
    "1",
    "--json",
  );
  assert.equal(r.code, 0, r.err);
});
