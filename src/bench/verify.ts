// `stepwise bench verify`: throughput of the verifiers. Answer checks = extract the final answer from a solution and
// compare it with a reference (a mix of GSM8K numbers and MATH-style LaTeX); math checks = the MATH checker
// (free-form extraction and expression equivalence, src/verify/math.ts), measured apart for plain-number answers
// (its fast path) and for LaTeX answers (parsed; a reference is parsed once and kept, as when N samples share it),
// each the median of 5 timed windows; step checks = calculator verdicts of solution lines (built-in task lines and
// GSM8K-style lines with plain equations); sandbox runs = JavaScript unit-test programs run to completion in the
// sandbox, as many at once as there are CPU cores.

import os from "node:os";
import { generateProblems, PRESETS } from "../data/task.js";
import { answersEqual, extractAnswer } from "../verify/answer.js";
import { checkStep } from "../verify/calculator.js";
import { checkMathAnswer } from "../verify/math.js";
import { runCodeTests } from "../verify/code.js";
import { detectSandbox } from "../verify/sandbox.js";

export interface VerifyBench {
  answer_checks_per_s: number;
  /** MATH checker, plain-number answers ("The answer is 42." vs "42"). */
  math_number_checks_per_s: number;
  /** MATH checker, LaTeX answers (fractions, surds, intervals, sets, equations, matrices). */
  math_latex_checks_per_s: number;
  step_checks_per_s: number;
  sandbox_runs_per_s: number;
  sandbox_mode: string;
  /** Programs run at once in the sandbox measurement. */
  concurrency: number;
}

const ANSWERS: [solution: string, reference: string][] = [
  ["She has 3 + 4 = <<3+4=7>>7 apples.\n#### 7", "7"],
  ["So the total is $1,080.\n#### 1,080", "1080"],
  ["Each gets 12.50 dollars.\n#### 12.5", "12.50"],
  ["The answer is 42.", "41"],
  ["Thus the area is $\\boxed{\\frac{3}{4}}$.", "0.75"],
  ["so $x = \\boxed{2\\sqrt{3}}$", "\\sqrt{12}"],
  ["We get \\boxed{\\dfrac{1}{2}}.", "\\frac12"],
  ["Hence \\boxed{(1, 2)}", "(1,2)"],
  ["The answer is: 25%", "0.25"],
  ["#### 18 apples", "18"],
  ["Total: \\boxed{-\\frac{7}{2}}", "-3.5"],
  ["#### 2 1/2", "2.5"],
];

const MATH_NUMBERS: [output: string, gold: string][] = [
  ["Adding them gives $16 + 6 = 22$. The answer is $\\boxed{22}$.", "22"],
  ["So she pays 40 dollars in total.\n\nThe final answer is 40.", "40"],
  ["The total is $1,080$.", "1080"],
  ["Thus the mean is 3.5.", "3.5"],
  ["We compute 6*7 = 42", "41"],
  ["#### 18", "18"],
  ["The remainder is $\\boxed{-4}$", "-4"],
  ["So the answer is 0.25.", "0.250"],
];

const MATH_LATEX: [output: string, gold: string][] = [
  ["Thus the probability is $\\boxed{\\dfrac{5}{12}}$.", "\\frac{5}{12}"],
  ["The distance is $\\sqrt{20}$, i.e. $\\boxed{2\\sqrt{5}}$.", "\\sqrt{20}"],
  ["The area is $\\boxed{12\\pi}$.", "12\\pi"],
  ["So $x \\in \\boxed{[-3, 5)}$.", "[-3,5)"],
  ["The solutions form $\\boxed{\\{2, -2\\}}$.", "\\{-2,2\\}"],
  ["Hence $\\boxed{x = 7}$.", "7"],
  ["Expanding gives $\\boxed{(x-2)^2}$.", "x^2-4x+4"],
  ["The center is $\\boxed{\\left(-2, 3\\right)}$.", "(-2,3)"],
  ["The product is $\\boxed{\\begin{pmatrix}2&1\\\\0&3\\end{pmatrix}}$.", "\\begin{pmatrix}2&1\\\\0&3\\end{pmatrix}"],
  ["The final answer is $1 \\le x \\le 2$.", "[1,2]"],
];

const LINES = [
  "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
  "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.",
  "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.",
  "This means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.",
  "She used all but $16 of her budget, so S + 143 = 200 - 16 = 184.",
  "Sam memorized 4+6=10 digits of pi.",
  "First find the total number of pieces of candy Anna gets: 14 pieces/house * 60 houses = 840 pieces",
];

/** The median of 5 rates, each measured over ms/5. */
function medianRate<T>(items: readonly T[], fn: (x: T) => unknown, ms: number): number {
  const rates = Array.from({ length: 5 }, () => rate(items, fn, ms / 5)).sort((a, b) => a - b);
  return rates[2];
}

/** Calls fn over items, round-robin, for about `ms`; returns calls per second. */
function rate<T>(items: readonly T[], fn: (x: T) => unknown, ms: number): number {
  for (let i = 0; i < items.length * 20; i++) fn(items[i % items.length]); // warm-up
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < items.length; i++) fn(items[i]);
    n += items.length;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

async function sandboxRate(runs: number, concurrency: number): Promise<number> {
  const problem = { language: "js" as const, tests: "assert.strictEqual(add(2, 3), 5);", entry_point: "add" };
  const completion = "function add(a, b) {\n  return a + b;\n}\n";
  const one = async () => {
    const r = await runCodeTests(problem, completion, { timeMs: 10_000 });
    if (r.status !== "passed") throw new Error(`sandbox benchmark run did not pass: ${r.status} ${r.message}`);
  };
  await one(); // warm-up (and detection)
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next++ < runs) await one();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return runs / ((performance.now() - t0) / 1000);
}

export async function benchVerify(opts: { quick?: boolean; concurrency?: number } = {}): Promise<VerifyBench> {
  const ms = opts.quick ? 200 : 1000;
  const answer = rate(
    ANSWERS,
    ([s, ref]) => {
      const pred = extractAnswer(s, "gsm8k");
      return pred === null ? false : answersEqual(pred, ref);
    },
    ms,
  );
  const math = ([out, gold]: [string, string]) => checkMathAnswer(out, gold).correct;
  const mathNumbers = medianRate(MATH_NUMBERS, math, ms);
  const mathLatex = medianRate(MATH_LATEX, math, ms);
  const taskLines = generateProblems(PRESETS.medium, { n: 200, seed: 1, split: "train" }).flatMap((p) =>
    p.answer.split("\n").slice(0, -1),
  );
  const step = rate([...taskLines, ...LINES], checkStep, ms);
  const concurrency = opts.concurrency ?? os.availableParallelism();
  const sandbox = await sandboxRate(opts.quick ? 8 : 60, concurrency);
  return {
    answer_checks_per_s: Math.round(answer),
    math_number_checks_per_s: Math.round(mathNumbers),
    math_latex_checks_per_s: Math.round(mathLatex),
    step_checks_per_s: Math.round(step),
    sandbox_runs_per_s: Math.round(sandbox * 10) / 10,
    sandbox_mode: detectSandbox().mode,
    concurrency,
  };
}
