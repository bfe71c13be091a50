// Scalar expressions of a parsed answer (a MathJSON tree, see mathtree.ts): exact values where the expression is
// built from rationals and square roots (Surd: 2\sqrt{3} = \sqrt{12} decided exactly), float64 values otherwise
// (\pi, e, logarithms, trigonometry, roots of any order, variables bound to sample points).
//
// Two scalars are equal when:
//   - both are exact: their exact values are equal; or, when either is written with a decimal point, they agree
//     after rounding both to 6 decimal places (1/6 = 0.166667, as Math-Verify's float_rounding=6);
//   - otherwise, at every sample point (6 fixed pseudo-random points, distinct values for each variable) the float64
//     values agree to a relative 1e-9 (or after rounding to 6 places where a decimal is written); at least 3 points
//     must be defined, and a value that overflows to infinity decides nothing.
// Anything this module cannot evaluate (an unknown function, complex numbers, repeating decimals) throws
// Undecidable, which the caller reports as null.

import { Rational } from "./rational.js";
import { Surd } from "./surd.js";

/** A MathJSON node, reduced to four shapes. */
export type Node =
  | { t: "num"; s: string }
  | { t: "sym"; name: string }
  | { t: "str"; s: string }
  | { t: "fn"; head: string; args: Node[] };

/** The comparison cannot be decided (the caller answers null). */
export class Undecidable extends Error {}

const CONSTANTS: Record<string, number> = {
  Pi: Math.PI,
  ExponentialE: Math.E,
  e: Math.E,
  PositiveInfinity: Infinity,
  NegativeInfinity: -Infinity,
};

/** Free variables: symbols that are not known constants. */
export function freeVars(n: Node, out = new Set<string>()): Set<string> {
  if (n.t === "sym" && !(n.name in CONSTANTS)) out.add(n.name);
  if (n.t === "fn") for (const a of n.args) freeVars(a, out);
  return out;
}

/** Whether a number is written with a decimal point somewhere in the expression. */
export function hasDecimal(n: Node): boolean {
  if (n.t === "num") return /\./.test(n.s);
  return n.t === "fn" && n.args.some(hasDecimal);
}

const EXACT_POWER = 64;

/** The exact value, or null when the expression leaves rationals and square roots (or is too large). */
export function exactValue(n: Node): Surd | null {
  try {
    return exact(n);
  } catch (e) {
    if (e instanceof RangeError || e instanceof NotExact) return null;
    throw e;
  }
}

class NotExact extends Error {}

function exact(n: Node): Surd {
  if (n.t === "num") {
    const q = Rational.parseDecimal(n.s);
    if (!q) throw new NotExact();
    return Surd.rational(q);
  }
  if (n.t !== "fn") throw new NotExact();
  const a = n.args;
  switch (n.head) {
    case "Add":
      return a.map(exact).reduce((x, y) => x.add(y));
    case "Subtract":
      return a.length === 2 ? exact(a[0]).sub(exact(a[1])) : exact(a[0]).neg();
    case "Negate":
      return exact(a[0]).neg();
    case "Multiply":
    case "InvisibleOperator":
      return a.map(exact).reduce((x, y) => x.mul(y));
    case "Divide":
    case "Rational":
      return exact(a[0]).div(exact(a[1]));
    case "Sqrt":
      return exact(a[0]).sqrt();
    case "Delimiter":
      if (a.length === 1) return exact(a[0]);
      break;
    case "Root":
      if (a.length === 2 && exact(a[1]).eq(Surd.rational(Rational.int(2)))) return exact(a[0]).sqrt();
      break;
    case "Power":
      return exactPower(exact(a[0]), exact(a[1]));
  }
  throw new NotExact();
}

function exactPower(base: Surd, e: Surd): Surd {
  const q = e.asRational();
  if (!q) throw new NotExact();
  if (q.isInteger() && Math.abs(Number(q.num)) <= EXACT_POWER) return base.pow(Number(q.num));
  if (q.eq(Rational.of(1n, 2n))) return base.sqrt();
  throw new NotExact();
}

/** The float64 value with variables bound by `env`. */
export function numericValue(n: Node, env: ReadonlyMap<string, number>): number {
  switch (n.t) {
    case "num": {
      if (/[()]/.test(n.s)) throw new Undecidable("repeating decimal");
      const v = Number(n.s);
      if (Number.isNaN(v)) throw new Undecidable(`number ${n.s}`);
      return v;
    }
    case "sym": {
      const v = CONSTANTS[n.name] ?? env.get(n.name);
      if (v === undefined) throw new Undecidable(`symbol ${n.name}`);
      return v;
    }
    case "str":
      throw new Undecidable("text in an expression");
    case "fn":
      return applyFn(
        n.head,
        n.args.map((a) => numericValue(a, env)),
      );
  }
}

const UNARY: Record<string, (x: number) => number> = {
  Negate: (x) => -x,
  Sqrt: Math.sqrt,
  Exp: Math.exp,
  Ln: Math.log,
  Lb: Math.log2,
  Lg: Math.log10,
  Abs: Math.abs,
  Sin: Math.sin,
  Cos: Math.cos,
  Tan: Math.tan,
  Sec: (x) => 1 / Math.cos(x),
  Csc: (x) => 1 / Math.sin(x),
  Cot: (x) => 1 / Math.tan(x),
  Arcsin: Math.asin,
  Arccos: Math.acos,
  Arctan: Math.atan,
  Sinh: Math.sinh,
  Cosh: Math.cosh,
  Tanh: Math.tanh,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Degrees: (x) => (x * Math.PI) / 180,
  Factorial: factorial,
  Delimiter: (x) => x,
  Square: (x) => x * x,
};

function applyFn(head: string, v: number[]): number {
  const one = UNARY[head];
  if (one && v.length === 1) return one(v[0]);
  switch (head) {
    case "Add":
      return v.reduce((x, y) => x + y, 0);
    case "Subtract":
      return v.length === 2 ? v[0] - v[1] : -v[0];
    case "Multiply":
    case "InvisibleOperator":
      return v.reduce((x, y) => x * y, 1);
    case "Divide":
    case "Rational":
      if (v.length === 2) return v[0] / v[1];
      break;
    case "Power":
      if (v.length === 2) return v[0] ** v[1];
      break;
    case "Root":
      if (v.length === 2) return root(v[0], v[1]);
      break;
    case "Log":
      if (v.length <= 2) return Math.log(v[0]) / Math.log(v[1] ?? 10);
      break;
    case "Binomial":
      if (v.length === 2) return factorial(v[0]) / (factorial(v[1]) * factorial(v[0] - v[1]));
      break;
    case "Max":
      return Math.max(...v);
    case "Min":
      return Math.min(...v);
  }
  throw new Undecidable(`function ${head}`);
}

function root(x: number, k: number): number {
  if (x < 0 && Number.isInteger(k) && k % 2 === 1) return -((-x) ** (1 / k));
  return x ** (1 / k);
}

function factorial(x: number): number {
  if (!Number.isInteger(x) || x < 0 || x > 170) return NaN;
  let f = 1;
  for (let i = 2; i <= x; i++) f *= i;
  return f;
}

/** Sample points per comparison, and the value of variable i at point p: irregular, in (-3.3, -0.3) or (0.3, 3.3). */
const POINTS = 6;
const REL_TOL = 1e-9;

function sample(p: number, i: number): number {
  const h = Math.abs(Math.sin((p + 1) * 12.9898 + (i + 1) * 78.233) * 43758.5453) % 1;
  return (p % 3 === 2 ? -1 : 1) * (0.3 + 3 * h);
}

function round6(x: number): number {
  return Math.abs(x) < 1e9 ? Math.round(x * 1e6) : x;
}

function close(a: number, b: number, rounded: boolean): boolean {
  if (Math.abs(a - b) <= REL_TOL * Math.max(1, Math.abs(a), Math.abs(b))) return true;
  return rounded && round6(a) === round6(b);
}

function hasInfinity(n: Node): boolean {
  if (n.t === "sym") return n.name === "PositiveInfinity" || n.name === "NegativeInfinity";
  return n.t === "fn" && n.args.some(hasInfinity);
}

/** An infinite value from an overflow (2^{10^6}) decides nothing; one written as \infty equals only the same \infty. */
function infinitiesEqual(a: Node, x: number, b: Node, y: number): boolean {
  if ((!Number.isFinite(x) && !hasInfinity(a)) || (!Number.isFinite(y) && !hasInfinity(b))) {
    throw new Undecidable("overflow");
  }
  return x === y;
}

/** Whether two scalars are equal (rules at the top of this file); throws Undecidable. */
export function scalarsEqual(a: Node, b: Node, deadline: number): boolean {
  const rounded = hasDecimal(a) || hasDecimal(b);
  const ea = exactValue(a);
  const eb = exactValue(b);
  if (ea && eb) {
    if (ea.eq(eb)) return true;
    if (!rounded) return false;
    const [qa, qb] = [ea.asRational(), eb.asRational()];
    if (qa && qb) return qa.round(6).eq(qb.round(6));
  }
  const vars = [...freeVars(a, freeVars(b))];
  let defined = 0;
  for (let p = 0; p < (vars.length === 0 ? 1 : POINTS); p++) {
    if (Date.now() > deadline) throw new Undecidable("time limit");
    const env = new Map(vars.map((v, i) => [v, sample(p, i)] as const));
    const [x, y] = [numericValue(a, env), numericValue(b, env)];
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    if (!Number.isFinite(x) || !Number.isFinite(y)) return infinitiesEqual(a, x, b, y);
    if (!close(x, y, rounded)) return false;
    defined++;
  }
  if (defined >= (vars.length === 0 ? 1 : 3)) return true;
  throw new Undecidable("expressions undefined at the sample points");
}
