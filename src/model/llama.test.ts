// The decoder's own invariants: rotary tables that grow on demand give the same logits as tables built large, a
// model frees every buffer it allocated, and a KV cache keeps the rows it selects. (Cached generation: generate.test.ts.)

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { tensor, tidy } from "../engine/tensor.js";
import { Llama, type LlamaConfig, ropeInvFreq } from "./llama.js";

const CFG: LlamaConfig = {
  vocab_size: 20,
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
};

test("rotary tables grow on demand: same logits as tables built for every position", () => {
  const be = referenceBackend();
  const live = be.liveBuffers();
  const small = new Llama(CFG, { seed: 3, backend: be, maxPositions: 4 });
  const large = new Llama(CFG, { seed: 3, backend: be });
  assert.equal(small.ropePositions, 4);
  const ids = Array.from({ length: 10 }, (_, i) => (i * 7) % 20);
  const run = (m: Llama) => tidy(() => m.forward(tensor(ids, [1, 10], "i32", be)).toArray());
  assert.deepEqual(run(small), run(large));
  assert.equal(small.ropePositions, 10);
  small.dispose();
  large.dispose();
  assert.equal(be.liveBuffers(), live);
});

test("llama3 rope scaling keeps high frequencies, divides low ones, blends between", () => {
  const s = {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 64,
  } as const;
  const base = ropeInvFreq({ rope_theta: 1e4 }, 8); // wavelengths 2pi * (1, 10, 100, 1000)
  const scaled = ropeInvFreq({ rope_theta: 1e4, rope_scaling: s }, 8);
  assert.equal(scaled[0], base[0]); // wavelength 6.3 < 64 / 4: kept
  assert.ok(scaled[1] < base[1] && scaled[1] > base[1] / 8); // 62.8 between 16 and 64: blended
  assert.equal(scaled[2], base[2] / 8); // 628 > 64: divided by factor
  assert.equal(scaled[3], base[3] / 8);
});

test("KV cache: selected rows decode as in the full cache; wrong shapes are errors; nothing leaks", () => {
  const be = referenceBackend();
  const live = be.liveBuffers();
  const m = new Llama(CFG, { seed: 5, backend: be, dtype: "f64" });
  const cache = m.newCache(3, 8);
  const V = CFG.vocab_size;
  tidy(() => {
    m.forwardCached(tensor([0, 1, 2, 3, 4, 5, 6, 7, 8], [3, 3], "i32", be), cache, {
      valid: [0, 1, 1, 1, 1, 1, 1, 1, 1],
    });
  });
  const small = cache.select([2, 0]);
  assert.equal(small.length, 3);
  const full = tidy(() => m.forwardCached(tensor([9, 10, 11], [3, 1], "i32", be), cache).toArray());
  const sel = tidy(() => m.forwardCached(tensor([11, 9], [2, 1], "i32", be), small).toArray());
  assert.deepEqual(sel.slice(0, V), full.slice(2 * V, 3 * V));
  assert.deepEqual(sel.slice(V, 2 * V), full.slice(0, V));
  assert.throws(() => tidy(() => m.forwardCached(tensor([1, 2], [2, 1], "i32", be), cache)), /ids must be \(B, T\)/);
  assert.throws(
    () => tidy(() => m.forwardCached(tensor(new Array(15).fill(1), [3, 5], "i32", be), cache)),
    /free slots/,
  );
  assert.throws(() => cache.select([3]), /rows must be in/);
  cache.dispose();
  small.dispose();
  m.dispose();
  assert.equal(be.liveBuffers(), live);
});
