// The decoder's own invariants: rotary tables that grow on demand give the same logits as tables built large, and
// a model frees every buffer it allocated.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { tensor, tidy } from "../engine/tensor.js";
import { Llama, type LlamaConfig, ropeInvFreq } from "./llama.js";

const CFG: LlamaConfig = {
  vocab_size: 20, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2,
  num_key_value_heads: 1, rms_norm_eps: 1e-5, rope_theta: 1e4, max_position_embeddings: 64,
  tie_word_embeddings: true, attention_bias: false,
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
  const s = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } as const;
  const base = ropeInvFreq({ rope_theta: 1e4 }, 8); // wavelengths 2pi * (1, 10, 100, 1000)
  const scaled = ropeInvFreq({ rope_theta: 1e4, rope_scaling: s }, 8);
  assert.equal(scaled[0], base[0]); // wavelength 6.3 < 64 / 4: kept
  assert.ok(scaled[1] < base[1] && scaled[1] > base[1] / 8); // 62.8 between 16 and 64: blended
  assert.equal(scaled[2], base[2] / 8); // 628 > 64: divided by factor
  assert.equal(scaled[3], base[3] / 8);
});
