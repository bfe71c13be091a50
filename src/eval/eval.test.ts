// Evaluation: the Wilson interval against published values, the pass@k estimator against the binomial formula,
// majority voting (equivalent spellings, ties, no answer), and evaluate() end to end on a scripted Completer whose
// completions make every metric exactly known.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { MathProblem } from "../data/load.js";
import { initModel } from "../model/presets.js";
import { createHttpCompleter } from "../sample/http.js";
import { LocalCompleter } from "../sample/local.js";
import { CompletionServer } from "../serve/server.js";
import type { Completer, Completion, CompletionRequest } from "../sample/types.js";
import { sampleSeed } from "../sample/records.js";
import { evaluate, referenceSteps } from "./eval.js";
import { majorityVote, passAtK, wilson } from "./stats.js";
import { mathAnswersEqual } from "../verify/math.js";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (|diff| ${Math.abs(a - b)} > ${tol})`);

test("wilson: Newcombe (1998) table values and the edges", () => {
  // Newcombe, "Two-sided confidence intervals for the single proportion", Stat. Med. 17: 81/263 -> 0.2553-0.3662,
  // and the usual textbook cases with n = 10.
  const cases: [number, number, number, number][] = [
    [81, 263, 0.2553, 0.3662],
    [0, 10, 0, 0.2775],
    [5, 10, 0.2366, 0.7634],
    [8, 10, 0.4902, 0.9433],
    [10, 10, 0.7225, 1],
  ];
  for (const [c, n, lo, hi] of cases) {
    const [l, h] = wilson(c, n);
    close(l, lo, 5e-5, `lower ${c}/${n}`);
    close(h, hi, 5e-5, `upper ${c}/${n}`);
  }
  // Full precision against the closed form evaluated in float64 (Python, z = 1.959963984540054).
  close(wilson(8, 10)[0], 0.49016247153664183, 1e-15, "8/10 lower");
  close(wilson(8, 10)[1], 0.9433178485456247, 1e-15, "8/10 upper");
  assert.deepEqual(wilson(0, 0), [0, 1]);
  assert.equal(wilson(0, 7)[0], 0);
  assert.equal(wilson(7, 7)[1], 1);
  const [l1, h1] = wilson(3, 4, 1.0); // another z
  close((l1 + h1) / 2, (0.75 + 1 / 8) / (1 + 1 / 4), 1e-15, "center with z = 1");
  assert.throws(() => wilson(5, 4), RangeError);
});

test("pass@k: 1 - C(n-c,k)/C(n,k), exact at the edges", () => {
  const binom = (n: number, k: number): number => (k < 0 || k > n ? 0 : k === 0 ? 1 : (binom(n - 1, k - 1) * n) / k);
  for (const [n, c, k] of [
    [10, 3, 1],
    [10, 3, 5],
    [5, 2, 3],
    [4, 1, 2],
    [20, 7, 10],
    [8, 8, 1],
  ]) {
    close(passAtK(n, c, k), 1 - binom(n - c, k) / binom(n, k), 1e-12, `pass@${k} n=${n} c=${c}`);
  }
  close(passAtK(10, 3, 1), 0.3, 1e-15, "pass@1 = c/n");
  close(passAtK(10, 3, 5), 11 / 12, 1e-15, "pass@5 of 3/10");
  assert.equal(passAtK(4, 0, 4), 0);
  assert.equal(passAtK(4, 1, 4), 1); // n - c < k: every subset holds the correct one
  assert.throws(() => passAtK(4, 1, 5), RangeError);
  assert.throws(() => passAtK(4, 5, 1), RangeError);
});

test("majority vote: equivalent spellings are one answer, ties go to the answer seen first, no answer does not vote", () => {
  assert.deepEqual(majorityVote(["1,000", "7", "1000", "7"]), { answer: "1,000", index: 0, votes: 2 });
  assert.deepEqual(majorityVote(["7", "1,000", "1000", "7"]), { answer: "7", index: 0, votes: 2 });
  assert.deepEqual(majorityVote(["7", "$1,000", "1000.00", "1000 dollars"]), { answer: "$1,000", index: 1, votes: 3 });
  assert.deepEqual(majorityVote([null, null, "5", null]), { answer: "5", index: 2, votes: 1 });
  assert.deepEqual(majorityVote([null, null]), { answer: null, index: -1, votes: 0 });
  assert.deepEqual(majorityVote([]), { answer: null, index: -1, votes: 0 });
  // Undecided comparisons (symbolic answers) do not merge; identical text still does.
  assert.deepEqual(majorityVote(["x+y", "y+x", "x+y"]), { answer: "x+y", index: 0, votes: 2 });
  // Three-way tie: the first-seen group.
  assert.deepEqual(majorityVote(["3", "1", "2", "2", "1", "3"]), { answer: "3", index: 0, votes: 2 });
});

test("referenceSteps: the steps field, else the lines before ####", () => {
  const p = (answer: string, extra: object = {}): MathProblem => ({ id: "x", question: "q", answer, ...extra });
  assert.equal(referenceSteps(p("a\nb\n\nc\n#### 4")), 3);
  assert.equal(referenceSteps(p("a\n#### 4", { steps: 5 })), 5);
  assert.equal(referenceSteps(p("a\n#### 4", { steps: [1, 2] })), 1); // not a count: ignored
  assert.equal(referenceSteps(p("#### 4")), 0);
  assert.equal(referenceSteps(p("42")), 1); // no "####": every line
});

/** Scripted completions by question: the greedy one (temperature 0) and sample j (found from its seed). */
class ScriptedCompleter implements Completer {
  readonly name = "scripted";
  readonly log: CompletionRequest[] = [];
  constructor(
    private readonly script: Record<string, { id: string; greedy: string; samples: string[] }>,
    private readonly seed: number,
  ) {}
  async complete(requests: CompletionRequest[]): Promise<Completion[][]> {
    return requests.map((r) => {
      this.log.push(r);
      const s = this.script[r.prompt.trimEnd()];
      if (r.params.temperature === 0) return [{ text: s.greedy, finishReason: "eos" }];
      const j = s.samples.findIndex((_, k) => sampleSeed(this.seed, s.id, k) === r.params.seed);
      assert.ok(j >= 0, `unexpected seed ${r.params.seed} for ${s.id}`);
      return [{ text: s.samples[j], finishReason: "eos" }];
    });
  }
}

const PROBLEMS: MathProblem[] = [
  { id: "a", question: "A?", answer: "2 + 3 = <<2+3=5>>5\n5 * 2 = <<5*2=10>>10\n#### 10", steps: 2, level: "easy" },
  { id: "b", question: "B?", answer: "10 * 100 = <<10*100=1000>>1000\n#### 1000", level: "hard" },
  { id: "c", question: "C?", answer: "4 * 3 = <<4*3=12>>12\n#### 12" },
  { id: "d", question: "D?", answer: "#### 12" },
];

const SCRIPT = {
  // greedy right, every step right; samples 2 of 4 right, maj tie 10 vs 9 -> 10 (first seen): right
  "A?": {
    id: "a",
    greedy: "2 + 3 = <<2+3=5>>5\n5 * 2 = <<5*2=10>>10\n#### 10",
    samples: ["#### 10", "#### 9", "#### 10", "#### 9"],
  },
  // greedy wrong (a wrong calculation and a wrong answer: 2 wrong steps); samples 2 of 4 right ("1,000" = "1000"),
  // maj tie 7 vs 1000 -> 7 (first seen): wrong
  "B?": {
    id: "b",
    greedy: "10 * 100 = <<10*100=1001>>1001\n#### 1001",
    samples: ["#### 7", "#### 1,000", "#### 1000", "#### 7"],
  },
  // greedy gives no answer (wrong; its one step undecided); samples 3 of 4 right, maj 12 (3 votes): right
  "C?": { id: "c", greedy: "no idea", samples: ["#### 12", "#### 12", "#### 12.0", "#### 5"] },
  // greedy undecided (a symbolic answer): not correct; samples give nothing
  "D?": { id: "d", greedy: "#### x+y", samples: ["", "", "", ""] },
};

test("evaluate on scripted completions: every metric exactly known", async () => {
  const fake = new ScriptedCompleter(SCRIPT, 3);
  const progress: [number, number][] = [];
  const { result, records } = await evaluate(fake, PROBLEMS, {
    maj: 4,
    passK: [4, 1, 2],
    seed: 3,
    batchSize: 3,
    onProgress: (d, t) => progress.push([d, t]),
  });
  const { seconds, pass_at_k, ...rest } = result;
  assert.ok(seconds >= 0);
  assert.deepEqual(Object.keys(pass_at_k!), ["1", "2", "4"]);
  close(pass_at_k!["1"], 7 / 16, 1e-15, "pass@1"); // (2 + 2 + 3 + 0) / 16
  close(pass_at_k!["2"], (5 / 6 + 5 / 6 + 1 + 0) / 4, 1e-15, "pass@2"); // 1 - C(2,2)/C(4,2) = 5/6 for a and b
  close(pass_at_k!["4"], 0.75, 1e-15, "pass@4");
  assert.deepEqual(rest, {
    accuracy: 0.25,
    n: 4,
    correct: 1,
    ci95: wilson(1, 4),
    maj_accuracy: 0.5,
    step_error_rate: 2 / 5, // decided greedy steps: a's 3 right, b's 2 wrong; c's and d's undecided
    by_steps: [
      { steps: 0, n: 1, accuracy: 0 },
      { steps: 1, n: 2, accuracy: 0 },
      { steps: 2, n: 1, accuracy: 1 },
    ],
    by_level: [
      { level: "easy", n: 1, accuracy: 1 },
      { level: "hard", n: 1, accuracy: 0 },
    ], // c and d have none
    undecided: 1,
    samples: 4,
  });
  // 4 greedy + 16 sampled completions, in chunks of 3
  assert.equal(fake.log.length, 20);
  assert.deepEqual(progress.at(-1), [20, 20]);
  assert.deepEqual(
    progress.map(([d]) => d),
    [3, 6, 9, 12, 15, 18, 20],
  );
  assert.ok(fake.log.every((r) => r.params.n === 1 && r.params.maxTokens === 256 && r.params.stop === undefined));
  assert.deepEqual(
    fake.log.slice(0, 4).map((r) => [r.prompt, r.params.temperature]),
    [
      ["A?\n", 0],
      ["B?\n", 0],
      ["C?\n", 0],
      ["D?\n", 0],
    ],
  );
  assert.ok(fake.log.slice(4).every((r) => r.params.temperature === 0.7));

  // Records: the greedy completions, verified; the problem's own "steps" count gives way to the verdict's steps.
  assert.equal(records.length, 4);
  assert.deepEqual(records[0], {
    id: "a",
    sample: 0,
    question: "A?",
    answer: PROBLEMS[0].answer,
    completion: SCRIPT["A?"].greedy,
    finish_reason: "eos",
    level: "easy",
    correct: true,
    pred: "10",
    steps: [
      { text: "2 + 3 = <<2+3=5>>5", ok: true },
      { text: "5 * 2 = <<5*2=10>>10", ok: true },
      { text: "#### 10", ok: true },
    ],
    first_error_step: null,
  });
  assert.deepEqual(
    records.map((r) => [r.correct, r.pred, r.first_error_step]),
    [
      [true, "10", null],
      [false, "1001", 0],
      [false, null, null],
      [null, "x+y", null],
    ],
  );
});

test("evaluate: greedy only by default, maj alone, and bad options", async () => {
  const fake = new ScriptedCompleter(SCRIPT, 0);
  const { result } = await evaluate(fake, PROBLEMS, { maxTokens: 9 });
  assert.equal(fake.log.length, 4);
  assert.equal(fake.log[0].params.maxTokens, 9);
  assert.equal(result.maj_accuracy, undefined);
  assert.equal(result.pass_at_k, undefined);
  assert.equal(result.samples, undefined);
  assert.equal(result.accuracy, 0.25);

  // maj over the first 2 samples only, while pass@4 takes all 4: a: 10 vs 9 tie -> 10 (right); b: 7 vs 1,000 -> 7;
  // c: 12 twice (right); d: none
  const both = await evaluate(new ScriptedCompleter(SCRIPT, 0), PROBLEMS, { maj: 2, passK: [4] });
  assert.equal(both.result.maj_accuracy, 0.5);
  assert.deepEqual(both.result.pass_at_k, { "4": 0.75 });
  assert.equal(both.result.samples, 4);

  await assert.rejects(evaluate(fake, [], {}), /no problems/);
  await assert.rejects(evaluate(fake, PROBLEMS, { maj: 0 }), /maj must be an integer >= 1/);
  await assert.rejects(evaluate(fake, PROBLEMS, { passK: [1.5] }), /pass@k's k must be an integer >= 1/);
  await assert.rejects(evaluate(fake, PROBLEMS, { template: "chat" }), /chat template needs the model's tokenizer/);
});

test("evaluate through an OpenAI-compatible endpoint (stepwise serve) gives the local engine's greedy results", async () => {
  const { model, tokenizer } = initModel("tiny", { seed: 5 });
  const problems: MathProblem[] = PROBLEMS.map((p) => ({ ...p, question: `${p.question} Ann has 3 pens and buys 4.` }));
  const server = new CompletionServer(model, tokenizer!, { modelName: "tiny" });
  const url = await server.listen(0);
  try {
    const local = await evaluate(new LocalCompleter(model, tokenizer!), problems, { maxTokens: 12 });
    const remote = await evaluate(createHttpCompleter(url, { concurrency: 2 }), problems, {
      maxTokens: 12,
      maj: 2,
      passK: [2],
    });
    assert.deepEqual(remote.records, local.records);
    const { seconds: _a, ...l } = local.result;
    const { seconds: _b, maj_accuracy, pass_at_k, samples, ...r } = remote.result;
    assert.deepEqual(r, l);
    assert.equal(samples, 2);
    assert.ok(maj_accuracy! >= 0 && pass_at_k!["2"] >= 0);
  } finally {
    await server.close();
    model.dispose();
  }
});

test("maj@k for MATH answers groups by the MATH checker: a set in any order is one answer", () => {
  const answers = ["\\{1,2\\}", "5", "\\{2,1\\}", "5", "\\{1, 2\\}"];
  assert.equal(majorityVote(answers).index, 0); // answersEqual compares non-numbers as MATH answers
  assert.equal(majorityVote(answers, mathAnswersEqual).index, 0);
});
