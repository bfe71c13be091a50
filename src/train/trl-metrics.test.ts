// TRL's token metrics (num_tokens, entropy, mean_token_accuracy, logits/chosen, logits/rejected) from the SFT and DPO
// objectives, against the definitions in SFTTrainer.compute_loss and DPOTrainer.compute_loss written out as plain
// loops over a fixed fake model's logits; and the per-micro-batch averaging of TRL's log().
//
// Legend: B rows, T positions, V vocab.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceBackend, withBackend } from "../backend/index.js";
import { tensor, type Tensor } from "../engine/tensor.js";
import { collate, type Example } from "./batch.js";
import { dpoObjective, type TokenPair } from "./dpo.js";
import { evaluateAll } from "./loop.js";
import type { CausalLM } from "./logps.js";
import { evalBase, METRICS } from "./metrics.js";
import { sftObjective } from "./sft.js";
import { tidy } from "../engine/tensor.js";

const V = 5;
/** Logits that depend on the token and its position only; token 3 after token 1 is the argmax (some hits). */
const logitOf = (id: number, t: number, v: number) =>
  Math.sin(id * 1.7 + v * 2.3 + t * 0.4) * 2 + (v === 3 && id === 1 ? 3 : 0);

const fake: CausalLM = {
  forward(ids: Tensor): Tensor {
    const [B, T] = ids.shape;
    const x = ids.toArray();
    const out = new Float64Array(B * T * V);
    for (let p = 0; p < B * T; p++) for (let v = 0; v < V; v++) out[p * V + v] = logitOf(x[p], p % T, v);
    return tensor(out, [B, T, V], "f64");
  },
};

/** Entropy, mean logit and argmax of the fake model's distribution after `seq[t]` at position t. */
function at(seq: number[], t: number) {
  const l = Array.from({ length: V }, (_, v) => logitOf(seq[t], t, v));
  const m = Math.max(...l);
  const z = l.reduce((a, x) => a + Math.exp(x - m), 0);
  const p = l.map((x) => Math.exp(x - m) / z);
  return {
    entropy: -p.reduce((a, pi) => a + pi * Math.log(pi), 0),
    mean: l.reduce((a, b) => a + b, 0) / V,
    argmax: l.indexOf(m),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Positions of `seq` that predict a completion token: (t, target). */
const completionTargets = (e: Example) => {
  const seq = [...e.prompt, ...e.completion];
  return e.completion.map((tok, i) => ({ t: e.prompt.length - 1 + i, target: tok, seq }));
};

const EXAMPLES: Example[] = [
  { prompt: [0, 1], completion: [3, 1, 3, 2] },
  { prompt: [0, 2, 4], completion: [1, 3] },
  { prompt: [0], completion: [1, 3, 4] },
];

test("SFT: num_tokens counts prompt and completion tokens; entropy and mean_token_accuracy as TRL defines them", () => {
  withBackend(referenceBackend(), () => {
    const o = sftObjective(fake, 4);
    const r = tidy(() => o.evaluate!(EXAMPLES, [0, 1, 2], 1 / 9));
    // TRL: attention_mask.sum(): every token of every row, prompt included, padding not.
    assert.equal(r.tokens, 6 + 5 + 4);
    // TRL: entropy over every position the attention mask keeps (each row's last token is never an input here).
    const ent = EXAMPLES.flatMap((e) => {
      const seq = [...e.prompt, ...e.completion];
      return seq.slice(0, -1).map((_, t) => at(seq, t).entropy);
    });
    // TRL: argmax(logits) == label over the labels != -100, correct / total over the micro-batch.
    const hits = EXAMPLES.flatMap(completionTargets).map(({ t, target, seq }) =>
      at(seq, t).argmax === target ? 1 : 0,
    );
    assert.ok(hits.some((h) => h === 1) && hits.some((h) => h === 0), "the fixture has hits and misses");
    const m = r.means ?? {};
    console.log(`# SFT entropy ${m[METRICS.entropy]} vs ${mean(ent)}; accuracy ${m[METRICS.meanTokenAccuracy]}`);
    assert.ok(Math.abs(m[METRICS.entropy] - mean(ent)) < 1e-12);
    assert.equal(m[METRICS.meanTokenAccuracy], mean(hits));
  });
});

test("DPO: num_tokens counts both rows' prompts; entropy over both completions, accuracy on chosen, logits per side", () => {
  withBackend(referenceBackend(), () => {
    const pairs: TokenPair[] = [
      { prompt: [0, 1], chosen: [3, 1, 3], rejected: [2, 2] },
      { prompt: [0, 2, 1], chosen: [3], rejected: [4, 1, 3, 0] },
    ];
    const ref = { kind: "precomputed" as const, logps: { chosen: new Float64Array(2), rejected: new Float64Array(2) } };
    const o = dpoObjective(fake, ref, {
      beta: 0.1,
      labelSmoothing: 0,
      losses: [{ name: "sigmoid", weight: 1 }],
      padId: 4,
    });
    const r = tidy(() => o.evaluate!(pairs, [0, 1], 1 / 2));
    assert.equal(r.tokens, 2 + 3 + 2 + 2 + 3 + 1 + 3 + 4); // TRL: attention_mask.sum() over chosen and rejected rows
    const side = (k: "chosen" | "rejected") =>
      pairs.flatMap((p) => completionTargets({ prompt: p.prompt, completion: p[k] }));
    const stats = (k: "chosen" | "rejected") => side(k).map(({ t, target, seq }) => ({ ...at(seq, t), target }));
    const m = r.means ?? {};
    // TRL: per_token_entropy[completion_mask].mean() over the concatenated chosen and rejected rows.
    assert.ok(
      Math.abs(m[METRICS.entropy] - mean([...stats("chosen"), ...stats("rejected")].map((s) => s.entropy))) < 1e-12,
    );
    // TRL: logits[chosen completion tokens].mean(-1).sum() / chosen completion tokens.
    assert.ok(Math.abs(m[METRICS.logitsChosen] - mean(stats("chosen").map((s) => s.mean))) < 1e-12);
    assert.ok(Math.abs(m[METRICS.logitsRejected] - mean(stats("rejected").map((s) => s.mean))) < 1e-12);
    // TRL: argmax accuracy over the chosen completion tokens only.
    assert.equal(m[METRICS.meanTokenAccuracy], mean(stats("chosen").map((s) => (s.argmax === s.target ? 1 : 0))));
  });
});

test("means are averaged over micro-batches (TRL's log()), sums add up; eval keys are eval_<name>", () => {
  withBackend(referenceBackend(), () => {
    const o = sftObjective(fake, 4);
    const one = (e: Example[]) => tidy(() => o.evaluate!(e, [], 1)).means![METRICS.entropy];
    const all = evaluateAll(EXAMPLES, o, 2, tidy); // micro-batches [0, 1] and [2]
    assert.ok(Math.abs(all.eval_entropy - (one(EXAMPLES.slice(0, 2)) + one(EXAMPLES.slice(2))) / 2) < 1e-12);
    assert.ok(Object.keys(all).every((k) => k.startsWith("eval_")));
    assert.equal(evalBase("eval_rewards/chosen"), "rewards/chosen");
    assert.equal(evalBase("eval/loss"), "loss"); // an old run's name still reads as the eval loss
    assert.equal(evalBase("loss"), null);
  });
});

test("collate records each row's width (prompt + completion), the count num_tokens adds", () => {
  const b = collate(EXAMPLES, 4);
  assert.deepEqual(b.widths, [6, 5, 4]);
});
