import assert from "node:assert/strict";
import { test } from "node:test";
import { checkStep } from "../verify/calculator.js";
import { extractHashAnswer } from "../verify/answer.js";
import { noisyAnswer, validateNoise, type NoiseConfig } from "./noise.js";
import { PRESETS, generateProblems } from "./task.js";

const borrow: NoiseConfig = { kind: "borrow", rate: 1, answer: "recompute" };

test("noise: borrow forgets the borrow and recomputes what follows", () => {
  const a = "She has 52 - 17 = <<52-17=35>>35 left.\nThen 35 + 8 = <<35+8=43>>43.\n#### 43";
  assert.equal(
    noisyAnswer(a, "x", borrow, 1),
    "She has 52 - 17 = <<52-17=45>>45 left.\nThen 45 + 8 = <<45+8=53>>53.\n#### 53",
  );
  // keep: the wrong line alone, the rest and the final answer stay right
  assert.equal(
    noisyAnswer(a, "x", { ...borrow, answer: "keep" }, 1),
    "She has 52 - 17 = <<52-17=45>>45 left.\nThen 35 + 8 = <<35+8=43>>43.\n#### 43",
  );
  // no borrow needed: unchanged
  const b = "58 - 17 = <<58-17=41>>41 left.\n#### 41";
  assert.equal(noisyAnswer(b, "x", borrow, 1), b);
  // money and compound moves: "3 * 12" is not the running value, the next line is
  const c =
    "He has 40 - 9 = $<<40-9=31>>31.\nThree packs cost 3 * 12 = $<<3*12=36>>36.\nSo 31 - 36 is not it; 31 + 36 = $<<31+36=67>>67.\n#### 67";
  assert.equal(
    noisyAnswer(c, "x", borrow, 1),
    "He has 40 - 9 = $<<40-9=41>>41.\nThree packs cost 3 * 12 = $<<3*12=36>>36.\nSo 31 - 36 is not it; 41 + 36 = $<<41+36=77>>77.\n#### 77",
  );
});

test("noise: on the built-in task, exactly the slipped line is wrong (recompute), or the answer stays right (keep)", () => {
  const problems = generateProblems(PRESETS.medium, { seed: 3, split: "train", n: 400 });
  for (const kind of ["borrow", "slip"] as const) {
    for (const answer of ["recompute", "keep"] as const) {
      let changed = 0;
      for (const p of problems) {
        const noisy = noisyAnswer(p.answer, p.id, { kind, rate: kind === "borrow" ? 0.7 : 0.5, answer }, 1);
        if (noisy === p.answer) continue;
        changed++;
        const lines = noisy.split("\n").slice(0, -1);
        const wrong = lines.filter((l) => checkStep(l).ok === false).length;
        if (answer === "recompute") assert.ok(wrong >= 1 && wrong <= lines.length, noisy);
        else {
          assert.equal(extractHashAnswer(noisy), p.final, noisy);
          if (kind === "slip")
            assert.equal(wrong, 1, noisy); // borrow: every borrow line may forget it
          else assert.ok(wrong >= 1, noisy);
        }
        assert.equal(noisyAnswer(p.answer, p.id, { kind, rate: kind === "borrow" ? 0.7 : 0.5, answer }, 1), noisy); // deterministic
      }
      assert.ok(changed > 20 && changed < 300, `${kind}/${answer}: ${changed} of 400 changed`);
    }
  }
});

test("noise: recompute keeps each changed solution internally consistent after its first wrong line", () => {
  const problems = generateProblems(PRESETS.easy, { seed: 5, split: "train", n: 300 });
  for (const p of problems) {
    const noisy = noisyAnswer(p.answer, p.id, borrow, 2);
    if (noisy === p.answer) continue;
    // borrow at rate 1: every line wrong is a subtraction that forgot its borrow, never anything else
    for (const l of noisy.split("\n").slice(0, -1)) {
      if (checkStep(l).ok === false) assert.match(l, / - /, noisy);
    }
    assert.notEqual(extractHashAnswer(noisy), p.final);
  }
});

test("noise: bad knobs name the key", () => {
  assert.throws(
    () => validateNoise({ kind: "bogus" as never, rate: 0.5, answer: "keep" }, "task.noise"),
    /task\.noise\.kind/,
  );
  assert.throws(() => validateNoise({ kind: "slip", rate: 2, answer: "keep" }, "task.noise"), /task\.noise\.rate/);
  assert.throws(
    () => validateNoise({ kind: "slip", rate: 0.1, answer: "x" as never }, "task.noise"),
    /task\.noise\.answer/,
  );
});
