// Flawed reasoning in SFT data: the regime where preference training has something to fix. Real SFT data holds
// chains that are wrong somewhere (distilled, or filtered on the final answer only); the built-in task's solutions
// are perfect unless a noise model rewrites some of them. Sampling, verification and evaluation keep the clean
// problems: only what SFT trains on is rewritten, and the verifier stays the ground truth.
//
// Noise models, each applied per answer line of the built-in task ("a op b = <<a op b=r>>r"):
//   borrow  a systematic misconception: a subtraction that needs a borrow (a % 10 < b % 10) "forgets" it and
//           writes r + 10, with probability `rate` per such line (the same mistake every time it applies)
//   slip    a random slip: with probability `rate` per solution, one running line's result is off by 1-9
// What follows a wrong line:
//   recompute  later lines and "#### n" are recomputed from the wrong value (each solution is internally consistent
//              and its final answer wrong; a division that stops being whole leaves the solution clean)
//   keep       later lines use the right value, so the final answer stays right (an outcome filter keeps it)

import { InputError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { fnv1a } from "./task.js";

export interface NoiseConfig {
  kind: "none" | "borrow" | "slip";
  rate: number; // in [0, 1]: per borrow line (borrow) or per solution (slip)
  answer: "recompute" | "keep";
}

export const NO_NOISE: NoiseConfig = { kind: "none", rate: 0, answer: "recompute" };

export function validateNoise(n: NoiseConfig, key = "noise"): NoiseConfig {
  if (!["none", "borrow", "slip"].includes(n.kind))
    throw new InputError(`${key}.kind: expected none, borrow or slip, got ${JSON.stringify(n.kind)}`);
  if (!(n.rate >= 0 && n.rate <= 1)) throw new InputError(`${key}.rate: expected a number in [0, 1], got ${n.rate}`);
  if (n.answer !== "recompute" && n.answer !== "keep")
    throw new InputError(`${key}.answer: expected recompute or keep, got ${JSON.stringify(n.answer)}`);
  return n;
}

// "52 - 17 = <<52-17=35>>35" and "$<<...>>": groups a, op, b, money sign, then the annotation's a, op, b, r and r.
const CALC = /(\d+) (\+|-|\*|\/|mod) (\d+) = (\$?)<<(\d+)([-+*/%])(\d+)=(\d+)>>(\d+)/;

interface Line {
  text: string;
  calc: { a: number; op: string; b: number; r: number } | null;
}

function parseLine(text: string): Line {
  const m = CALC.exec(text);
  return { text, calc: m ? { a: Number(m[1]), op: m[2], b: Number(m[3]), r: Number(m[9]) } : null };
}

function applyOp(a: number, op: string, b: number): number {
  switch (op) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b;
    default:
      return a % b; // mod
  }
}

/** The line with its calculation rewritten to a op b = r. */
function rewrite(line: Line, a: number, r: number): string {
  const c = line.calc!;
  const ann = c.op === "mod" ? "%" : c.op;
  return line.text.replace(CALC, (_m, _a, op, b, money) => `${a} ${op} ${b} = ${money}<<${a}${ann}${b}=${r}>>${r}`);
}

/**
 * Line i is the first line of a compound move ("3 * 12 = 36", then "a - 36 = r"): it does not carry the running
 * value, the next line does.
 */
function compoundFirst(lines: Line[], i: number): boolean {
  const c = lines[i].calc!;
  const next = lines[i + 1]?.calc;
  return (
    c.op === "*" &&
    next !== undefined &&
    next !== null &&
    (next.op === "+" || next.op === "-") &&
    next.b === c.r &&
    next.a !== c.r
  );
}

/** The wrong result the noise model writes for a running line a op b (true result r), or null for none. */
function slipOf(
  n: NoiseConfig,
  rng: Rng,
  a: number,
  op: string,
  b: number,
  r: number,
  slipLine: boolean,
): number | null {
  if (n.kind === "borrow") return op === "-" && a % 10 < b % 10 && rng.next() < n.rate ? r + 10 : null;
  if (n.kind === "slip" && slipLine) {
    const d = 1 + rng.int(9);
    return r - d >= 1 && rng.next() < 0.5 ? r - d : r + d;
  }
  return null;
}

/**
 * A built-in task answer rewritten by the noise model, deterministic in (seed, id); the answer itself when no line
 * changed (or when recomputing would leave whole numbers).
 */
export function noisyAnswer(answer: string, id: string, n: NoiseConfig, seed: number): string {
  if (n.kind === "none" || n.rate === 0) return answer;
  const rng = new Rng(fnv1a(`${seed >>> 0}\u0000noise\u0000${id}`));
  const lines = answer.split("\n").map(parseLine);
  const running = lines.map((l, i) => l.calc !== null && !compoundFirst(lines, i));
  const runningIdx = running.flatMap((r, i) => (r ? [i] : []));
  // slip: which running line (if any) slips is drawn once per solution
  const slipAt =
    n.kind === "slip" && runningIdx.length > 0 && rng.next() < n.rate ? runningIdx[rng.int(runningIdx.length)] : -1;
  let shift: { from: number; to: number } | null = null; // the running value as written vs the true one
  let changed = false;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.calc && running[i]) {
      const a = shift && n.answer === "recompute" && l.calc.a === shift.from ? shift.to : l.calc.a;
      const r = applyOp(a, l.calc.op, l.calc.b);
      if (!Number.isInteger(r) || r < 0) return answer; // recomputing broke the task's whole numbers
      const wrong = slipOf(n, rng, a, l.calc.op, l.calc.b, r, i === slipAt);
      const written = wrong ?? r;
      if (a !== l.calc.a || written !== l.calc.r) changed = true;
      out.push(a === l.calc.a && written === l.calc.r ? l.text : rewrite(l, a, written));
      shift = { from: l.calc.r, to: n.answer === "recompute" ? written : l.calc.r };
    } else if (l.text.startsWith("####") && shift && n.answer === "recompute") {
      out.push(`#### ${shift.to}`);
    } else out.push(l.text);
  }
  return changed ? out.join("\n") : answer;
}

/** How often text repeats the borrow misconception: subtractions that need a borrow, and how they were written. */
export interface BorrowCount {
  steps: number; // "<<a-b=r>>" with a % 10 < b % 10
  forgot: number; // r = a - b + 10: the misconception
  other: number; // any other wrong r
}

export function countBorrows(text: string, into: BorrowCount = { steps: 0, forgot: 0, other: 0 }): BorrowCount {
  for (const m of text.matchAll(/<<(\d+)-(\d+)=(\d+)>>/g)) {
    const [a, b, r] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (a % 10 >= b % 10) continue;
    into.steps++;
    if (r === a - b + 10) into.forgot++;
    else if (r !== a - b) into.other++;
  }
  return into;
}
