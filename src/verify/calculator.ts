// The calculator step verifier: every `<<expr=value>>` annotation (and the number written right after it) and every
// plain `a op b = c` equation in a step is evaluated exactly. A step is wrong if any check is wrong, right if at least one check is right and none wrong,
// and undecided (null) if it holds nothing that can be checked.
//
// Rules that keep it from crying wolf on real solutions (each is a test case):
// - A stated value with two or more decimals may be the exact value rounded to that many places (100/3 = 33.33).
// - "%" may be a unit label as well as /100: "0.4*100 = 40%" and "100% - 40% = 60%" both pass.
// - "25 / 1/3" is read both as 25 / (1/3) and as (25/1)/3; "= 50 cents" also as 0.50.
// - A left side cut short by a word counts only if it has an operator: in "half of 80 = 40" the "80" is not the
//   whole left side, so nothing is checked; in "She sold 48/2 = 24" the "48/2" is.
// - An operand that runs into a variable ("p - 5 = 10", "= 5 + x", "2p = 10") is not checked.
// - A plain equation needs an operator somewhere in its chain ("3 = 3" checks nothing; "2*5 = 10 = 12" is wrong).

import { evaluate, tokenize, type EvalOptions, type Token } from "./expr.js";
import { Rational } from "./rational.js";

export interface Check {
  /** annotation: `<<a=b>>` holds; result: the number written after `>>` is b; equation: a plain `a op b = c`. */
  kind: "annotation" | "result" | "equation";
  /** The checked text, e.g. "48/2=24" or "48/2 = 24". */
  text: string;
  ok: boolean | null;
  /** The exact value of the left side when the check failed. */
  expected?: string;
}

export interface StepCheck {
  ok: boolean | null;
  checks: Check[];
}

const ANNOTATION = /<<([^<>]*)>>/g;

/** Verdict of one step. */
export function checkStep(step: string): StepCheck {
  const checks: Check[] = [];
  for (const m of step.matchAll(ANNOTATION)) {
    checks.push(checkAnnotation(m[1]));
    const written = checkWrittenResult(m[1], step.slice(m.index! + m[0].length, m.index! + m[0].length + 64));
    if (written) checks.push(written);
  }
  checks.push(...checkEquations(step.replace(ANNOTATION, "")));
  return { ok: verdict(checks), checks };
}

function verdict(checks: Check[]): boolean | null {
  if (checks.some((c) => c.ok === false)) return false;
  return checks.some((c) => c.ok === true) ? true : null;
}

/** `<<a=b>>` or `<<a=b=c>>`: every part must equal the first. */
export function checkAnnotation(body: string): Check {
  const parts = body.split("=");
  const check: Check = { kind: "annotation", text: body, ok: null };
  if (parts.length < 2) return check;
  const sides = parts.map((p) => side(tokenize(p), false));
  if (sides.some((s) => s === null)) return check;
  const first = sides[0]!;
  if (first === "math") return { ...check, ok: false };
  for (const s of sides.slice(1)) {
    if (s === "math" || !sameValue(first, s!))
      return { ...check, ok: false, expected: first.values[0].toDecimalString() };
  }
  return { ...check, ok: true };
}

/** The number written right after an annotation ("<<48/2=24>>24") must be the annotation's value. */
function checkWrittenResult(body: string, after: string): Check | null {
  const parts = body.split("=");
  if (parts.length < 2) return null;
  const stated = side(tokenize(parts[parts.length - 1]), false);
  const t = tokenize(after);
  if (stated === null || stated === "math" || t[0]?.kind !== "num") return null;
  let n = 1;
  if (t[1]?.op === "/" && !t[1].spaced && t[2]?.kind === "num" && !t[2].spaced) n = 3; // "3/4"
  if (t[n]?.op === "%" && !t[n].spaced) n++;
  const written = side(t.slice(0, n), false);
  if (written === null || written === "math") return null;
  const text = t
    .slice(0, n)
    .map((k) => k.text)
    .join("");
  const ok = sameValue(stated, written) || sameValue(written, stated);
  return {
    kind: "result",
    text: `${body}>>${text}`,
    ok,
    ...(ok ? {} : { expected: stated.values[0].toDecimalString() }),
  };
}

interface Side {
  /** The value with "%" as /100, then (if a "%" appeared) with "%" as a unit label, then in cents if so labelled. */
  values: Rational[];
  hasOp: boolean;
  /** The side was one number literal, maybe with "%" ("33.33", "33.333%"), so it may be a rounded value. */
  literal: Token | null;
  /** The side was cut at a word: it may not be the whole operand. */
  truncated: boolean;
}

function side(tokens: Token[], truncated: boolean, cents = false): Side | "math" | null {
  if (tokens.length === 0) return null;
  const r = evaluate(tokens);
  if (!r.ok) return r.reason === "math" ? "math" : null;
  const values = [r.value];
  const readings: EvalOptions[] = [];
  if (r.percent) readings.push({ percentAsUnit: true });
  if (r.spacedFraction) readings.push({ groupFractions: false }, { groupFractions: false, percentAsUnit: r.percent });
  for (const opts of readings) {
    const alt = evaluate(tokens, opts);
    if (alt.ok && !values.some((v) => v.eq(alt.value))) values.push(alt.value);
  }
  if (cents) values.push(r.value.div(Rational.int(100)));
  const isLiteral = tokens[0].kind === "num" && (tokens.length === 1 || (tokens.length === 2 && tokens[1].op === "%"));
  return { values, hasOp: r.hasOp, literal: isLiteral ? tokens[0] : null, truncated };
}

/** Equal in some reading of "%", or `b` is a literal with >= 2 decimals that is `a` rounded. */
function sameValue(a: Side, b: Side): boolean {
  for (const x of a.values) for (const y of b.values) if (x.eq(y)) return true;
  if (!b.literal) return false;
  const places = decimalsOf(b.literal.text);
  if (places < 2) return false;
  for (const x of a.values) {
    const exactPlaces = x.decimalPlaces();
    if (exactPlaces !== null && exactPlaces <= places) continue;
    const r = x.round(places);
    if (b.values.some((y) => y.eq(r))) return true;
  }
  return false;
}

function decimalsOf(numText: string): number {
  const dot = numText.indexOf(".");
  return dot < 0 ? 0 : numText.length - dot - 1;
}

const EXPR_KINDS = new Set(["num", "op", "lp", "rp"]);

/** Words that join a number to more of the same quantity: an operand cut at one of them is only part of it. */
const CONNECTORS = new Set([
  "x",
  "X",
  "times",
  "of",
  "by",
  "per",
  "plus",
  "minus",
  "over",
  "and",
  "into",
  "twice",
  "thrice",
  "half",
  "double",
  "triple",
  "less",
  "more",
  "than",
  "divided",
  "multiplied",
]);

type Operand = Side | "math" | null;

/** Plain equations in text with its annotations removed. */
export function checkEquations(text: string): Check[] {
  const t = tokenize(text);
  const eqs: number[] = [];
  t.forEach((k, i) => {
    if (k.kind === "eq") eqs.push(i);
  });
  const checks: Check[] = [];
  let chainOp = false; // the previous equation had an operator and its right side was a whole segment
  for (let j = 0; j < eqs.length; j++) {
    const lo = j === 0 ? 0 : eqs[j - 1] + 1;
    const hi = j + 1 < eqs.length ? eqs[j + 1] : t.length;
    const e = eqs[j];
    const left = leftOperand(t, lo, e);
    const right = rightOperand(t, e + 1, hi);
    const prevOp: boolean = chainOp && left !== null && left !== "math" && !left.truncated;
    chainOp = false;
    if (left === null || right === null) continue;
    if (left !== "math" && left.truncated && !left.hasOp) continue;
    const math = left === "math" || right === "math";
    const hasOp: boolean = math || prevOp || left.hasOp || right.hasOp;
    chainOp = hasOp && right !== "math" && !right.truncated;
    if (!hasOp) continue;
    const shown = tokensText(t, left === "math" ? lo : e - leftLength(t, lo, e), e + 1 + rightLength(t, e + 1, hi));
    if (left === "math" || right === "math") {
      checks.push({ kind: "equation", text: shown, ok: false });
      continue;
    }
    const ok = sameValue(left, right);
    checks.push({ kind: "equation", text: shown, ok, ...(ok ? {} : { expected: left.values[0].toDecimalString() }) });
  }
  return checks;
}

/** Length of the expression run that ends at `end` (exclusive), not crossing an unmatched "(". */
function leftLength(t: Token[], lo: number, end: number): number {
  let depth = 0;
  let i = end - 1;
  for (; i >= lo && EXPR_KINDS.has(t[i].kind); i--) {
    if (t[i].kind === "rp") depth++;
    else if (t[i].kind === "lp" && --depth < 0) break;
  }
  return end - 1 - i;
}

/** Length of the expression run that starts at `start`, not crossing an unmatched ")". */
function rightLength(t: Token[], start: number, hi: number): number {
  let depth = 0;
  let i = start;
  for (; i < hi && EXPR_KINDS.has(t[i].kind); i++) {
    if (t[i].kind === "lp") depth++;
    else if (t[i].kind === "rp" && --depth < 0) break;
  }
  return i - start;
}

function leftOperand(t: Token[], lo: number, end: number): Operand {
  const n = leftLength(t, lo, end);
  if (n === 0) return null;
  const start = end - n;
  const first = t[start];
  const before: Token | undefined = t[start - 1];
  const truncated = start > lo;
  // An operator at the start continues a variable ("p - 5", "S*5"), unless it is a sign after punctuation.
  if (first.kind === "op" && !(first.op === "-" && (!truncated || before.kind === "other"))) return null;
  if (before?.kind === "word" && (CONNECTORS.has(before.text) || !first.spaced)) return null; // "x 2/3", "p(5+2)"
  if (before?.kind === "lp" && t[start - 2]?.kind === "op") return null; // "100+(100*0.1 = 110": inside a bracket
  return side(t.slice(start, end), truncated);
}

function rightOperand(t: Token[], start: number, hi: number): Operand {
  const n = rightLength(t, start, hi);
  if (n === 0) return null;
  const last = t[start + n - 1];
  if (last.kind === "op" && last.op !== "%") return null; // "= 5 + x"
  const next: Token | undefined = t[start + n];
  if (next?.kind === "word" && (CONNECTORS.has(next.text) || !next.spaced)) return null; // "= 5 and 2/3", "= 2S"
  const cents = next?.kind === "word" && (next.text === "cents" || next.text === "cent");
  return side(t.slice(start, start + n), start + n < hi, cents);
}

function tokensText(t: Token[], from: number, to: number): string {
  let s = "";
  for (let i = Math.max(0, from); i < Math.min(t.length, to); i++)
    s += (i > from && t[i].spaced ? " " : "") + t[i].text;
  return s;
}
