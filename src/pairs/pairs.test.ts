// Pair builders on hand-made verified samples (completions written by hand, verdicts by the real verifier): every
// kind gives exactly the expected pairs in both formats, skips are counted with their reasons, and what `stepwise
// dpo` reads back from the files is the prompt and the completions meant (EOS only after whole solutions).

import { writeJsonlAtomic } from "../core/atomic.js";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promptText } from "../data/format.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import type { Completer, Completion, CompletionRequest } from "../sample/types.js";
import { readPairsFile } from "../train/data.js";
import { verifyMathRecord } from "../verify/index.js";
import {
  buildPairs,
  correctedStep,
  formatPair,
  pairsPerProblem,
  pickPairs,
  readVerified,
  Tally,
  type BuildOptions,
  type PairKind,
} from "./index.js";

const Q1 = "A is 2 plus 3. B is A times 4. C is B minus 6. What is C?";
const REF1 = "A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = <<5*4=20>>20.\nC = 20 - 6 = <<20-6=14>>14.\n#### 14";
const ALT1 = "A = 2 + 3 = <<2+3=5>>5.\nB = 4 * 5 = <<4*5=20>>20.\nC = 20 - 6 = <<20-6=14>>14.\n#### 14";
const W_CALC1 = "A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = <<5*4=24>>24.\nC = 24 - 6 = <<24-6=18>>18.\n#### 18"; // step 1
const W_CALC0 = "A = 2 + 3 = <<2+3=6>>6.\nB = 6 * 4 = <<6*4=24>>24.\nC = 24 - 6 = <<24-6=18>>18.\n#### 18"; // step 0
const W_LOGIC = "A = 2 + 3 = <<2+3=5>>5.\nB = 5 + 4 = <<5+4=9>>9.\nC = 9 - 6 = <<9-6=3>>3.\n#### 3"; // no calculator error
const W_CALC2 = "A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = 20 so B = <<5*4=20>>20.\nC = 20 - 6 = <<20-6=15>>15.\n#### 15"; // step 2
const Q2 = "X is 6 halved. Y is X plus 7. What is Y?";
const REF2 = "X = 6 / 2 = <<6/2=3>>3.\nY = 3 + 7 = <<3+7=10>>10.\n#### 10";
const W2 = "X = 6 / 2 = <<6/2=3>>3.\nY = 3 * 7 = <<3*7=21>>21.\n#### 21";

type Rec = Record<string, unknown>;

/** A sample record as `stepwise sample` writes it, verified as `stepwise verify --task gsm8k` does. */
function verified(
  id: string,
  question: string,
  answer: string,
  sample: number,
  completion: string,
  extra: Rec = {},
): Rec {
  return verifyMathRecord({ id, sample, question, answer, completion, finish_reason: "eos", ...extra }, "gsm8k");
}

async function build(records: Rec[], o: Partial<BuildOptions> & { kind: PairKind }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-pairs-"));
  const file = path.join(dir, "verified.jsonl");
  await writeJsonlAtomic(file, records);
  const tally = new Tally();
  const { problems, records: n } = await readVerified(file, false, tally);
  const built = await buildPairs(
    problems,
    {
      completer: null,
      rollouts: 2,
      temperature: 1,
      maxTokens: 64,
      seed: 0,
      task: "gsm8k",
      style: "gsm8k",
      promptOf: (q) => promptText(q),
      maxPairsPerProblem: 4,
      batchSize: 4,
      balanceLengths: false,
      chosen: "sound",
      rejected: "full",
      ...o,
    },
    tally,
  );
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...built, problems, records: n, skipped: tally.skipped };
}

const trl = (p: Parameters<typeof formatPair>[0]) => formatPair(p, "trl", (q) => promptText(q));
const sdpo = (p: Parameters<typeof formatPair>[0]) => formatPair(p, "stepdpo", (q) => promptText(q));

test("pickPairs: every side used once before any twice; balance takes the closest lengths first", () => {
  const c = ["c".repeat(60), "c".repeat(30)];
  const r = ["r".repeat(32), "r".repeat(90)];
  assert.deepEqual(pickPairs(c, r, 4, false), [
    [0, 0],
    [1, 1],
    [0, 1],
    [1, 0],
  ]);
  assert.deepEqual(pickPairs(c, r, 2, true), [
    [1, 0],
    [0, 1],
  ]);
  assert.deepEqual(pickPairs(c, r, 9, false).length, 4, "at most every combination once");
  assert.deepEqual(pickPairs(["a", "b", "c"], ["x"], 2, false), [
    [0, 0],
    [1, 0],
  ]);
});

test("outcome pairs: correct vs incorrect per problem, duplicates once, capped; both formats exactly", async () => {
  const recs = [
    verified("p1", Q1, REF1, 0, REF1),
    verified("p1", Q1, REF1, 1, W_CALC1),
    verified("p1", Q1, REF1, 2, REF1 + "\n"), // the same completion: counted once
    verified("p1", Q1, REF1, 3, W_LOGIC),
    verified("p1", Q1, REF1, 4, ALT1),
    { ...verified("p1", Q1, REF1, 5, "C is 14-ish"), correct: null },
    verified("p2", Q2, REF2, 0, REF2),
    verified("p3", Q2, REF2, 0, W2),
  ];
  const got = await build(recs, { kind: "outcome", maxPairsPerProblem: 3 });
  assert.equal(got.records, 8);
  assert.deepEqual(got.pairs.map(trl), [
    { prompt: `${Q1}\n`, chosen: REF1, rejected: W_CALC1, id: "p1", kind: "outcome" },
    { prompt: `${Q1}\n`, chosen: ALT1, rejected: W_LOGIC, id: "p1", kind: "outcome" },
    { prompt: `${Q1}\n`, chosen: REF1, rejected: W_LOGIC, id: "p1", kind: "outcome" },
  ]);
  assert.deepEqual(sdpo(got.pairs[1]), {
    prompt: Q1,
    initial_reason_steps: "",
    chosen: ALT1,
    rejected: W_LOGIC,
    full_chosen: ALT1,
    full_rejected: W_LOGIC,
    answer: "14",
    id: "p1",
    kind: "outcome",
  });
  assert.deepEqual(got.skipped, {
    "duplicate completions": 1,
    "undecided samples (correct: null)": 1,
    "problems without an incorrect sample": 1,
    "problems without a correct sample": 1,
  });
  assert.deepEqual(pairsPerProblem(got.problems, got.pairs), { mean: 1, max: 3, histogram: { 0: 2, 3: 1 } });
});

test("scdpo pairs: reference continuation after the cut vs a wrong step-controlled one, prefix in the prompt", async () => {
  const cut1 = "A = 2 + 3 = <<2+3=5>>5.\n";
  const cut2 = cut1 + "B = 5 * 4 = <<5*4=20>>20.\n";
  const rest1 = "B = 5 * 4 = <<5*4=20>>20.\nC = 20 - 6 = <<20-6=14>>14.\n#### 14";
  const rest2 = "C = 20 - 6 = <<20-6=14>>14.\n#### 14";
  const bad1a = "B = 5 * 4 = <<5*4=25>>25.\nC = 25 - 6 = <<25-6=19>>19.\n#### 19";
  const bad1b = "B = 5 + 4 = <<5+4=9>>9.\n#### 9";
  const bad2 = "C = 20 + 6 = <<20+6=26>>26.\n#### 26";
  const sc = (sample: number, k: number, prefix: string, cont: string) =>
    verified("p1", Q1, REF1, sample, prefix + cont, { cut: k, prefix });
  const recs = [
    sc(0, 1, cut1, bad1a),
    sc(1, 1, cut1, rest1), // reached the answer
    sc(2, 2, cut2, bad2),
    sc(3, 1, cut1, bad1a), // the same pair again
    verified("p1", Q1, REF1, 4, W_LOGIC), // not step-controlled
    sc(5, 1, cut1, bad1b),
    verified("p1", Q1, REF1, 6, cut1 + bad1b, { cut: 1, prefix: "Something else\n" }), // not its prefix
  ];
  const got = await build(recs, { kind: "scdpo", maxPairsPerProblem: 2 });
  assert.deepEqual(got.pairs.map(trl), [
    { prompt: `${Q1}\n${cut1}`, chosen: rest1, rejected: bad1a, id: "p1", kind: "scdpo" },
    { prompt: `${Q1}\n${cut2}`, chosen: rest2, rejected: bad2, id: "p1", kind: "scdpo" },
  ]);
  assert.deepEqual(sdpo(got.pairs[1]), {
    prompt: Q1,
    initial_reason_steps: cut2,
    chosen: rest2,
    rejected: bad2,
    full_chosen: REF1,
    full_rejected: cut2 + bad2,
    answer: "14",
    id: "p1",
    kind: "scdpo",
  });
  assert.deepEqual(got.skipped, {
    "step-controlled samples that reached the right answer": 1,
    "duplicate pairs": 1,
    "samples that are not step-controlled (no cut and prefix)": 1,
    "samples whose completion does not start with their prefix": 1,
    "pairs over --max-pairs-per-problem": 1,
  });
});

const P1_RECORDS = () => [
  verified("p1", Q1, REF1, 0, REF1),
  verified("p1", Q1, REF1, 1, ALT1),
  verified("p1", Q1, REF1, 2, W_CALC1),
  verified("p1", Q1, REF1, 3, W_CALC0),
  verified("p1", Q1, REF1, 4, W_LOGIC),
  verified("p1", Q1, REF1, 5, W_CALC2),
  verified("p2", Q2, REF2, 0, W2),
];

test("stepdpo pairs without a model: calculator-located steps, chosen from correct samples sharing the prefix", async () => {
  const got = await build(P1_RECORDS(), { kind: "stepdpo" });
  const A = "A = 2 + 3 = <<2+3=5>>5.\n";
  assert.deepEqual(got.pairs.map(trl), [
    {
      prompt: `${Q1}\n${A}`,
      chosen: "B = 5 * 4 = <<5*4=20>>20.\n",
      rejected: "B = 5 * 4 = <<5*4=24>>24.\n",
      id: "p1",
      kind: "stepdpo",
    },
    { prompt: `${Q1}\n`, chosen: A, rejected: "A = 2 + 3 = <<2+3=6>>6.\n", id: "p1", kind: "stepdpo" },
  ]);
  assert.deepEqual(got.pairs.map(sdpo), [
    {
      prompt: Q1,
      initial_reason_steps: A,
      chosen: "B = 5 * 4 = <<5*4=20>>20.\n",
      rejected: "B = 5 * 4 = <<5*4=24>>24.\n",
      full_chosen: REF1,
      full_rejected: W_CALC1,
      answer: "14",
      id: "p1",
      kind: "stepdpo",
    },
    {
      prompt: Q1,
      initial_reason_steps: "",
      chosen: A,
      rejected: "A = 2 + 3 = <<2+3=6>>6.\n",
      full_chosen: REF1,
      full_rejected: W_CALC0,
      answer: "14",
      id: "p1",
      kind: "stepdpo",
    },
  ]);
  assert.deepEqual(got.stepdpo, {
    located: { calculator: 3, rollouts: 0 },
    chosen_from: { samples: 2, rollouts: 0, corrected: 0 },
  });
  assert.deepEqual(got.skipped, {
    "incorrect samples with no step the calculator flags (locating one needs rollouts: --model or --endpoint)": 2,
    "incorrect samples with no correct sample sharing the prefix before the wrong step (rollouts need --model or --endpoint)": 1,
  });
});

test("stepdpo pairs: spaces before the wrong step go to both sides, never at the end of the prompt", async () => {
  const wrong = "X = 6 / 2 = <<6/2=3>>3.\n Y = 3 + 7 = <<3+7=11>>11.\n#### 11";
  const right = "X = 6 / 2 = <<6/2=3>>3.\nY = 3 + 7 = <<3+7=10>>10.\n#### 10";
  const got = await build([verified("p2", Q2, REF2, 0, wrong), verified("p2", Q2, REF2, 1, right)], {
    kind: "stepdpo",
  });
  assert.deepEqual(got.pairs.map(trl), [
    {
      prompt: `${Q2}\nX = 6 / 2 = <<6/2=3>>3.\n`,
      chosen: " Y = 3 + 7 = <<3+7=10>>10.\n",
      rejected: " Y = 3 + 7 = <<3+7=11>>11.\n",
      id: "p2",
      kind: "stepdpo",
    },
  ]);
});

/** Rollouts by table: the continuations listed for (question, prefix), or one wrong answer. */
class TableCompleter implements Completer {
  readonly name = "table";
  readonly prompts: string[] = [];
  constructor(private readonly table: Map<string, string[]>) {}
  async complete(requests: CompletionRequest[]): Promise<Completion[][]> {
    return requests.map((r) => {
      this.prompts.push(r.prompt);
      const texts = this.table.get(r.prompt) ?? ["#### 0"];
      return Array.from(
        { length: r.params.n },
        (_, j): Completion => ({ text: texts[j % texts.length], finishReason: "eos" }),
      );
    });
  }
}

test("stepdpo pairs with rollouts: the earliest step after which no rollout reaches the answer; chosen from rollouts", async () => {
  const A = "A = 2 + 3 = <<2+3=5>>5.\n";
  const X = "X = 6 / 2 = <<6/2=3>>3.\n";
  const p1 = promptText(Q1);
  const p2 = promptText(Q2);
  const table = new Map<string, string[]>([
    [p1, [REF1]],
    [p1 + A, ["B = 5 * 4 = <<5*4=20>>20.\nC = 20 - 6 = <<20-6=14>>14.\n#### 14"]],
    [p1 + "A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = 20 so B = <<5*4=20>>20.\n", ["C = 20 - 6 = <<20-6=14>>14.\n#### 14"]],
    [p2, [REF2]],
    [p2 + X, ["Y = 3 * 7 = <<3*7=21>>21.\n#### 21", "Y = 3 + 7 = <<3+7=10>>10.\n#### 10"]],
  ]);
  const completer = new TableCompleter(table);
  const got = await build(P1_RECORDS(), { kind: "stepdpo", completer });
  assert.deepEqual(got.pairs.map(trl), [
    {
      prompt: `${p1}${A}`,
      chosen: "B = 5 * 4 = <<5*4=20>>20.\n",
      rejected: "B = 5 * 4 = <<5*4=24>>24.\n",
      id: "p1",
      kind: "stepdpo",
    },
    { prompt: p1, chosen: A, rejected: "A = 2 + 3 = <<2+3=6>>6.\n", id: "p1", kind: "stepdpo" },
    // W_LOGIC: rollouts reach 14 from "" and from step A, none after "B = 5 + 4 ...": step 1 is wrong
    {
      prompt: `${p1}${A}`,
      chosen: "B = 5 * 4 = <<5*4=20>>20.\n",
      rejected: "B = 5 + 4 = <<5+4=9>>9.\n",
      id: "p1",
      kind: "stepdpo",
    },
    // W_CALC2: the calculator flags step 2; no sample shares the prefix, a fresh rollout gives the chosen step
    {
      prompt: `${p1}A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = 20 so B = <<5*4=20>>20.\n`,
      chosen: "C = 20 - 6 = <<20-6=14>>14.\n",
      rejected: "C = 20 - 6 = <<20-6=15>>15.\n",
      id: "p1",
      kind: "stepdpo",
    },
    // W2: no correct sample at all; a rollout from X reaches 10, none from after "Y = 3 * 7"
    {
      prompt: `${p2}${X}`,
      chosen: "Y = 3 + 7 = <<3+7=10>>10.\n",
      rejected: "Y = 3 * 7 = <<3*7=21>>21.\n",
      id: "p2",
      kind: "stepdpo",
    },
  ]);
  assert.deepEqual(got.stepdpo, {
    located: { calculator: 3, rollouts: 2 },
    chosen_from: { samples: 3, rollouts: 2, corrected: 0 },
  });
  assert.deepEqual(got.skipped, {});
  assert.ok(completer.prompts.every((p) => p.startsWith(p1) || p.startsWith(p2)));
  // Capped: the pairs of p1 stop at the cap, in sample order, and its other samples cost nothing.
  const capped = await build(P1_RECORDS(), {
    kind: "stepdpo",
    completer: new TableCompleter(table),
    maxPairsPerProblem: 1,
  });
  assert.deepEqual(
    capped.pairs.map((p) => [p.id, p.rejected]),
    [
      ["p1", "B = 5 * 4 = <<5*4=24>>24.\n"],
      ["p2", "Y = 3 * 7 = <<3*7=21>>21.\n"],
    ],
  );
  assert.deepEqual(capped.skipped, {
    "incorrect samples not needed (their problem has --max-pairs-per-problem pairs)": 3,
  });
  assert.deepEqual(capped.stepdpo!.located, { calculator: 1, rollouts: 1 }, "no rollouts past the cap");
});

test("what stepwise dpo reads back: TRL prompts as written, Step-DPO prompts rebuilt; EOS only after whole solutions", async () => {
  const tok = builtinTokenizer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-pairs-rt-"));
  const outcome = (await build(P1_RECORDS(), { kind: "outcome", maxPairsPerProblem: 1 })).pairs;
  const steps = (await build(P1_RECORDS(), { kind: "stepdpo" })).pairs;
  const opts = { tokenizer: tok, template: "plain" as const, maxLength: 1024, skipBad: false };
  for (const format of ["trl", "stepdpo"] as const) {
    const file = path.join(dir, `${format}.jsonl`);
    await writeJsonlAtomic(
      file,
      steps.map((p) => formatPair(p, format, (q) => promptText(q))),
    );
    const back = await readPairsFile(file, opts);
    assert.equal(back.stepLevel, steps.length, format);
    back.pairs.forEach((tp, i) => {
      assert.deepEqual(tp.prompt, tok.encode(promptText(Q1) + steps[i].prefix), format);
      assert.equal(tok.decode(tp.chosen), steps[i].chosen);
      assert.notEqual(tp.chosen.at(-1), tok.eosId);
    });
  }
  const file = path.join(dir, "outcome.jsonl");
  await writeJsonlAtomic(
    file,
    outcome.map((p) => formatPair(p, "trl", (q) => promptText(q))),
  );
  const back = await readPairsFile(file, opts);
  assert.equal(back.stepLevel, 0);
  assert.equal(back.pairs[0].chosen.at(-1), tok.eosId);
  assert.deepEqual(back.pairs[0].prompt, tok.encode(promptText(Q1)));
  fs.rmSync(dir, { recursive: true, force: true });
});

// A lucky guess: the right final answer after a wrong step (24 - 6 written as 14).
const LUCKY1 = "A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = <<5*4=24>>24.\nC = 24 - 6 = <<24-6=14>>14.\n#### 14";

test("outcome pairs: chosen sides must be step-sound unless --chosen answer", async () => {
  const recs = [
    verified("p1", Q1, REF1, 0, LUCKY1),
    verified("p1", Q1, REF1, 1, W_LOGIC),
    verified("p1", Q1, REF1, 2, REF1),
  ];
  const sound = await build(recs, { kind: "outcome" });
  assert.deepEqual(
    sound.pairs.map((p) => p.chosen),
    [REF1],
  );
  assert.equal(sound.skipped["correct samples with a wrong step (not chosen: pairs.chosen sound)"], 1);
  const answer = await build(recs, { kind: "outcome", chosen: "answer" });
  assert.deepEqual(answer.pairs.map((p) => p.chosen).sort(), [LUCKY1, REF1].sort());
});

test("rejected first_error: cut after the first wrong step with no EOS; whole where no step is located", async () => {
  const recs = [
    verified("p1", Q1, REF1, 0, REF1),
    verified("p1", Q1, REF1, 1, W_CALC1),
    verified("p1", Q1, REF1, 2, W_LOGIC),
    verified("p1", Q1, REF1, 3, W_CALC0, { finish_reason: "length" }),
  ];
  const got = await build(recs, { kind: "outcome", rejected: "first_error" });
  const cut1 = "A = 2 + 3 = <<2+3=5>>5.\nB = 5 * 4 = <<5*4=24>>24.\n";
  assert.deepEqual(
    got.pairs.map((p) => [p.rejected, p.rejectedEos]),
    [
      [cut1, false],
      [W_LOGIC, true],
      ["A = 2 + 3 = <<2+3=6>>6.\n", false],
    ],
  );
  assert.equal(got.pairs[0].fullRejected, W_CALC1);
  assert.deepEqual(trl(got.pairs[0]), {
    prompt: `${Q1}\n`,
    chosen: REF1,
    rejected: cut1,
    id: "p1",
    kind: "outcome",
    rejected_eos: false,
  });
  // full: a sample cut off by the token limit never produced an EOS, so its rejected side gets none
  const full = await build(recs, { kind: "outcome" });
  assert.deepEqual(
    full.pairs.map((p) => p.rejectedEos),
    [true, true, false],
  );
  // read back: the cut rejected side ends without EOS, the chosen one with it
  const tok = builtinTokenizer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-pairs-cut-"));
  const file = path.join(dir, "p.jsonl");
  await writeJsonlAtomic(file, got.pairs.map(trl));
  const back = await readPairsFile(file, { tokenizer: tok, template: "plain", maxLength: 1024, skipBad: false });
  assert.equal(tok.decode(back.pairs[0].rejected), cut1);
  assert.notEqual(back.pairs[0].rejected.at(-1), tok.eosId);
  assert.equal(back.pairs[0].chosen.at(-1), tok.eosId);
  assert.equal(back.pairs[1].rejected.at(-1), tok.eosId);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("stepdpo --stepdpo-chosen corrected: the wrong line with its arithmetic fixed (a minimal pair)", async () => {
  assert.equal(correctedStep("B = 5 * 4 = <<5*4=24>>24."), "B = 5 * 4 = <<5*4=20>>20.");
  assert.equal(correctedStep("He pays 3 * 12 = $<<3*12=38>>38 in all."), "He pays 3 * 12 = $<<3*12=36>>36 in all.");
  assert.equal(correctedStep("B = 5 * 4 = <<5*4=20>>20."), null, "nothing to correct");
  assert.equal(correctedStep("B = 5 * 4 = <<5*3=15>>15."), null, "an operand copied wrong is not an arithmetic slip");
  const recs = [verified("p1", Q1, REF1, 0, W_CALC1), verified("p1", Q1, REF1, 1, W_LOGIC)];
  const got = await build(recs, { kind: "stepdpo", chosenStep: "corrected" });
  assert.deepEqual(got.pairs.map(trl), [
    {
      prompt: `${Q1}\nA = 2 + 3 = <<2+3=5>>5.\n`,
      chosen: "B = 5 * 4 = <<5*4=20>>20.\n",
      rejected: "B = 5 * 4 = <<5*4=24>>24.\n",
      id: "p1",
      kind: "stepdpo",
    },
  ]);
  assert.deepEqual(got.stepdpo!.chosen_from, { samples: 0, rollouts: 0, corrected: 1 });
  // rollout (the default) finds no correct sample sharing the prefix here, so no pair without a model
  assert.equal((await build(recs, { kind: "stepdpo" })).pairs.length, 0);
});
