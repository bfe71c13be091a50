import assert from "node:assert/strict";
import { test } from "node:test";
import { auditPairs, diagnosticsHtml, headroom, misconception } from "./diagnostics.js";

test("headroom: sample accuracy, pass@n over problems, greedy apart", () => {
  const v = [
    { id: "a", correct: true },
    { id: "a", correct: false },
    { id: "b", correct: false },
    { id: "b", correct: null },
    { id: "a", correct: false, greedy: true },
    { id: "b", correct: true, greedy: true },
  ];
  assert.deepEqual(headroom(v), {
    problems: 2,
    samples: 4,
    sample_accuracy: 0.25,
    pass_at_n: 0.5,
    greedy_accuracy: 0.5,
  });
  assert.equal(headroom(v.slice(0, 4))!.greedy_accuracy, null);
  assert.equal(headroom([]), null);
});

test("pair audit: step-sound chosen sides, cut rejected sides, rejected steps, pairs per level", () => {
  const good = "A = 2 + 3 = <<2+3=5>>5.\n#### 5";
  const lucky = "A = 2 + 3 = <<2+3=6>>5.\n#### 5";
  const pairs = [
    { id: "p", kind: "outcome", chosen: good, rejected: "A = 2 + 3 = <<2+3=6>>6.\n#### 6" },
    { id: "p", kind: "outcome", chosen: lucky, rejected: "A = 2 + 3 = <<2+3=6>>6.\n", rejected_eos: false },
    { id: "q", kind: "stepdpo", chosen: "A = 2 + 3 = <<2+3=5>>5.\n", rejected: "A = 2 + 3 = <<2+3=6>>6.\n" },
    { id: "r", kind: "outcome", chosen: good, rejected: "B" },
  ];
  const a = auditPairs(
    "outcome",
    pairs,
    new Map([
      ["p", "easy"],
      ["q", "medium"],
    ]),
  );
  assert.deepEqual(a, {
    name: "outcome",
    pairs: 4,
    problems: 3,
    chosen_sound: 0.75,
    rejected_cut: 0.5,
    rejected_steps: 5 / 4,
    by_level: { easy: 2, medium: 1 },
  });
  const html = diagnosticsHtml([{ seed: 1, headroom: headroom([{ id: "a", correct: true }]), pairs: [a] }]);
  assert.match(html, /id="pair-audit"/);
  assert.match(
    html,
    /<td>outcome<\/td><td>4<\/td><td>3<\/td><td>75\.0<\/td><td>50\.0<\/td><td>1\.25<\/td><td>easy 2, medium 1<\/td>/,
  );
});

test("misconception: borrow subtractions in eval completions, forgotten or wrong otherwise", () => {
  const recs = [
    { completion: "52 - 17 = <<52-17=45>>45.\n45 - 8 = <<45-8=37>>37.\n#### 37" }, // forgot, then right
    { completion: "30 - 4 = <<30-4=25>>25.\n58 - 7 = <<58-7=51>>51." }, // other wrong; no borrow needed
    { completion: 3 },
  ];
  assert.deepEqual(misconception("sft", recs), { name: "sft", borrow_steps: 3, forgot: 1 / 3, other_wrong: 1 / 3 });
});
