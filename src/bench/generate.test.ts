// `bench generate` smoke test: one row per (model, batch) with the fields the issue names, finite and positive.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { benchGenerate } from "./generate.js";

test("benchGenerate: a row per batch with the issue's fields, nothing leaked", async () => {
  const be = referenceBackend();
  const live = be.liveBuffers();
  const rows = await benchGenerate(be, { models: ["tiny"], batches: [1, 2], promptTokens: 5, newTokens: 3, reps: 1 });
  assert.deepEqual(
    rows.map((r) => [r.model, r.batch, r.prompt_tokens, r.new_tokens]),
    [
      ["tiny", 1, 5, 3],
      ["tiny", 2, 5, 3],
    ],
  );
  for (const r of rows) {
    assert.ok(r.tokens_per_s > 0 && r.prefill_tokens_per_s > 0 && Number.isFinite(r.tokens_per_s));
    // issue #6: step-controlled sampling (continueStepwise, default schedule, LocalCompleter) on the tiny model
    assert.ok(
      r.step_controlled_tokens_per_s !== null &&
        r.step_controlled_tokens_per_s > 0 &&
        Number.isFinite(r.step_controlled_tokens_per_s),
      String(r.step_controlled_tokens_per_s),
    );
  }
  assert.equal(be.liveBuffers(), live);
});
