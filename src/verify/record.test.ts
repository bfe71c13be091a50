// Step splitting and whole-solution verdicts (the verified record of DESIGN.md).

import assert from "node:assert/strict";
import { test } from "node:test";
import { verifyMathRecord } from "./index.js";
import { verifySolution } from "./record.js";
import { splitSteps } from "./steps.js";

test("line-per-step splitting keeps exact offsets and skips blank lines", () => {
  const s = "a = 1\n\n  b = 2  \r\n#### 3\n";
  const spans = splitSteps(s);
  assert.deepEqual(
    spans.map((x) => x.text),
    ["a = 1", "b = 2", "#### 3"],
  );
  for (const sp of spans) assert.equal(s.slice(sp.start, sp.end), sp.text);
});

test("Step k: blocks, multi-line, with the #### line split out", () => {
  const s = "Let's think.\nStep 1: Add 2 and 3.\n2 + 3 = 5\nStep 2: Double it: 5 * 2 = 10.\n#### 10";
  const spans = splitSteps(s);
  assert.deepEqual(
    spans.map((x) => x.text),
    ["Let's think.", "Step 1: Add 2 and 3.\n2 + 3 = 5", "Step 2: Double it: 5 * 2 = 10.", "#### 10"],
  );
  for (const sp of spans) assert.equal(s.slice(sp.start, sp.end), sp.text);
  assert.deepEqual(
    splitSteps("**Step 1:** x\n## Step 2: y").map((x) => x.text),
    ["**Step 1:** x", "## Step 2: y"],
  );
});

test("a correct GSM8K-style solution", () => {
  const v = verifySolution(
    "She has 3 + 4 = <<3+4=7>>7 apples.\nThen 7 * 2 = <<7*2=14>>14.\n#### 14",
    "#### 14",
    "gsm8k",
  );
  assert.deepEqual(v, {
    correct: true,
    pred: "14",
    first_error_step: null,
    steps: [
      { text: "She has 3 + 4 = <<3+4=7>>7 apples.", ok: true },
      { text: "Then 7 * 2 = <<7*2=14>>14.", ok: true },
      { text: "#### 14", ok: true },
    ],
  });
});

test("an arithmetic slip is the first error; the wrong answer line is wrong too", () => {
  const v = verifySolution("3 + 4 = <<3+4=8>>8\n8 * 2 = <<8*2=16>>16\n#### 16", "14", "arith");
  assert.equal(v.correct, false);
  assert.equal(v.pred, "16");
  assert.deepEqual(
    v.steps.map((s) => s.ok),
    [false, true, false],
  );
  assert.equal(v.first_error_step, 0);
});

test("right arithmetic, wrong reasoning: only the answer line is wrong", () => {
  const v = verifySolution("3 + 4 = <<3+4=7>>7\n7 + 2 = <<7+2=9>>9\n#### 9", "14", "arith");
  assert.deepEqual(
    v.steps.map((s) => s.ok),
    [true, true, false],
  );
  assert.equal(v.first_error_step, 2);
});

test("no answer is incorrect; an answer that cannot be compared is undecided", () => {
  assert.equal(verifySolution("3 + 4 = 7", "7", "gsm8k").correct, false);
  assert.equal(verifySolution("3 + 4 = 7", "7", "gsm8k").pred, null);
  const u = verifySolution("So the answer is \\boxed{\\int_0^1 x\\,dx}", "0.5", "math"); // integrals are not evaluated
  assert.equal(u.correct, null);
  assert.deepEqual(
    u.steps.map((s) => s.ok),
    [null],
  );
});

test("math task: \\boxed answers in Step k: format", () => {
  const c = "Step 1: The area is 2 * 3 = 6.\nStep 2: Half of it is \\frac{6}{2} = 3, so the answer is \\boxed{3}.";
  const v = verifySolution(c, "The result is $\\boxed{3}$.", "math");
  assert.equal(v.correct, true);
  assert.equal(v.pred, "3");
  assert.deepEqual(
    v.steps.map((s) => s.ok),
    [true, true],
  );
});

test("verifyMathRecord keeps the record's fields and names the line of a bad record", () => {
  const r = verifyMathRecord({ id: "a", sample: 2, completion: "#### 5", answer: "5" }, "gsm8k");
  assert.equal(r.id, "a");
  assert.equal(r.sample, 2);
  assert.equal(r.correct, true);
  assert.throws(
    () => verifyMathRecord({ answer: "5" }, "gsm8k", "in.jsonl:7"),
    /in\.jsonl:7: missing field "completion"/,
  );
});
