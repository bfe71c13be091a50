// The MATH answer checker against Hugging Face's Math-Verify (reference/make_math_verify_fixtures.py writes
// fixtures/math_verify.json: a few hundred (gold, prediction) cases and Math-Verify's verdict on each). Prints every
// disagreement, then asserts the goals: agreement >= 95%, false accepts (we say true, Math-Verify false)
// <= 1% of the cases. Undecided (null) counts as not accepted.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { ExtractionTarget } from "./extract.js";
import { checkMathAnswer } from "./math.js";

interface Case {
  id: number;
  category: string;
  gold: string;
  pred: string;
  expect: boolean;
  mode: string;
  mv: boolean;
  mv_pred: string | null;
}

const FILE = fileURLToPath(new URL("../../src/verify/fixtures/math_verify.json", import.meta.url));
const fixture = JSON.parse(readFileSync(FILE, "utf8")) as { meta: Record<string, unknown>; cases: Case[] };

function targets(mode: string): ExtractionTarget[] {
  return mode.split("+") as ExtractionTarget[];
}

test("agrees with Math-Verify on the committed fixtures", () => {
  const cases = fixture.cases;
  let agree = 0;
  let falseAccepts = 0;
  let undecided = 0;
  const lines: string[] = [];
  for (const c of cases) {
    const v = checkMathAnswer(c.pred, c.gold, { targets: targets(c.mode) });
    if (v.correct === null) undecided++;
    const ours = v.correct === true;
    if (ours === c.mv) { agree++; continue; }
    if (ours) falseAccepts++;
    lines.push(`  #${c.id} ${c.category} [${c.mode}] gold=${JSON.stringify(c.gold)} pred=${JSON.stringify(c.pred.slice(-70))}` +
      ` -> ours ${v.correct} (${v.pred_source}: ${JSON.stringify(v.pred)}), math-verify ${c.mv} (${JSON.stringify(c.mv_pred)})`);
  }
  const n = cases.length;
  console.log(`math-verify fixtures: n=${n} agree=${agree} (${((100 * agree) / n).toFixed(1)}%) ` +
    `false_accepts=${falseAccepts} (${((100 * falseAccepts) / n).toFixed(2)}%) undecided=${undecided}`);
  if (lines.length) console.log(`disagreements:\n${lines.join("\n")}`);
  assert.ok(n >= 300, `expected a few hundred cases, got ${n}`);
  assert.ok(agree >= 0.95 * n, `agreement ${agree}/${n} is below 95%`);
  assert.ok(falseAccepts <= 0.01 * n, `${falseAccepts} false accepts exceed 1% of ${n}`);
});
