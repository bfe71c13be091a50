// LocalCompleter on a tiny random model saved as a model folder: n completions per request, each what generate()
// gives for its seed whatever the batch, requests with different sampling parameters kept apart, stop strings and
// log-probs passed through, bad parameters rejected.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { InputError } from "../core/errors.js";
import { generate, sequenceSeed } from "../model/generate.js";
import { saveModel } from "../model/hub.js";
import { initModel } from "../model/presets.js";
import { LocalCompleter } from "./local.js";

function tinyDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-local-"));
  const { model, tokenizer } = initModel("tiny", { seed: 3 });
  saveModel(model, dir);
  tokenizer!.save(dir);
  model.dispose();
  return dir;
}

test("LocalCompleter: n completions per request, each equal to generate() with its seed, batch or not", async () => {
  const dir = tinyDir();
  const c = LocalCompleter.load(dir, { batchSize: 3 });
  try {
    assert.equal(c.name, `local:${dir}`);
    const params = { n: 3, temperature: 1, maxTokens: 12, seed: 5, logprobs: true };
    const got = await c.complete([
      { prompt: "Tom has 3 apples.\n", params },
      { prompt: "A farm has 12 goats and 4 pens. How many?\n", params: { ...params, n: 2, seed: 9 } },
    ]);
    assert.deepEqual(
      got.map((r) => r.length),
      [3, 2],
    );
    const want = generate(
      c.model,
      c.tokenizer,
      [0, 1, 2].map((j) => ({ prompt: "Tom has 3 apples.\n", seed: sequenceSeed(5, j) })),
      { maxTokens: 12, temperature: 1 },
    );
    got[0].forEach((g, j) => {
      assert.equal(g.text, want[j].text);
      assert.equal(g.finishReason, want[j].finishReason);
      assert.equal(g.tokens, want[j].tokens.length);
      assert.deepEqual(g.logprobs, want[j].logprobs);
    });
    assert.ok(new Set(got[0].map((g) => g.text)).size > 1, "different seeds, different samples");
    // Alone, in another batch, the same request gives the same completions.
    const [alone] = await c.complete([
      { prompt: "A farm has 12 goats and 4 pens. How many?\n", params: { ...params, n: 2, seed: 9 } },
    ]);
    assert.deepEqual(alone, got[1]);
  } finally {
    c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("LocalCompleter: per-request temperature, stop strings and logprobs; bad parameters are InputErrors", async () => {
  const dir = tinyDir();
  const c = LocalCompleter.load(dir);
  try {
    const [greedy, hot] = await c.complete([
      { prompt: "Q\n", params: { n: 2, temperature: 0, maxTokens: 10 } },
      { prompt: "Q\n", params: { n: 1, temperature: 1.5, maxTokens: 6, seed: 1 } },
    ]);
    assert.equal(greedy[0].text, greedy[1].text, "greedy: the same text whatever the seed");
    assert.equal(greedy[0].logprobs, undefined);
    assert.ok(hot[0].tokens! <= 6);
    const want = generate(c.model, c.tokenizer, [{ prompt: "Q\n", seed: sequenceSeed(1, 0) }], {
      maxTokens: 6,
      temperature: 1.5,
    });
    assert.equal(hot[0].text, want[0].text);

    // A stop string cuts the text before it: pick one the model does write.
    const long = await c.complete([{ prompt: "Q\n", params: { n: 1, temperature: 1, maxTokens: 30, seed: 2 } }]);
    const text = long[0][0].text;
    const stop = text.slice(5, 7);
    const [stopped] = await c.complete([
      { prompt: "Q\n", params: { n: 1, temperature: 1, maxTokens: 30, seed: 2, stop: [stop] } },
    ]);
    assert.equal(stopped[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(stopped[0].finishReason, "stop");

    await assert.rejects(c.complete([{ prompt: "Q\n", params: { n: 0, temperature: 1, maxTokens: 4 } }]), InputError);
    await assert.rejects(c.complete([{ prompt: "Q\n", params: { n: 1, temperature: -1, maxTokens: 4 } }]), InputError);
    await assert.rejects(c.complete([{ prompt: "Q\n", params: { n: 1, temperature: 1, maxTokens: 1.5 } }]), InputError);
  } finally {
    c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
