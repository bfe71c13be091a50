// The built-in task: deterministic by seed, train and test disjoint by construction, every solution verifies.

import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../core/errors.js";
import { checkStep } from "../verify/calculator.js";
import { verifySolution } from "../verify/record.js";
import {
  fnv1a,
  generateProblems,
  PRESETS,
  skeletonKey,
  splitOfKey,
  TEST_FRACTION,
  type TaskConfig,
  type TaskPart,
} from "./task.js";

test("same config and seed give the same problems; another seed gives others", () => {
  const a = generateProblems(PRESETS.medium, { n: 200, seed: 7, split: "train" });
  const b = generateProblems(PRESETS.medium, { n: 200, seed: 7, split: "train" });
  const c = generateProblems(PRESETS.medium, { n: 200, seed: 8, split: "train" });
  assert.deepEqual(a, b);
  assert.notDeepEqual(
    a.map((p) => p.id),
    c.map((p) => p.id),
  );
  // pinned output, so that any change to the generator shows
  assert.equal(fnv1a("hello"), 0x4f9f2cab);
  assert.deepEqual(a[0], {
    id: "arith-40df8aae",
    question:
      "Chloe has saved $25. A savings bonus makes her money grow to 8 times as much. A savings bonus makes her " +
      "money grow to 4 times as much. How much money does Chloe have now?",
    answer: "Her money grows to 25 * 8 = $<<25*8=200>>200.\nHer money grows to 200 * 4 = $<<200*4=800>>800.\n#### 800",
    final: "800",
    steps: 2,
    split: "train",
    scenario: "money",
    ops: ["*", "*"],
  });
  assert.equal(a.length, 200);
  assert.equal(new Set(a.map((p) => p.id)).size, 200, "no duplicates within a split");
});

test("train and test are disjoint whatever the seeds and sizes", () => {
  const testKeys = new Set<string>();
  const testQuestions = new Set<string>();
  for (const seed of [1, 2, 3]) {
    for (const p of generateProblems(PRESETS.easy, { n: 1500, seed, split: "test" })) {
      testKeys.add(p.id);
      testQuestions.add(p.question);
      assert.equal(p.split, "test");
    }
  }
  for (const seed of [1, 2, 3, 4]) {
    for (const p of generateProblems(PRESETS.easy, { n: 3000, seed, split: "train" })) {
      assert.ok(!testKeys.has(p.id), `train problem ${p.id} also in test`);
      assert.ok(!testQuestions.has(p.question));
    }
  }
  // the split is a function of the skeleton alone, and about TEST_FRACTION of skeletons are test
  let tests = 0;
  for (let i = 0; i < 10000; i++) if (splitOfKey(skeletonKey(i, [{ op: "+", n: 3 }])) === "test") tests++;
  assert.ok(Math.abs(tests / 10000 - TEST_FRACTION) < 0.02, `test share ${tests / 10000}`);
});

test("every generated solution is in GSM8K format and verifies step by step", () => {
  for (const preset of ["easy", "medium", "hard"] as const) {
    for (const p of generateProblems(PRESETS[preset], { n: 300, seed: 3, split: "train" })) {
      const lines = p.answer.split("\n");
      assert.equal(lines.length, p.steps + 1);
      assert.match(lines[lines.length - 1], /^#### \d+$/);
      for (const line of lines.slice(0, -1)) {
        assert.match(line, /<<[^<>]+=\d+>>\d+/, line);
        assert.equal(checkStep(line).ok, true, line);
      }
      const v = verifySolution(p.answer, p.final, "arith");
      assert.equal(v.correct, true);
      assert.equal(v.first_error_step, null);
      assert.ok(Number.isInteger(Number(p.final)) && Number(p.final) >= 1);
      assert.ok(p.question.endsWith("?"));
    }
  }
});

test("knobs: steps, ops and value ranges are respected", () => {
  const cfg: TaskConfig = {
    steps: [4, 4],
    ops: ["*", "/"],
    start: [10, 20],
    addend: [1, 5],
    factor: [2, 3],
    maxValue: 500,
    compound: 0,
  };
  for (const p of generateProblems(cfg, { n: 100, seed: 1, split: "train" })) {
    assert.equal(p.steps, 4);
    assert.ok(p.ops.every((o) => o === "*" || o === "/"));
    for (const m of p.answer.matchAll(/<<([^=]+)=(\d+)>>/g)) assert.ok(Number(m[2]) <= 500);
  }
  const mods = generateProblems({ ...PRESETS.hard, ops: ["+", "mod"] }, { n: 50, seed: 1, split: "test" });
  assert.ok(mods.some((p) => p.answer.includes("mod")));
  assert.ok(mods.some((p) => p.ops.includes("mod")));
});

test("a mixed task: equal interleaved shares, each part's knobs, labelled, deterministic, splits disjoint", () => {
  const easy4 = { ...PRESETS.easy, steps: [2, 4] as [number, number] };
  const parts: TaskPart[] = [
    { level: "easy", config: easy4 },
    { level: "medium", config: PRESETS.medium },
  ];
  const a = generateProblems(parts, { n: 400, seed: 5, split: "train" });
  assert.deepEqual(a, generateProblems(parts, { n: 400, seed: 5, split: "train" }));
  assert.deepEqual(
    a.map((p) => p.level),
    a.map((_, i) => (i % 2 === 0 ? "easy" : "medium")),
  );
  assert.equal(new Set(a.map((p) => p.id)).size, 400, "no skeleton twice across parts");
  for (const p of a) {
    const values = [...p.answer.matchAll(/<<[^=]+=(\d+)>>/g)].map((m) => Number(m[1]));
    if (p.level === "easy") {
      assert.ok(p.ops.every((o) => o === "+" || o === "-") && values.every((v) => v <= 100), p.answer);
      assert.ok(p.steps >= 2 && p.steps <= 4);
    } else {
      assert.ok(
        values.every((v) => v <= 1000),
        p.answer,
      );
    }
  }
  assert.ok(a.some((p) => p.level === "medium" && p.ops.some((o) => o === "*" || o === "/")));
  const test = new Set(generateProblems(parts, { n: 2000, seed: 5, split: "test" }).map((p) => p.id));
  for (const seed of [5, 6])
    for (const p of generateProblems(parts, { n: 4000, seed, split: "train" })) assert.ok(!test.has(p.id));
  // one part is the plain stream: same problems, no level field
  assert.deepEqual(
    generateProblems([{ level: "easy", config: easy4 }], { n: 50, seed: 5, split: "test" }),
    generateProblems(easy4, { n: 50, seed: 5, split: "test" }),
  );
  assert.throws(() => generateProblems([], { n: 1, seed: 1, split: "train" }), /at least one part/);
});

test("bad knobs and too-small problem spaces are InputErrors", () => {
  assert.throws(() => generateProblems({ ...PRESETS.easy, steps: [3, 2] }, { n: 1, seed: 1, split: "train" }), /steps/);
  assert.throws(
    () => generateProblems({ ...PRESETS.easy, ops: ["^" as never] }, { n: 1, seed: 1, split: "train" }),
    /ops/,
  );
  assert.throws(
    () => generateProblems({ ...PRESETS.easy, factor: [1, 3] }, { n: 1, seed: 1, split: "train" }),
    /factor/,
  );
  const tiny: TaskConfig = {
    steps: [1, 1],
    ops: ["+"],
    start: [1, 2],
    addend: [1, 2],
    factor: [2, 2],
    maxValue: 10,
    compound: 0,
  };
  assert.throws(
    () => generateProblems(tiny, { n: 50, seed: 1, split: "train" }),
    (e: unknown) => e instanceof InputError && /too few/.test(e.message),
  );
});
