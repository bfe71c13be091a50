// Teacher-forced scoring: batched, sorted and chunked scoring gives each sequence's log-probs from its own full
// forward; completion sums cover exactly the completion; nothing leaks. Reference f64, and native where built.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Backend, DType } from "../backend/backend.js";
import { nativeBackend, referenceBackend } from "../backend/index.js";
import { logSoftmax } from "../engine/ops.js";
import { noGrad, tensor, tidy } from "../engine/tensor.js";
import { Llama, type LlamaConfig } from "./llama.js";
import { completionLogps, scoreTokens } from "./score.js";

const CFG: LlamaConfig = {
  vocab_size: 37,
  hidden_size: 24,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 64,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.2,
};

const native = nativeBackend();
const SETUPS: { name: string; be: Backend; dtype: DType; tol: number }[] = [
  { name: "reference f64", be: referenceBackend(), dtype: "f64", tol: 1e-12 },
  ...(native ? [{ name: "native f32", be: native, dtype: "f32" as DType, tol: 1e-5 }] : []),
];

const SEQS = [[1, 5, 9, 2, 30, 31], [1], [1, 7], [1, 20, 21, 22, 23, 24, 25, 26, 27, 3], [1, 36, 0, 4], [1, 8, 8]];

/** log p(ids[t+1] | ids[..t]) from one unbatched full forward. */
function direct(m: Llama, ids: number[]): number[] {
  const V = CFG.vocab_size;
  const lp = tidy(() =>
    noGrad(() => logSoftmax(m.forward(tensor(ids, [1, ids.length], "i32", m.embed.backend))).toArray()),
  );
  return ids.slice(1).map((id, t) => lp[t * V + id]);
}

for (const s of SETUPS) {
  test(`scoreTokens: batched, sorted and chunked equals each sequence's own forward (${s.name}, tol ${s.tol})`, () => {
    const live = s.be.liveBuffers();
    const m = new Llama(CFG, { seed: 4, backend: s.be, dtype: s.dtype });
    const want = SEQS.map((ids) => direct(m, ids));
    for (const opts of [{}, { batchSize: 2 }, { batchSize: 4, maxBatchTokens: 12, maxLogits: 3 * CFG.vocab_size }]) {
      const got = scoreTokens(m, SEQS, opts);
      got.forEach((lp, i) => {
        assert.equal(lp.length, SEQS[i].length - 1);
        lp.forEach((x, t) =>
          assert.ok(Math.abs(x - want[i][t]) <= s.tol, `seq ${i} token ${t}: ${x} vs ${want[i][t]}`),
        );
      });
    }
    const sums = completionLogps(m, [
      { prompt: [1, 5, 9], completion: [2, 30, 31] },
      { prompt: [1], completion: [7] },
    ]);
    assert.ok(Math.abs(sums[0] - (want[0][2] + want[0][3] + want[0][4])) <= 3 * s.tol);
    assert.ok(Math.abs(sums[1] - want[2][0]) <= s.tol);
    m.dispose();
    assert.equal(s.be.liveBuffers(), live, "scoring leaked buffers");
  });
}

test("scoreTokens rejects empty sequences and ids outside the vocabulary", () => {
  const m = new Llama(CFG, { seed: 4, backend: referenceBackend() });
  assert.throws(() => scoreTokens(m, [[1, 2], []]), /sequence 1 is empty/);
  assert.throws(() => scoreTokens(m, [[1, 99]]), /token id 99 is outside/);
  assert.throws(() => completionLogps(m, [{ prompt: [], completion: [1] }]), /empty prompt/);
  m.dispose();
});
