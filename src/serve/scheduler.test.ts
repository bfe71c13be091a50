// The scheduler: jobs that arrive together share a batch, a job larger than a batch is split over batches, jobs
// with other sampling options run in their own batch, a long job does not hold a short one back, max_tokens 0 and
// cancelled jobs finish, and every row gets exactly what generate() gives for its seed.

import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../model/generate.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import type { SamplingKey } from "./protocol.js";
import { Scheduler, type Job } from "./scheduler.js";

const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 512,
  tie_word_embeddings: false,
  attention_bias: false,
  initializer_range: 0.3,
  eos_token_id: 2,
  bos_token_id: 1,
};
const tok = builtinTokenizer();
const key = (patch: Partial<SamplingKey> = {}): SamplingKey => ({
  maxTokens: 8,
  temperature: 1,
  topP: 1,
  topK: 0,
  stop: [],
  ignoreEos: false,
  ...patch,
});
const rows = (prompt: string, seeds: number[]) => seeds.map((seed) => ({ ids: tok.encode(prompt), seed }));

test("jobs share batches, split when larger than one, and each row matches generate() for its seed", async () => {
  const model = new Llama(CFG, { seed: 2 });
  const s = new Scheduler(model, tok, { maxBatchRows: 4 });
  try {
    const jobs: Job[] = [
      { key: key(), rows: rows("a+b=", [1, 2, 3]) },
      { key: key(), rows: rows("3*4=", [4, 5, 6, 7, 8]) }, // spills into a second batch
      { key: key({ temperature: 0.5 }), rows: rows("x", [9]) }, // other options: a batch of its own
      { key: key({ maxTokens: 0 }), rows: rows("y", [10]) },
    ];
    const out = await Promise.all(jobs.map((j) => s.submit(j)));
    jobs.forEach((j, i) => {
      const want = generate(
        model,
        tok,
        j.rows.map((r) => ({ prompt: r.ids, seed: r.seed })),
        { maxTokens: j.key.maxTokens, temperature: j.key.temperature },
      );
      assert.deepEqual(
        out[i].map((g) => g.text),
        want.map((g) => g.text),
        `job ${i}`,
      );
    });
    assert.equal(out[3][0].tokens.length, 0);
    const st = s.stats();
    assert.equal(st.rows, 10);
    assert.equal(st.maxRows, 4);
    assert.equal(st.batches, 4, "3+1, 4, the temperature 0.5 row, the max_tokens 0 row");
  } finally {
    s.close();
    model.dispose();
  }
});

test("a long job does not hold back a short one; a cancelled job ends its batch and rejects", async () => {
  const model = new Llama(CFG, { seed: 2 });
  const live = model.embed.backend.liveBuffers();
  const s = new Scheduler(model, tok, { joinWaitMs: 0 });
  try {
    const order: string[] = [];
    const long = s
      .submit({ key: key({ maxTokens: 300, ignoreEos: true }), rows: rows("long", [1]) })
      .then(() => order.push("long"));
    await new Promise((r) => setTimeout(r, 30)); // the long batch is running
    await s
      .submit({ key: key({ maxTokens: 3, ignoreEos: true }), rows: rows("short", [2]) })
      .then(() => order.push("short"));
    await long;
    assert.deepEqual(order, ["short", "long"]);

    const job: Job = { key: key({ maxTokens: 300, ignoreEos: true }), rows: rows("cancel me", [3]) };
    let steps = 0;
    job.onStep = () => {
      if (++steps === 5) s.cancel(job);
    };
    await assert.rejects(s.submit(job), /cancelled/);
    for (let i = 0; i < 50 && model.embed.backend.liveBuffers() !== live; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(model.embed.backend.liveBuffers(), live, "every batch's KV cache was freed");
  } finally {
    s.close();
    model.dispose();
  }
});
