// Adapter-only PEFT folders (issue #17 item 2): what peft's save_pretrained writes (adapter_config.json,
// adapter_model.safetensors, README.md; no config.json, no tokenizer) loads as its base plus the adapter, with the
// base's tokenizer, the base found by the Hugging Face name peft recorded in a local hub cache (no network); the
// adapters stepwise writes name their base portably (its hub name, or a path relative to the adapter folder).
//
// The oracle is reference/make_adapter_only_fixture.py: peft's unedited output for a base loaded by hub name, and the
// logits of transformers + peft on one sequence.
//
// Legend: T time, V vocab.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { noGrad, tensor, tidy } from "../engine/tensor.js";
import { loadModel, loadModelTokenizer, saveModel } from "./hub.js";
import { cacheModel, fakeCommit } from "./hubcache.testkit.js";
import { attachLora } from "./lora.js";
import { Checkpoint } from "./safetensors.js";
import { scoreTokens } from "./score.js";
import { TextTokenizer, builtinTokenizer } from "./tokenizer.js";

const FIXTURES = fileURLToPath(new URL("../../src/model/fixtures/", import.meta.url));
const FIXTURE = path.join(FIXTURES, "llama-tiny-adapter-only");
const ADAPTER = path.join(FIXTURE, "adapter");
const BASE = path.join(FIXTURES, "llama-tiny", "model");
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8")) as {
  repo_id: string;
  base_model_name_or_path: string;
  input_ids: number[];
  files: string[];
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-adapter-only-"));
const be = referenceBackend();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The fixture's base (config + weights) with the built-in tokenizer: the files a hub repo of it would hold. */
function baseWithTokenizer(): string {
  const dir = fs.mkdtempSync(path.join(tmp, "base-"));
  for (const f of fs.readdirSync(BASE)) fs.copyFileSync(path.join(BASE, f), path.join(dir, f));
  builtinTokenizer().save(dir);
  return dir;
}

/** Runs `fn` with HF_HUB_CACHE = `cache` and HF_HUB_OFFLINE = 1, restoring both after. */
function withCache<T>(cache: string, fn: () => T): T {
  const saved = { cache: process.env.HF_HUB_CACHE, offline: process.env.HF_HUB_OFFLINE };
  process.env.HF_HUB_CACHE = cache;
  process.env.HF_HUB_OFFLINE = "1";
  try {
    return fn();
  } finally {
    for (const [k, v] of [
      ["HF_HUB_CACHE", saved.cache],
      ["HF_HUB_OFFLINE", saved.offline],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function adapterConfig(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
}

test("peft's adapter-only folder: the base by its hub name from the cache, its tokenizer, peft's logits", () => {
  assert.deepEqual(fs.readdirSync(ADAPTER).sort(), expected.files, "the fixture is peft's output, unedited");
  assert.equal(expected.base_model_name_or_path, expected.repo_id, "peft records the name the base was loaded by");
  const cache = path.join(tmp, "cache-ok");
  const baseSrc = baseWithTokenizer();
  cacheModel(cache, expected.repo_id, baseSrc, { commit: fakeCommit("llama-tiny") });
  withCache(cache, () => {
    const tok = loadModelTokenizer(ADAPTER);
    const baseTok = TextTokenizer.load(baseSrc);
    assert.equal(tok.vocabSize, baseTok.vocabSize);
    assert.deepEqual(tok.encode("12+5=17"), baseTok.encode("12+5=17"), "the base's tokenizer");

    const model = loadModel(ADAPTER, { backend: be });
    const ref = Checkpoint.open(path.join(FIXTURE, "reference.safetensors"));
    try {
      assert.ok(model.lora && !model.lora.merged, "the adapter is attached, unmerged");
      assert.deepEqual(model.lora.linears.map((l) => l.key).slice(0, 3), [
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.v_proj",
        "model.layers.0.mlp.down_proj",
      ]);
      const ids = expected.input_ids;
      const theirs = ref.read("logits", "f32"); // (1, T, V)
      const ours = tidy(() => model.forward(tensor(ids, [1, ids.length], "i32", be)).toArray()); // (1, T, V)
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < theirs.length; i++) {
        diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
        scale = Math.max(scale, Math.abs(theirs[i]));
      }
      console.log(`logits vs transformers + peft (float32): max |diff| ${diff.toExponential(2)}, max |logit| ${scale}`);
      assert.ok(diff <= 1e-5 * Math.max(1, scale), `logits differ by ${diff}`);
      const base = loadModel(ADAPTER, { backend: be, adapter: false });
      const baseLogits = tidy(() => base.forward(tensor(ids, [1, ids.length], "i32", be)).toArray());
      base.dispose();
      assert.ok(
        baseLogits.some((x, i) => Math.abs(x - theirs[i]) > 1e-3),
        "the adapter changes the logits (the test would see a missing adapter)",
      );
    } finally {
      ref.close();
      model.dispose();
    }
  });
});

test("an adapter whose base is not found names what it tried; a missing folder is reported as such", () => {
  withCache(path.join(tmp, "cache-empty"), () => {
    for (const load of [() => loadModelTokenizer(ADAPTER), () => loadModel(ADAPTER, { backend: be })]) {
      assert.throws(load, /stepwise-fixtures\/llama-tiny: not a local path, and not in the Hugging Face cache/);
    }
  });
  const adapter = path.join(tmp, "lost-base");
  fs.mkdirSync(adapter);
  fs.copyFileSync(path.join(ADAPTER, "adapter_model.safetensors"), path.join(adapter, "adapter_model.safetensors"));
  const cfg = { ...adapterConfig(ADAPTER), base_model_name_or_path: "../no-such-base" };
  fs.writeFileSync(path.join(adapter, "adapter_config.json"), JSON.stringify(cfg));
  assert.throws(
    () => loadModelTokenizer(adapter),
    new RegExp(`base model "\\.\\./no-such-base" not found \\(looked in ${path.join(tmp, "no-such-base")}`),
  );
  const missing = path.join(tmp, "no-such-model");
  assert.throws(() => loadModelTokenizer(missing), new RegExp(`${missing}: no such model folder`));
  assert.throws(() => loadModel(missing, { backend: be }), new RegExp(`${missing}: no such model folder`));
  assert.throws(() => loadModel(`${missing}.gguf`, { backend: be }), /no-such-model\.gguf: no such model file/);
});

test("saveModel names the base portably: its hub name from the cache, else a path relative to the adapter", () => {
  const cache = path.join(tmp, "cache-save");
  const commit = fakeCommit("base-v1");
  const snap = cacheModel(cache, "owner/base", baseWithTokenizer(), { commit });
  const ids = [[1, 5, 9, 13, 2]];
  const train = (baseDir: string, out: string) => {
    const m = loadModel(baseDir, { backend: be });
    attachLora(m, { r: 2, seed: 3 });
    noGrad(() => {
      for (const l of m.lora!.linears) l.B.backend.write(l.B.buf, new Float32Array(l.B.size).fill(0.05));
    });
    saveModel(m, out); // as sft/dpo save: base weights + the adapter's PEFT files
    for (const f of ["config.json", "model.safetensors"]) fs.rmSync(path.join(out, f)); // adapter-only, as peft's
    const want = scoreTokens(m, ids);
    m.dispose();
    return want;
  };
  withCache(cache, () => {
    const fromHub = path.join(tmp, "from-hub");
    const want = train(snap, fromHub);
    assert.equal(adapterConfig(fromHub).base_model_name_or_path, "owner/base");
    assert.equal(adapterConfig(fromHub).revision, null, "main's commit: no revision");
    const back = loadModel(fromHub, { backend: be });
    assert.deepEqual(scoreTokens(back, ids), want);
    back.dispose();

    fs.writeFileSync(path.join(cache, "models--owner--base", "refs", "main"), fakeCommit("base-v2"));
    const pinned = path.join(tmp, "pinned");
    train(snap, pinned);
    assert.equal(adapterConfig(pinned).revision, commit, "a snapshot that is not main's is pinned by its commit");
    loadModel(pinned, { backend: be }).dispose(); // found at that commit though main moved
  });

  const local = path.join(tmp, "work", "base");
  fs.mkdirSync(path.dirname(local));
  fs.cpSync(baseWithTokenizer(), local, { recursive: true });
  const out = path.join(tmp, "work", "runs", "sft");
  const want = train(local, out);
  assert.equal(adapterConfig(out).base_model_name_or_path, path.join("..", "..", "base"));
  const moved = path.join(tmp, "moved");
  fs.renameSync(path.join(tmp, "work"), moved); // the adapter and its base move together
  const adapter = path.join(moved, "runs", "sft");
  const back = loadModel(adapter, { backend: be });
  assert.deepEqual(scoreTokens(back, ids), want);
  back.dispose();
  assert.equal(loadModelTokenizer(adapter).vocabSize, builtinTokenizer().vocabSize);
});
