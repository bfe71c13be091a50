// Step-level beam search: ranking on a scripted proposer keeps the top K by accumulated score (finished beams
// compete, duplicates dropped, maxSteps ends the search); on a tiny random model K = 1 with the greedy candidate
// alone is greedy decoding, candidates are scored as scoreTokens scores them, and searchProblems reports accuracies.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { promptText } from "../data/format.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { scoreTokens } from "../model/score.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import {
  beamSearch,
  cutAfterAnswer,
  greedyDecode,
  LmStepProposer,
  searchProblems,
  selectBeams,
  type Beam,
  type LiveBeam,
  type StepCandidate,
  type StepProposer,
} from "./search.js";

/** Each beam proposes steps "a", "b", "c" with fixed scores; a step "c" ends the solution. */
class Scripted implements StepProposer {
  calls: LiveBeam[][] = [];
  constructor(private readonly scores: Record<string, number>) {}
  propose(live: LiveBeam[]): StepCandidate[][] {
    this.calls.push(live);
    return live.map(() =>
      ["a", "b", "c"].map((s) => ({ tokens: [s.charCodeAt(0)], text: s, done: s === "c", score: this.scores[s] })),
    );
  }
}

const beam = (text: string, score: number, done = false): Beam => ({
  tokens: [...text].map((c) => c.charCodeAt(0)),
  text,
  score,
  stepScores: [],
  done,
});

test("selectBeams: the K best by score, ties in pool order, duplicates dropped", () => {
  const pool = [beam("x", 1), beam("y", 3), beam("z", 2), beam("y", 3), beam("w", 2)];
  assert.deepEqual(
    selectBeams(pool, 3).map((b) => b.text),
    ["y", "z", "w"],
  );
  assert.deepEqual(
    selectBeams(pool, 10).map((b) => b.text),
    ["y", "z", "w", "x"],
  );
});

test("beamSearch: keeps the top K by accumulated score; finished beams compete; maxSteps ends it", () => {
  const p = new Scripted({ a: 1, b: 0.5, c: 1.8 });
  const [res] = beamSearch(1, p, { beams: 2, maxSteps: 3 });
  // round 0: a=1, b=.5, c=1.8 -> keep c (done), a
  // round 1: a expands to aa=2, ab=1.5, ac=2.8 -> pool c=1.8, aa, ab, ac -> keep ac (done), aa
  // round 2: aa expands to aaa=3, aab=2.5, aac=3.8 -> keep aac, aaa; maxSteps ends aaa
  assert.deepEqual(
    res.map((b) => b.text),
    ["aac", "aaa"],
  );
  assert.deepEqual(
    res.map((b) => b.score),
    [3.8, 3],
  );
  assert.ok(res.every((b) => b.done));
  assert.deepEqual(res[0].stepScores, [1, 1, 1.8]);
  assert.deepEqual(
    p.calls.map((c) => c.map((l) => l.beam.text)),
    [[""], ["a"], ["aa"]],
  );
  // a penalty on "a" keeps the finished "c" on top and stops once every kept beam is done
  const q = new Scripted({ a: -5, b: -1, c: 0 });
  const [r2] = beamSearch(1, q, { beams: 1, maxSteps: 10 });
  assert.deepEqual(
    r2.map((b) => b.text),
    ["c"],
  );
  assert.equal(q.calls.length, 1);
  // problems are searched side by side, one proposer call a round
  const both = beamSearch(2, new Scripted({ a: 1, b: 2, c: 0 }), { beams: 3, maxSteps: 2 });
  assert.deepEqual(
    both.map((bs) => bs.map((b) => b.text)),
    [
      ["bb", "ba", "ab"],
      ["bb", "ba", "ab"],
    ],
  );
  assert.throws(() => beamSearch(1, p, { beams: 0, maxSteps: 1 }), /beams must be/);
});

test("cutAfterAnswer keeps the text through the first #### line", () => {
  assert.equal(cutAfterAnswer("a\n#### 5\nmore\n#### 6"), "a\n#### 5\n");
  assert.equal(cutAfterAnswer("a\nb"), "a\nb");
  assert.equal(cutAfterAnswer("#### 5"), "#### 5");
});

const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.3,
  bos_token_id: 1,
  eos_token_id: 2,
};
const be = referenceBackend();
const policy = new Llama(CFG, { seed: 11, backend: be });
const ref = new Llama(CFG, { seed: 12, backend: be });
const tok = builtinTokenizer();
after(() => {
  policy.dispose();
  ref.dispose();
});
const PROBLEMS = [
  { id: "a", question: "Ann has 3 pens and buys 4. How many?", answer: "3 + 4 = <<3+4=7>>7\n#### 7" },
  { id: "b", question: "Bo has 6 cups and breaks 1. How many?", answer: "#### 5" },
  { id: "c", question: "Cy has 2.", answer: "#### 2" },
];
const prompts = PROBLEMS.map((p) => tok.encode(promptText(p.question)));
const BASE = { expand: 0, temperature: 0.8, score: "reward" as const, beta: 0.1, maxTokens: 40, seed: 3, batchSize: 8 };

test("K = 1 with the greedy candidate alone is greedy decoding", () => {
  for (const maxSteps of [1, 3, 8]) {
    const greedy = greedyDecode(policy, tok, prompts, { maxTokens: 40, maxSteps, batchSize: 8 });
    const res = beamSearch(prompts.length, new LmStepProposer(policy, ref, tok, prompts, BASE), { beams: 1, maxSteps });
    assert.deepEqual(
      res.map((bs) => cutAfterAnswer(bs[0].text)),
      greedy,
      `maxSteps ${maxSteps}`,
    );
  }
  assert.ok(
    greedyDecode(policy, tok, prompts, { maxTokens: 40, maxSteps: 8, batchSize: 8 }).some((t) => t.includes("\n")),
  );
});

test("LmStepProposer: greedy first, samples by seed, scores = beta * sum log(pi/pi_ref) of the new tokens", () => {
  const p = new LmStepProposer(policy, ref, tok, prompts, { ...BASE, expand: 3 });
  const start = { tokens: [], text: "", score: 0, stepScores: [], done: false };
  const live = [
    { problem: 0, rank: 0, beam: start },
    { problem: 2, rank: 0, beam: start },
  ];
  const cands = p.propose(live, 0);
  const again = p.propose(live, 0);
  assert.deepEqual(again, cands);
  const greedy = greedyDecode(policy, tok, [prompts[0]], { maxTokens: 40, maxSteps: 1, batchSize: 1 });
  assert.equal(cands[0][0].text, greedy[0]);
  assert.ok(cands[0].length >= 2, "temperature 0.8 gives other lines");
  for (const [i, l] of live.entries()) {
    for (const c of cands[i]) {
      const seq = [...prompts[l.problem], ...c.tokens];
      const [lp] = scoreTokens(policy, [seq]);
      const [rl] = scoreTokens(ref, [seq]);
      let want = 0;
      for (let t = lp.length - c.tokens.length; t < lp.length; t++) want += 0.1 * (lp[t] - rl[t]);
      assert.ok(Math.abs(c.score - want) < 1e-9);
      assert.equal(c.done, !c.text.endsWith("\n") || /^####/.test(c.text));
    }
  }
  const lpOnly = new LmStepProposer(policy, null, tok, prompts, { ...BASE, score: "logprob" }).propose(live, 0);
  assert.ok(lpOnly.every((cs) => cs.every((c) => c.score < 0)));
  assert.throws(() => new LmStepProposer(policy, null, tok, prompts, BASE), /needs a reference model/);
});

test("searchProblems: accuracies of greedy and beam search, verified per problem", () => {
  const r = searchProblems(policy, ref, tok, PROBLEMS, {
    ...BASE,
    expand: 2,
    beams: 2,
    maxSteps: 4,
    template: "plain",
    task: "arith",
  });
  assert.equal(r.n, 3);
  assert.equal(r.beams, 2);
  assert.equal(r.records.length, 3);
  assert.ok(r.greedy_accuracy >= 0 && r.greedy_accuracy <= 1 && r.beam_accuracy >= 0 && r.beam_accuracy <= 1);
  assert.equal(r.both_correct + r.beam_only, Math.round(r.beam_accuracy * 3));
  const k1 = searchProblems(policy, ref, tok, PROBLEMS, {
    ...BASE,
    beams: 1,
    maxSteps: 4,
    template: "plain",
    task: "arith",
    chunk: 2,
  });
  assert.deepEqual(
    k1.records.map((x) => x.beam),
    k1.records.map((x) => x.greedy),
  );
  assert.equal(k1.beam_accuracy, k1.greedy_accuracy);
});
