// Corrupted solutions: exactly one step changes (its annotation's result and the number written after it), the
// calculator verifier flags that step and no other, choices follow the seed; corruptEval's rates on tiny models.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { Rng } from "../core/rng.js";
import { generateProblems, PRESETS } from "../data/task.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import { verifySolution } from "../verify/record.js";
import { splitSteps } from "../verify/steps.js";
import { corruptEval, corruptSolution, perturb } from "./corrupt.js";

const SOLUTION = "Tomas has 45 - 18 = $<<45-18=27>>27 left.\nHis money grows to 27 * 4 = $<<27*4=108>>108.\n#### 108";

test("corruptSolution: one step's result changes, the verifier flags exactly that step", () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 40; seed++) {
    const c = corruptSolution(SOLUTION, seed)!;
    assert.ok(c);
    seen.add(c.step);
    assert.deepEqual(c.candidates, [0, 1]);
    assert.equal(c.steps, 3);
    assert.notEqual(c.corrupted, c.original);
    const before = splitSteps(SOLUTION).map((s) => s.text);
    const now = splitSteps(c.text).map((s) => s.text);
    assert.equal(now.length, before.length);
    assert.deepEqual(
      now.map((s, i) => s !== before[i]),
      before.map((_, i) => i === c.step),
    );
    assert.ok(now[c.step].includes(`=${c.corrupted}>>${c.corrupted}`), now[c.step]);
    const v = verifySolution(c.text, SOLUTION, "arith");
    assert.equal(v.first_error_step, c.step);
    assert.deepEqual(
      v.steps.map((s) => s.ok === false),
      before.map((_, i) => i === c.step),
    );
    assert.equal(v.correct, true); // later steps kept: the final answer is unchanged
    assert.deepEqual(corruptSolution(SOLUTION, seed), c); // deterministic by seed
  }
  assert.deepEqual([...seen].sort(), [0, 1]);
});

test("corruptSolution: built-in task problems, decimals, several annotations in a step, nothing to corrupt", () => {
  for (const p of generateProblems(PRESETS.medium, { n: 20, seed: 3, split: "test" })) {
    const c = corruptSolution(p.answer, 7)!;
    assert.equal(verifySolution(c.text, p.answer, "arith").first_error_step, c.step, c.text);
  }
  const two = "He pays 2 * 3 = <<2*3=6>>6 and 6 + 1 = <<6+1=7>>7 dollars.\n#### 7";
  for (let seed = 0; seed < 10; seed++) {
    const c = corruptSolution(two, seed)!;
    assert.equal(c.step, 0);
    assert.equal(verifySolution(c.text, two, "gsm8k").first_error_step, 0);
  }
  const dec = corruptSolution("x = <<5/2=2.5>>2.5\n#### 2.5", 1)!;
  assert.match(dec.corrupted, /^\d+\.5$/);
  assert.equal(corruptSolution("no annotations here\n#### 3", 0), null);
  assert.equal(corruptSolution("a <<x=y>> b", 0), null);
  const rng = new Rng(0);
  for (let i = 0; i < 50; i++) {
    const v = Number(perturb("3", rng));
    assert.ok(v >= 0 && v !== 3 && Math.abs(v - 3) <= 9);
  }
});

test("corruptSolution recompute: the wrong value carried forward, later steps consistent, the answer changed", () => {
  const three = SOLUTION.replace("#### 108", "She spends 108 / 4 = $<<108/4=27>>27.\n#### 27");
  for (let seed = 0; seed < 20; seed++) {
    const keep = corruptSolution(three, seed)!;
    const c = corruptSolution(three, seed, "recompute")!;
    assert.equal(c.step, keep.step);
    assert.equal(c.corrupted, keep.corrupted);
    const v = verifySolution(c.text, three, "arith");
    assert.equal(v.first_error_step, c.step, c.text);
    assert.equal(v.correct, false, c.text); // the final answer follows the error
    v.steps.slice(c.step + 1, -1).forEach((s) => assert.notEqual(s.ok, false, c.text)); // later arithmetic holds
    assert.equal(
      splitSteps(c.text)
        .slice(0, c.step + 1)
        .join(),
      splitSteps(keep.text)
        .slice(0, c.step + 1)
        .join(),
    );
  }
  const c = corruptSolution(SOLUTION, 0, "recompute")!;
  if (c.step === 0)
    assert.ok(
      c.text.includes(
        `${c.corrupted} * 4 = $<<${c.corrupted}*4=${Number(c.corrupted) * 4}>>${Number(c.corrupted) * 4}.`,
      ),
      c.text,
    );
  assert.match(
    corruptSolution("a = <<7*2=14>>14\nb = 14 / 4 = <<14/4=3.5>>3.5\n#### 3.5", 2, "recompute")!.text,
    /#### \d+(\.\d+)?$/,
  );
});

test("corruptEval: rates in [0, 1], chance = mean 1/candidates, model == ref hits whatever step 0 is", () => {
  const cfg: LlamaConfig = {
    vocab_size: 100,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    rms_norm_eps: 1e-5,
    rope_theta: 1e4,
    max_position_embeddings: 512,
    tie_word_embeddings: true,
    attention_bias: false,
    initializer_range: 0.2,
    bos_token_id: 1,
    eos_token_id: 2,
  };
  const be = referenceBackend();
  const policy = new Llama(cfg, { seed: 1, backend: be });
  const ref = new Llama(cfg, { seed: 2, backend: be });
  after(() => {
    policy.dispose();
    ref.dispose();
  });
  const problems = generateProblems(PRESETS.medium, { n: 6, seed: 1, split: "test" });
  const tok = builtinTokenizer();
  const r = corruptEval(policy, ref, tok, [...problems, { id: "x", question: "q?", answer: "#### 3" }], {
    seed: 5,
    batch: 4,
  });
  assert.equal(r.n, 6);
  assert.equal(r.skipped, 1);
  for (const k of ["implicit_reward_hit_rate", "ref_logprob_hit_rate", "policy_logprob_hit_rate"] as const) {
    assert.ok(r[k] >= 0 && r[k] <= 1);
  }
  const chance = problems.reduce((a, p) => a + 1 / p.steps, 0) / problems.length;
  assert.ok(Math.abs(r.chance - chance) < 1e-12);
  r.records.forEach((rec) => {
    assert.ok(rec.candidates.includes(rec.reward_pick) && rec.candidates.includes(rec.ref_pick));
    assert.equal(rec.step_rewards.length, rec.candidates.length + 1); // + the "####" line
  });
  const hits = r.records.filter((rec) => rec.reward_pick === rec.step).length;
  assert.equal(r.implicit_reward_hit_rate, hits / r.n);
  const self = corruptEval(policy, policy, tok, problems, { seed: 5 });
  assert.equal(self.implicit_reward_hit_rate, self.records.filter((rec) => rec.step === 0).length / self.n);
  assert.deepEqual(
    self.records.map((x) => x.step),
    r.records.map((x) => x.step),
  ); // same seed, same corruptions
  assert.throws(
    () => corruptEval(policy, ref, tok, [{ id: "x", question: "q", answer: "42" }]),
    /no problem has a reference solution/,
  );
  const rec = corruptEval(policy, ref, tok, problems, { seed: 5, mode: "recompute" });
  assert.equal(rec.mode, "recompute");
  assert.deepEqual(
    rec.records.map((x) => x.step),
    r.records.map((x) => x.step),
  );
});
