// Answer extraction and equivalence: a table of equal, unequal and undecidable pairs (each checked both ways round).

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  answersEqual,
  extractAnswer,
  extractAnswerIs,
  extractBoxed,
  extractHashAnswer,
  normalizeAnswer,
  referenceAnswer,
} from "./answer.js";

type Row = [pred: string, ref: string, expected: boolean | null];

const EQUAL: Row[] = [
  // integers, signs, separators, decimals
  ["72", "72", true],
  ["072", "72", true],
  ["+5", "5", true],
  ["-5", "-5", true],
  ["\u22125", "-5", true],
  ["1,080", "1080", true],
  ["1,000,000", "1000000", true],
  ["10,000.50", "10000.5", true],
  ["18 000", "18000", true],
  ["1{,}000", "1000", true],
  ["72.0", "72", true],
  ["72.00", "72", true],
  ["0.50", ".5", true],
  ["3.", "3", true],
  ["1e3", "1000", true],
  ["2.5e-1", "0.25", true],
  ["-0", "0", true],
  ["0.1", "1/10", true],
  // currency and units
  ["$1,080", "1080", true],
  ["$1,080.00", "1080", true],
  ["\\$5.00", "5", true],
  ["-$5", "-5", true],
  ["72 clips", "72", true],
  ["18 dollars", "18", true],
  ["5 cm", "5", true],
  ["5cm", "5", true],
  ["12 km/h", "12", true],
  ["30 sq ft", "30", true],
  ["7 cm^2", "7", true],
  ["\\text{5 apples}", "5", true],
  ["5 \\text{ inches}", "5", true],
  ["\\mbox{10 feet}", "10", true],
  ["4 m", "4", true],
  ["USD 20", "20", true],
  ["\u20ac15", "15", true],
  ["\u00a312.50", "12.5", true],
  ["Rs. 100", "100", true],
  ["3 hours.", "3", true],
  ["9 dollars per hour", "9", true],
  // fractions and LaTeX
  ["\\frac{1}{2}", "0.5", true],
  ["\\dfrac{1}{2}", "1/2", true],
  ["\\tfrac{3}{4}", "0.75", true],
  ["\\frac12", "0.5", true],
  ["\\frac{-3}{4}", "-0.75", true],
  ["-\\frac{3}{4}", "-3/4", true],
  ["\\frac{6}{8}", "\\frac{3}{4}", true],
  ["\\frac{1}{3}", "2/6", true],
  ["\\cfrac{2}{3}", "4/6", true],
  ["\\frac{\\frac{1}{2}}{2}", "0.25", true],
  ["\\frac{10}{2}", "5", true],
  ["{5}", "5", true],
  ["\\left(5\\right)", "5", true],
  ["(5)", "5", true],
  ["\\frac{3}{-4}", "-0.75", true],
  ["1/4 + 1/4", "0.5", true],
  ["2\\cdot 3", "6", true],
  ["2\\times3", "6", true],
  ["6\\div 4", "1.5", true],
  ["10^3", "1000", true],
  ["2^{10}", "1024", true],
  ["10^{-2}", "0.01", true],
  ["3 \\times 10^{3}", "3000", true],
  ["$\\frac{1}{2}$", "0.5", true],
  ["\\(\\frac{1}{2}\\)", "1/2", true],
  ["\\boxed{7}", "7", true],
  ["\\displaystyle\\frac{1}{2}", "0.5", true],
  ["\\frac{1}{2}.", "0.5", true],
  // mixed numbers
  ["2 1/2", "2.5", true],
  ["2\\frac{1}{2}", "5/2", true],
  ["1 3/4", "\\frac{7}{4}", true],
  ["-2 1/2", "-2.5", true],
  ["3\\frac{2}{5}", "3.4", true],
  // square roots
  ["2\\sqrt{3}", "\\sqrt{12}", true],
  ["\\sqrt{4}", "2", true],
  ["\\sqrt{8}", "2\\sqrt{2}", true],
  ["\\frac{\\sqrt{2}}{2}", "1/\\sqrt{2}", true],
  ["\\frac{1}{2}\\sqrt{3}", "\\frac{\\sqrt{3}}{2}", true],
  ["\\sqrt{2}+\\sqrt{3}", "\\sqrt{3}+\\sqrt{2}", true],
  ["\\sqrt{\\frac{1}{4}}", "0.5", true],
  ["\\sqrt2", "\\sqrt{2}", true],
  ["3\\sqrt{2}-\\sqrt{2}", "2\\sqrt{2}", true],
  ["\\sqrt{18}", "3\\sqrt{2}", true],
  ["(\\sqrt{3})^2", "3", true],
  ["\\sqrt{3}\\cdot\\sqrt{12}", "6", true],
  ["1+\\sqrt{5}", "\\sqrt{5}+1", true],
  ["\\sqrt{50}/5", "\\sqrt{2}", true],
  // percentages
  ["50%", "0.5", true],
  ["50%", "50", true],
  ["50\\%", "50", true],
  ["12.5%", "0.125", true],
  ["0.5", "50%", true],
  ["100%", "1", true],
  ["5 %", "5", true],
  // degrees, assignments, number words
  ["30^\\circ", "30", true],
  ["30^{\\circ}", "30", true],
  ["45\u00b0", "45", true],
  ["x = 5", "5", true],
  ["y=-2", "-2", true],
  ["five", "5", true],
  ["Twelve", "12", true],
  ["half", "0.5", true],
  // tuples, intervals, lists
  ["(1,2)", "(1, 2)", true],
  ["\\left(1,2\\right)", "(1,2)", true],
  ["(0.5, 3)", "(\\frac{1}{2}, 3)", true],
  ["[0, 1)", "[0,1)", true],
  ["1, 2", "2, 1", true],
  ["-3, 4", "4,-3", true],
  ["\\{1,2\\}", "\\{2,1\\}", true],
  // symbolic answers compared as text
  ["x+1", "x + 1", true],
  ["\\pi", "\\pi", true],
  ["2\\pi", "2\\pi", true],
  ["Yes", "yes", true],
  ["\\text{(B)}", "(B)", true],
  ["\\infty", "\\infty", true],
];

const UNEQUAL: Row[] = [
  ["5", "6", false],
  ["72", "720", false],
  ["-5", "5", false],
  ["0.5", "0.05", false],
  ["1,080", "108", false],
  ["1080", "1,081", false],
  ["\\frac{1}{2}", "\\frac{1}{3}", false],
  ["\\frac{3}{4}", "0.7", false],
  ["2 1/2", "2", false],
  ["2\\frac{1}{2}", "1", false],
  ["\\sqrt{2}", "1.414", false],
  ["\\sqrt{2}", "\\sqrt{3}", false],
  ["2\\sqrt{3}", "\\sqrt{6}", false],
  ["1+\\sqrt{2}", "1-\\sqrt{2}", false],
  ["\\sqrt{8}", "8", false],
  ["50%", "0.05", false],
  ["50%", "5", false],
  ["33.33", "1/3", false],
  ["0.333", "\\frac{1}{3}", false],
  ["$5", "$6", false],
  ["10 apples", "11", false],
  ["10^3", "100", false],
  ["2^{10}", "1000", false],
  ["(1,2)", "(2,1)", false],
  ["(1,2)", "(1,3)", false],
  ["(1,2)", "(1,2,3)", false],
  ["[0,1)", "(0,1)", false],
  ["[0,1]", "[0,1)", false],
  ["1, 2", "1, 3", false],
  ["1, 2", "1, 2, 3", false],
  ["\\{1,2\\}", "\\{1,3\\}", false],
  ["1e3", "100", false],
  ["12.50", "12.05", false],
  ["3.14", "3.15", false],
  ["0", "1", false],
  ["-0.5", "0.5", false],
  ["\\frac{-1}{2}", "\\frac{1}{2}", false],
  ["7 cm", "6", false],
  ["\\frac{10}{3}", "3", false],
  ["1/3", "0.33", false],
];

const UNDECIDED: Row[] = [
  ["\\pi", "3.14", null],
  ["2\\pi", "6.28", null],
  ["x+1", "x+2", null],
  ["3x", "3", null],
  ["5 and 6", "5", null],
  ["\\sqrt[3]{8}", "2", null],
  ["e", "2.718", null],
  ["\\log 2", "0.301", null],
  ["abc", "5", null],
  ["", "5", null],
  ["about 5", "5", null],
  ["\\infty", "1000000", null],
  ["(1,2)", "1, 2", null],
  ["n^2", "4", null],
];

test("answer equivalence table (>= 150 cases, each both ways round)", () => {
  const rows = [...EQUAL, ...UNEQUAL, ...UNDECIDED];
  assert.ok(rows.length >= 150, `${rows.length} rows`);
  const wrong: string[] = [];
  for (const [a, b, want] of rows) {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const got = answersEqual(x, y);
      if (got !== want)
        wrong.push(
          `${JSON.stringify(x)} vs ${JSON.stringify(y)}: want ${want}, got ${got} (normalized ${JSON.stringify(normalizeAnswer(x))})`,
        );
    }
  }
  console.log(`${rows.length} rows: ${EQUAL.length} equal, ${UNEQUAL.length} unequal, ${UNDECIDED.length} undecided`);
  assert.deepEqual(wrong, []);
});

test("#### extraction", () => {
  assert.equal(extractHashAnswer("a\nb\n#### 72"), "72");
  assert.equal(extractHashAnswer("#### 1,080\n"), "1,080");
  assert.equal(extractHashAnswer("first #### 3\nthen #### 4"), "3"); // the solution ends at the first
  assert.equal(extractHashAnswer("no marker"), null);
  assert.equal(extractHashAnswer("####   \n"), null);
});

test("\\boxed extraction handles nesting, escapes and the bare form", () => {
  assert.equal(extractBoxed("so \\boxed{5}."), "5");
  assert.equal(extractBoxed("\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  assert.equal(
    extractBoxed("\\boxed{\\frac{\\sqrt{3}}{\\left(2\\right)}} done"),
    "\\frac{\\sqrt{3}}{\\left(2\\right)}",
  );
  assert.equal(extractBoxed("\\boxed{\\{1, 2\\}}"), "\\{1, 2\\}");
  assert.equal(extractBoxed("first \\boxed{1} then \\boxed{2}"), "2");
  assert.equal(extractBoxed("\\boxed 7$"), "7");
  assert.equal(extractBoxed("\\fbox{3}"), "3");
  assert.equal(extractBoxed("\\boxed{unbalanced"), null);
  assert.equal(extractBoxed("nothing"), null);
});

test('"The answer is" extraction', () => {
  assert.equal(extractAnswerIs("The answer is 3.5."), "3.5");
  assert.equal(extractAnswerIs("So the answer is: 18\nmore"), "18");
  assert.equal(extractAnswerIs("Final answer: $42$"), "$42$");
  assert.equal(extractAnswerIs("The final answer is **7**"), "7");
  assert.equal(extractAnswerIs("no answer here"), null);
});

test("extractAnswer prefers #### (gsm8k) or \\boxed (math); referenceAnswer reads full solutions", () => {
  const both = "\\boxed{1}\n#### 2";
  assert.equal(extractAnswer(both, "gsm8k"), "2");
  assert.equal(extractAnswer(both, "math"), "1");
  assert.equal(extractAnswer("The answer is 9."), "9");
  assert.equal(extractAnswer("nothing"), null);
  assert.equal(referenceAnswer("step\n#### 5"), "5");
  assert.equal(referenceAnswer("so \\boxed{\\frac12}", "math"), "\\frac12");
  assert.equal(referenceAnswer(" 17 "), "17");
});
