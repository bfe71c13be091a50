// The reference pass that a Ctrl-C can stop (issue #15, item 1): the async pass gives the same numbers as the
// synchronous one, stops at a batch when asked (nothing cached), and the cache is written only for a whole pass.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { getBackend, referenceBackend, setBackend } from "../backend/index.js";
import { Rng } from "../core/rng.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { cachedRefLogpsAsync, precomputeRefLogps, precomputeRefLogpsAsync, type TokenPair } from "./dpo.js";

const CFG: LlamaConfig = {
  vocab_size: 11,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 32,
  tie_word_embeddings: false,
  attention_bias: false,
};

function randomPairs(n: number): TokenPair[] {
  const rng = new Rng(4);
  const seq = () => Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(10));
  return Array.from({ length: n }, () => ({ prompt: [0, ...seq()], chosen: seq(), rejected: seq() }));
}

test("the async reference pass equals the sync one, stops within a batch when asked, and caches only a whole pass", async () => {
  const prev = getBackend();
  setBackend(referenceBackend());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-reflogps-"));
  const model = new Llama(CFG, { seed: 2 });
  try {
    const pairs = randomPairs(10);
    const sync = precomputeRefLogps(model, pairs, 0, 3);
    const whole = await precomputeRefLogpsAsync(model, pairs, 0, 3);
    assert.deepEqual(whole, sync);
    let batches = 0;
    const stopped = await precomputeRefLogpsAsync(
      model,
      pairs,
      0,
      3,
      () => batches++,
      () => batches >= 2,
    );
    assert.equal(stopped, null);
    assert.equal(batches, 2, "it stopped right after the batch during which the stop came");
    const file = path.join(dir, "ref_logps.json");
    assert.equal(await cachedRefLogpsAsync(file, "k", async () => null), null);
    assert.ok(!fs.existsSync(file), "a stopped pass caches nothing");
    assert.deepEqual(await cachedRefLogpsAsync(file, "k", async () => sync), sync);
    assert.deepEqual(await cachedRefLogpsAsync(file, "k", async () => assert.fail("read from the cache")), sync);
  } finally {
    model.dispose();
    setBackend(prev);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
