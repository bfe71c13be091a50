// The MATH checker: extraction order and targets, equivalence by kind (equal, unequal and undecided rows), the
// guards against false accepts (overflow, undefined sample points, time limit, long input), the verify record, and
// a fuzz test: mangled answers give a verdict, never an exception.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { extractFinal } from "./extract.js";
import { checkMathAnswer, mathAnswersEqual } from "./math.js";
import { verifySolution } from "./record.js";

test("extraction follows the order of evidence and records its source", () => {
  const rows: [string, string | null, string | null][] = [
    ["so $x = \\boxed{7}$. Then the answer is 8.", "7", "boxed"],
    ["First $\\boxed{3}$, but the answer is $\\boxed{5}$.", "5", "boxed"],
    ["The roots are $\\boxed{2}$ and $\\boxed{5}$.", "2, 5", "boxed"],
    ["Both give $\\boxed{4}$, or $\\boxed{4}$.", "4", "boxed"],
    ["The answer is \\boxed 4.", "4", "boxed"],
    ["We get $16 + 6 = 22$. The final answer is $22$ square units.", "22", "answer_is"],
    ["Final answer: 12.5", "12.5", "answer_is"],
    ["The answer is 1/2 = 0.5", "0.5", "answer_is"],
    ["The answer is 2^2.", "2^2", "answer_is"],
    ["We get $x = 3$.\n#### 3", "3", "hash"],
    ["Solving gives $2x = 10$, so $x = 5$.", "x = 5", "latex"],
    ["So $x = 1, x = 2$.", "x = 1, x = 2", "latex"],
    ["The solutions are $x=-1$ and $x=5$.", "x=-1, x=5", "latex"],
    ["The final answer is $x = 2$ or $x = 3$.", "x = 2, x = 3", "answer_is"],
    ["Adding, $16 + 6 = 22$", "22", "latex"],
    ["Adding, $16 + 6 = 22$. So the area is 23.", "23", "expr"],
    ["The probability is 3/4.", "3/4", "expr"],
    ["About 75% of them.", "75%", "expr"],
    ["So 5 * 2 = 10\n\nSo, $\\binom{5}{2", "10", "expr"],
    ["She makes $18 a day", "18", "expr"],
    ["It is $\\boxed{12}$ per box. Two boxes: the final answer is $24$.", "24", "answer_is"],
    ["Final answer: the smallest $k$ is 17.", "17", "answer_is"],
    ["Final answer: the value of $g(t)$ is 0.25.", "0.25", "answer_is"],
    ["\\frac{7}{3}", "\\frac{7}{3}", "latex"],
    ["The ratio is .75", ".75", "expr"],
    ["Thus $y = 2/7 \\approx 0.29$.", "y = 2/7", "latex"],
    ["Thus $t = 4 + 3 = 2/7 \\approx 0.29$.", "2/7", "latex"],
    ["There are five cats.", null, null],
    ["No numbers at all.", null, null],
  ];
  for (const [text, pred, source] of rows) {
    const got = extractFinal(text);
    assert.equal(got?.text ?? null, pred, text);
    assert.equal(got?.source ?? null, source, text);
  }
});

test("extraction targets limit what is read, as Math-Verify's extraction configs do", () => {
  assert.equal(extractFinal("The answer is 1/2.", { targets: ["latex"] }), null);
  assert.equal(extractFinal("The answer is $\\frac{1}{2}$.", { targets: ["expr"] }), null);
  assert.equal(extractFinal("The answer is 1/2.", { targets: ["expr"] })?.text, "1/2");
  assert.equal(extractFinal("I think the correct choice is C", { targets: ["string"] })?.text, "C");
  assert.equal(extractFinal("Answer: (B)", { targets: ["string"] })?.text, "B");
  assert.equal(extractFinal("The answer is E", { targets: ["string"], choices: ["D", "E"] })?.text, "E");
});

type Row = [gold: string, pred: string, expected: boolean | null];

const ROWS: Row[] = [
  // numbers, exact and rounded to 6 decimals where a decimal is written
  ["1080", "1,080", true],
  ["0.5", ".5", true],
  ["72", "72.0", true],
  ["\\frac{1}{6}", "0.166667", true],
  ["\\frac{1}{6}", "0.1667", false],
  ["\\frac{1}{3}", "0.333", false],
  ["5", "6", false],
  ["-5", "5", false],
  ["123456789012345678901", "123456789012345678902", false],
  ["\\pi", "3.141593", true],
  ["\\pi", "3.14", false],
  // fractions, surds, constants, expressions
  ["\\frac{1}{2}", "\\dfrac{2}{4}", true],
  ["2\\sqrt{3}", "\\sqrt{12}", true],
  ["\\frac{1+\\sqrt5}{2}", "\\frac{2}{\\sqrt5-1}", true],
  ["\\sqrt{2}", "1.414", false],
  ["2\\frac{1}{3}", "\\frac{7}{3}", true],
  ["\\sqrt[3]{-8}", "-2", true],
  ["x^2+2x+1", "(x+1)^2", true],
  ["x^2+1", "(x+1)^2", false],
  ["2x", "2y", false],
  ["\\sin^2 x+\\cos^2 x", "1", true],
  ["a+b+c+d+e_1", "e_1+d+c+b+a", true],
  ["a+b+c+d", "a+b+c+a", false],
  ["\\ln 2", "\\log 2", false],
  // structures
  ["(1,2)", "\\left(1, 2\\right)", true],
  ["(1,2)", "(2,1)", false],
  ["1, 2", "2, 1", true],
  ["\\{1,2\\}", "\\{2,1\\}", true],
  ["[0,1)", "[0, 1)", true],
  ["[0,1)", "(0,1)", false],
  ["(2,\\infty)", "(2, \\infty)", true],
  ["(2,\\infty)", "[2,\\infty)", false],
  ["(-\\infty,0)\\cup(1,\\infty)", "(1,\\infty)\\cup(-\\infty,0)", true],
  ["\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", true],
  ["\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}", false],
  // relations: assignments either way, inequalities in the reference only
  ["3", "x=3", true],
  ["x=3", "3", true],
  ["x=3", "4", false],
  ["y=2x+1", "y=1+2x", true],
  ["x^2+y^2=4", "4=x^2+y^2", true],
  ["1\\le x\\le 2", "[1,2]", true],
  ["x>3", "(3,\\infty)", true],
  ["1<x\\le 2", "(1,2]", true],
  ["[1,2]", "1\\le x\\le 2", false],
  ["t \\neq 4", "t != 4", true],
  ["t \\neq 4", "4 \\neq t", true],
  ["t \\neq 4", "t = 4", false],
  ["2/7", "t \\approx 0.29", false],
  ["0.29", "t \\approx 0.29", true],
  ["t = 2/7", "t = 2/7 \\approx 0.29", true],
  // percent, units, degrees, currency, text
  ["0.5", "50\\%", true],
  ["50", "50\\%", true],
  ["12.5", "12.5\\%", false],
  ["0.125", "12.5\\%", true],
  ["10", "10\\text{ cm}", true],
  ["4", "4\\mathrm{cm}^2", true],
  ["30", "30^\\circ", true],
  ["18", "\\$18.00", true],
  ["20", "\\text{20 dollars}", false],
  ["\\text{yes}", "\\text{Yes}", true],
  ["\\text{odd}", "\\text{even}", false],
  ["7", "7\\textnormal{ km}", true],
  ["7", "7 \\mbox{ km}^2", true],
  ["7", "7\\textbf{ km}", true],
  ["\\text{B}", "\\text{(B)}", true],
  ["\\text{B}", "\\text{(C)}", false],
  // undecided: no parse, unknown functions, overflow, undefined at every sample point
  ["\\frac12", "\\int_0^1 x\\,dx", null],
  ["2^{1000000}", "2^{1000001}", null],
  ["\\infty", "2^{1000000}", null],
  ["1", "(-1)^{n}", null],
  ["3", "\\frac{d}{dx}", null],
  ["3", "", null],
  ["(x+1)^2", "121_", null],
  // several answers; digits the parser would join across a space
  ["1\\pm\\sqrt{2}", "1-\\sqrt{2}, 1+\\sqrt{2}", true],
  ["\\pm 3", "3", false],
  ["2, 3", "x=2 \\text{ or } x=3", true],
  ["\\frac{1}{2}", "\\frac{1}{2}, 0.5", true],
  ["12", "12, 13", false],
  ["18000", "18\\,000", true],
  ["4500321", "4,\\! 500,\\! 321", true],
  ["\\frac{2}{9}", "\\frac{2}{9},", true],
  ["\\begin{pmatrix}5&6\\\\7&8\\end{pmatrix}", "\\left[\\begin{array}{cc}5&6\\\\7&8\\end{array}\\right]", true],
  ["\\begin{pmatrix}5&6\\\\7&8\\end{pmatrix}", "\\left(\\begin{array}{cc}5&6\\\\8&7\\end{array}\\right)", false],
  ["23", "2 3", null],
  ["125", "12\\,5", null],
  ["23", "2\\quad 3", null],
  ["3", "\\log_2 8", true],
  ["(2,3)", "a=2, b=3", true],
  ["(2,3)", "a=3, b=2", false],
  ["(2,3)", "a=2, a=3", false],
  ["5", "AB = 5", true],
  ["2x+1", "f(x) = 2x+1", true],
  ["2", "2 = x", false],
  ["A", "\\text{(A)}", true],
  ["\\text{(A)}", "B", false],
];

test("equivalence: equal, unequal and undecided answers", () => {
  for (const [gold, pred, expected] of ROWS) {
    assert.equal(mathAnswersEqual(gold, pred), expected, `gold ${gold} vs pred ${pred}`);
  }
});

test("a comparison past its time limit, or an answer too long to parse, is undecided", () => {
  assert.equal(mathAnswersEqual("x^2", "x \\cdot x", { timeMs: -1 }), null);
  assert.equal(mathAnswersEqual("x^2", "x \\cdot x"), true);
  const long = Array.from({ length: 800 }, (_, i) => `${i}`).join("+");
  assert.equal(mathAnswersEqual("1", long), null);
});

test("verify --task math: pred, pred_source and the step that states the answer", () => {
  const v = verifySolution("Step 1: $2x = 8$.\nStep 2: so $x = \\boxed{4}$.", "\\boxed{4}", "math");
  assert.equal(v.correct, true);
  assert.equal(v.pred, "4");
  assert.equal(v.pred_source, "boxed");
  assert.deepEqual(
    v.steps.map((s) => s.ok),
    [null, true],
  );
  const w = verifySolution("Step 1: $2x = 8$.\nStep 2: so $x = \\boxed{5}$.", "4", "math");
  assert.equal(w.correct, false);
  assert.equal(w.first_error_step, 1);
  const none = checkMathAnswer("I do not know.", "4");
  assert.deepEqual([none.correct, none.pred, none.pred_source], [false, null, null]);
});

test("mangled answers give a verdict, never an exception", () => {
  const file = new URL("../../src/verify/fixtures/math_verify.json", import.meta.url);
  const cases = (JSON.parse(readFileSync(file, "utf8")) as { cases: { gold: string }[] }).cases;
  const pool = [...new Set(cases.map((c) => c.gold))];
  let seed = 19;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const alphabet = "{}()[]\\^_=,.$%-+*/ 0123456789xab\\frac\\sqrt\\left\\le<>|&";
  for (let n = 0; n < 3000; n++) {
    let p = pool[rnd(pool.length)];
    for (let k = 0; k < 3; k++) {
      const i = rnd(p.length + 1);
      p = rnd(2) ? p.slice(0, i) + p.slice(i + 1) : p.slice(0, i) + alphabet[rnd(alphabet.length)] + p.slice(i);
    }
    const gold = pool[rnd(pool.length)];
    assert.doesNotThrow(() => checkMathAnswer(`The answer is $${p}$.`, gold), `gold ${gold} vs pred ${p}`);
  }
});
