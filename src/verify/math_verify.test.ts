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
  expect: boolean | null;
  mode: string;
  mv: boolean;
  mv_pred: string | null;
  held_out: boolean;
}

const FILE = fileURLToPath(new URL("../../src/verify/fixtures/math_verify.json", import.meta.url));
const fixture = JSON.parse(readFileSync(FILE, "utf8")) as { meta: Record<string, unknown>; cases: Case[] };

function targets(mode: string): ExtractionTarget[] {
  return mode.split("+") as ExtractionTarget[];
}

interface Tally {
  n: number;
  agree: number;
  falseAccepts: number;
  undecided: number;
  lines: string[];
}

function tally(cases: Case[]): Tally {
  const t: Tally = { n: cases.length, agree: 0, falseAccepts: 0, undecided: 0, lines: [] };
  for (const c of cases) {
    const v = checkMathAnswer(c.pred, c.gold, { targets: targets(c.mode) });
    if (v.correct === null) t.undecided++;
    const ours = v.correct === true;
    if (ours === c.mv) {
      t.agree++;
      continue;
    }
    if (ours) t.falseAccepts++;
    const pred = JSON.stringify(c.pred.slice(-70));
    const said = `ours ${v.correct} (${v.pred_source}: ${JSON.stringify(v.pred)})`;
    t.lines.push(
      `  #${c.id} ${c.category} [${c.mode}] gold=${JSON.stringify(c.gold)} pred=${pred}\n` +
        `      ${said}, math-verify ${c.mv} (${JSON.stringify(c.mv_pred)})`,
    );
  }
  return t;
}

function summary(name: string, t: Tally): string {
  const pct = (k: number) => ((100 * k) / t.n).toFixed(1);
  return (
    `${name}: n=${t.n} agree=${t.agree} (${pct(t.agree)}%)` +
    ` false_accepts=${t.falseAccepts} (${pct(t.falseAccepts)}%) undecided=${t.undecided}`
  );
}

test("agrees with Math-Verify on the committed fixtures", () => {
  const all = tally(fixture.cases);
  console.log(summary("math-verify fixtures, all", all));
  console.log(summary("math-verify fixtures, held out", tally(fixture.cases.filter((c) => c.held_out))));
  const prose = fixture.cases.filter((c) => c.category === "gsm8k_prose");
  console.log(summary("math-verify fixtures, GSM8K prose", tally(prose)));
  for (const cat of ["smollm2", "cross", "perturbed", "output2"]) {
    console.log(summary(`math-verify fixtures, ${cat}`, tally(fixture.cases.filter((c) => c.category === cat))));
  }
  if (all.lines.length) console.log(`disagreements:\n${all.lines.join("\n")}`);
  const { n, agree, falseAccepts } = all;
  assert.ok(n >= 300, `expected a few hundred cases, got ${n}`);
  assert.ok(agree >= 0.95 * n, `agreement ${agree}/${n} is below 95%`);
  assert.ok(falseAccepts <= 0.01 * n, `${falseAccepts} false accepts exceed 1% of ${n}`);
});
