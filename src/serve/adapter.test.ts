// `stepwise serve --model ADAPTER_DIR` (issue #17 items 2 and 5): a PEFT adapter-only folder is served as its base
// plus the adapter with the base's tokenizer; /v1/models lists the folder's name; requests may leave `model` out.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { noGrad } from "../engine/tensor.js";
import { generate } from "../model/generate.js";
import { loadModel, loadModelTokenizer, saveModel } from "../model/hub.js";
import { attachLora } from "../model/lora.js";
import { defaultModelName } from "./server.js";
import { writeTinyModel } from "./tiny.js";

test("defaultModelName: a hub cache snapshot by its name, anything else by its folder's name", () => {
  const snap = "/c/hub/models--owner--name/snapshots/0123456789abcdef0123456789abcdef01234567";
  assert.equal(defaultModelName(snap), "owner/name");
  assert.equal(defaultModelName("./runs/sft/"), "sft");
  assert.equal(defaultModelName("/models/tiny.gguf"), "tiny.gguf");
});

test("stepwise serve --model ADAPTER_DIR: the adapter on its base, listed by the folder's name, model optional", async () => {
  const be = referenceBackend();
  const root = writeTinyModel();
  const base = path.join(root, "base");
  fs.mkdirSync(base);
  for (const f of fs.readdirSync(root).filter((f) => f !== "base"))
    fs.renameSync(path.join(root, f), path.join(base, f));
  const adapter = path.join(root, "my-adapter");
  const m = loadModel(base, { backend: be });
  attachLora(m, { r: 2, seed: 1 });
  noGrad(() => {
    for (const l of m.lora!.linears) l.B.backend.write(l.B.buf, new Float32Array(l.B.size).fill(0.3));
  });
  saveModel(m, adapter);
  m.dispose();
  for (const f of ["config.json", "model.safetensors"]) fs.rmSync(path.join(adapter, f)); // as peft writes it
  const tok = loadModelTokenizer(adapter);
  const model = loadModel(adapter, { backend: be });
  const plain = loadModel(adapter, { backend: be, adapter: false });
  const opts = { maxTokens: 8, temperature: 0, eosIds: [] };
  const want = generate(model, tok, ["12+5="], opts)[0].text;
  const baseText = generate(plain, tok, ["12+5="], opts)[0].text;
  model.dispose();
  plain.dispose();

  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/stepwise.js");
  const child = spawn(process.execPath, [bin, "serve", "--model", adapter, "--port", "0", "--backend", "reference"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out);
      });
      child.stderr.on("data", (d) => (err += d));
      child.on("exit", (code) => reject(new Error(`exited ${code} before listening: ${err}`)));
    });
    const url = /(http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(line)![1];
    const models = (await (await fetch(`${url}/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((x) => x.id),
      ["my-adapter"],
    );
    const post = (body: object) =>
      fetch(`${url}/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: "12+5=", max_tokens: 8, temperature: 0, ...body }),
      });
    const r = (await (await post({})).json()) as { model: string; choices: { text: string }[] };
    assert.equal(r.model, "my-adapter");
    assert.equal(r.choices[0].text, want, "greedy text of the adapter on its base, with no 'model' in the request");
    assert.notEqual(want, baseText, "the adapter changes the text (the test would see a missing adapter)");
    assert.equal((await post({ model: "my-adapter" })).status, 200);
    assert.equal((await post({ model: "other" })).status, 404);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    fs.rmSync(root, { recursive: true, force: true });
  }
});
