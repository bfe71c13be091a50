// The MATH-task answer checker: extraction from free-form output (extract.ts), then equivalence of the reference
// and the prediction over typed values (mathtree.ts, scalar.ts). Three-valued: true, false, or null when an answer
// does not parse, uses something the evaluator does not know, or the comparison runs past its time limit.
// The bias is against false accepts: what is not shown equal is not equal.
//
// Rules beyond scalar equality (scalar.ts states the numeric tolerance), following Math-Verify's behaviour where it
// is a choice (the reference is `gold`, the model's answer `pred`; the comparison is not symmetric):
//   - an assignment "x = 3" in the reference, or any equation "AB = 5" in the prediction, compares its right side
//     with a non-relation on the other side; equations (and "x \neq 3", "x != 3") compare side by side, or as
//     lhs - rhs (up to sign); "x = 1/3 \approx 0.33" is x = 1/3, and "x \approx 11" (nothing exact before) x = 11;
//   - an inequality in the reference ("1 \le x \le 2", "x > 3") equals the interval it describes ([1, 2], (3, \infty));
//     an interval in the reference is not matched by an inequality in the prediction;
//   - "(a, b)" is an open interval and "[a, b]" a closed one when compared with an interval; tuples and bracketed
//     lists compare in order; sets and bare lists ("1, 2") in any order, a list whose items are all equal to a
//     scalar ("1/2 or 0.5") equals it; unions of intervals in any order;
//   - a tuple "(2, 3)" equals assignments "a = 2, b = 3" to distinct variables, in the order written;
//   - "p%" reads as p/100, and as p where p is a whole number (50% = 0.5 = 50; 12.5% = 0.125 only);
//   - matrices compare entry by entry; text compares without case, spaces and a choice's parentheses ("\text{(A)}"
//     equals A and \text{A}).

import { extractFinal, type ExtractOptions, type PredSource } from "./extract.js";
import { cleanAnswer, readAnswer, type RelOp, type Value } from "./mathtree.js";
import { Rational } from "./rational.js";
import { Undecidable, freeVars, scalarsEqual, type Node } from "./scalar.js";

export interface MathCheckOptions extends ExtractOptions {
  /** Time limit per comparison in milliseconds (parsing included); default 1000. */
  timeMs?: number;
}

export interface MathVerdict {
  correct: boolean | null;
  pred: string | null;
  pred_source: PredSource | null;
  /** Offset of the answer in the output, -1 when none was found. */
  at: number;
}

/** Checks a free-form output against a reference final answer. No answer found is false. */
export function checkMathAnswer(output: string, gold: string, opts: MathCheckOptions = {}): MathVerdict {
  const ex = extractFinal(output, opts);
  if (!ex) return { correct: false, pred: null, pred_source: null, at: -1 };
  return { correct: mathAnswersEqual(gold, ex.text, opts), pred: ex.text, pred_source: ex.source, at: ex.at };
}

/** A plain decimal number (after cleanAnswer): compared exactly without the LaTeX parser. */
const PLAIN = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/** Whether a predicted final answer equals the reference final answer: true, false, or null (undecided). */
export function mathAnswersEqual(gold: string, pred: string, opts: { timeMs?: number } = {}): boolean | null {
  const g = gold.trim();
  const p = pred.trim();
  if (g === "" || p === "") return null;
  if (g === p) return true;
  const [cg, cp] = [cleanAnswer(g), cleanAnswer(p)];
  if (!cg.percent && !cp.percent && PLAIN.test(cg.latex) && PLAIN.test(cp.latex)) return plainEqual(cg.latex, cp.latex);
  const deadline = Date.now() + (opts.timeMs ?? 1000);
  try {
    const gv = cachedRead(g);
    const pv = readAnswer(p);
    return equal(gv, pv, deadline);
  } catch (e) {
    if (e instanceof Undecidable || e instanceof RangeError) return null;
    throw e;
  }
}

function plainEqual(a: string, b: string): boolean {
  const x = Rational.parseDecimal(a)!;
  const y = Rational.parseDecimal(b)!;
  if (x.eq(y)) return true;
  return (a.includes(".") || b.includes(".")) && x.round(6).eq(y.round(6));
}

const CACHE_SIZE = 512;
const cache = new Map<string, Value | Undecidable>();

/** References repeat across the N samples of a problem: their parsed values are kept (least recently used out). */
function cachedRead(s: string): Value {
  let v = cache.get(s);
  if (v === undefined) {
    try {
      v = readAnswer(s);
    } catch (e) {
      if (!(e instanceof Undecidable)) throw e;
      v = e;
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  } else cache.delete(s);
  cache.set(s, v);
  if (v instanceof Undecidable) throw v;
  return v;
}

/** The rules at the top of this file; throws Undecidable. */
function equal(g: Value, p: Value, deadline: number): boolean {
  if (Date.now() > deadline) throw new Undecidable("time limit");
  if (g.k === "rel" || p.k === "rel") return relationEqual(g, p, deadline);
  if (isIntervalLike(g) && isIntervalLike(p) && (g.k === "interval" || p.k === "interval")) {
    return intervalsEqual(asInterval(g), asInterval(p), deadline);
  }
  if (g.k === "scalar" && p.k === "scalar") {
    return percentReadings(g).some((a) => percentReadings(p).some((b) => scalarsEqual(a, b, deadline)));
  }
  if ((g.k === "set" || g.k === "list") && (p.k === "set" || p.k === "list")) {
    return unorderedEqual(g.items, p.items, deadline);
  }
  if (g.k === "scalar" && (p.k === "set" || p.k === "list")) return unorderedEqual([g], p.items, deadline);
  if (p.k === "scalar" && (g.k === "set" || g.k === "list")) return unorderedEqual(g.items, [p], deadline);
  if (g.k === "union" && p.k === "union") return unorderedEqual(g.parts, p.parts, deadline);
  if (g.k === "tuple" && p.k === "list") return assignmentsMatch(g.items, p.items, deadline);
  if (p.k === "tuple" && g.k === "list") return assignmentsMatch(p.items, g.items, deadline);
  if (g.k === "text" && p.k === "scalar") return textIsSymbol(g.s, p.n);
  if (p.k === "text" && g.k === "scalar") return textIsSymbol(p.s, g.n);
  if (g.k !== p.k) return false;
  if (g.k === "tuple" || g.k === "bracket") return orderedEqual(g.items, (p as typeof g).items, deadline);
  if (g.k === "matrix") return matrixEqual(g.rows, (p as typeof g).rows, deadline);
  if (g.k === "text") return choiceText(g.s) === choiceText((p as typeof g).s);
  return false;
}

/** A choice written as text, "\text{(A)}", against the letter A. */
function textIsSymbol(text: string, n: Node): boolean {
  return n.t === "sym" && choiceText(text) === n.name.toLowerCase();
}

/** Text without case, spaces and the parentheses of a choice: "(C)" is "c". */
function choiceText(text: string): string {
  return squash(text).replace(/^\((.*)\)$/, "$1");
}

function squash(s: string): string {
  return s.replace(/\s+/g, "").toLowerCase();
}

function percentReadings(v: Value & { k: "scalar" }): Node[] {
  if (!v.percent) return [v.n];
  const hundredth: Node = { t: "fn", head: "Divide", args: [v.n, { t: "num", s: "100" }] };
  return v.n.t === "num" && /^\d+$/.test(v.n.s) ? [hundredth, v.n] : [hundredth];
}

/** "(2, 3)" and "a = 2, b = 3": a tuple against assignments to distinct variables, in the order written. */
function assignmentsMatch(tuple: Value[], list: Value[], deadline: number): boolean {
  const rels = list.filter((v): v is Relation => v.k === "rel" && assignedValue(v) !== null);
  if (rels.length !== list.length) return false;
  const names = rels.map((r) => JSON.stringify(r.args[0]));
  if (new Set(names).size !== names.length) return false;
  return orderedEqual(
    tuple,
    rels.map((r) => r.args[1]),
    deadline,
  );
}

function orderedEqual(a: Value[], b: Value[], deadline: number): boolean {
  return a.length === b.length && a.every((x, i) => equal(x, b[i], deadline));
}

/** Multisets up to duplicates: every item of each side equals some item of the other. */
function unorderedEqual(a: Value[], b: Value[], deadline: number): boolean {
  const covers = (xs: Value[], ys: Value[]) => xs.every((x) => ys.some((y) => equal(x, y, deadline)));
  return covers(a, b) && covers(b, a);
}

function matrixEqual(a: Value[][], b: Value[][], deadline: number): boolean {
  return a.length === b.length && a.every((row, i) => orderedEqual(row, b[i], deadline));
}

type Interval = Value & { k: "interval" };

function isIntervalLike(v: Value): boolean {
  if (v.k === "interval") return true;
  return (v.k === "tuple" || v.k === "bracket") && v.items.length === 2 && v.items.every((x) => x.k === "scalar");
}

function asInterval(v: Value): Interval {
  if (v.k === "interval") return v;
  const [lo, hi] = (v as Value & { items: Value[] }).items as (Value & { k: "scalar" })[];
  const open = v.k === "tuple";
  return { k: "interval", lo: lo.n, hi: hi.n, loOpen: open, hiOpen: open };
}

function intervalsEqual(a: Interval, b: Interval, deadline: number): boolean {
  if (a.loOpen !== b.loOpen || a.hiOpen !== b.hiOpen) return false;
  return scalarsEqual(a.lo, b.lo, deadline) && scalarsEqual(a.hi, b.hi, deadline);
}

type Relation = Value & { k: "rel" };

function relationEqual(g: Value, p: Value, deadline: number): boolean {
  if (g.k === "rel" && p.k === "rel") return relationsEqual(g, p, deadline);
  if (g.k === "rel") {
    const rhs = assignedValue(g);
    if (rhs) return equal(rhs, p, deadline);
    const iv = inequalityInterval(g);
    return iv !== null && (p.k === "union" || isIntervalLike(p)) && equal(iv, p, deadline);
  }
  const r = p as Relation;
  return r.ops.length === 1 && r.ops[0] === "Equal" && equal(g, r.args[1], deadline); // "AB = 5", "f(x) = 2x+1"
}

/** The right side of "x = value" (a single variable on the left), else null. */
function assignedValue(r: Relation): Value | null {
  if (r.ops.length !== 1 || r.ops[0] !== "Equal") return null;
  const lhs = r.args[0];
  return lhs.k === "scalar" && lhs.n.t === "sym" ? r.args[1] : null;
}

/** "a < x <= b", "x > a", "x \le b" over one variable: the interval of x, else null. */
function inequalityInterval(r: Relation): Interval | null {
  if (r.ops.includes("Equal") || r.ops.includes("NotEqual")) return null;
  const isVar = (a: Value) => a.k === "scalar" && a.n.t === "sym" && freeVars(a.n).size === 1;
  const idx = r.args.findIndex(isVar);
  if (idx < 0 || r.args.length > 3 || r.args.some((a) => a.k !== "scalar")) return null;
  const infinity: Node = { t: "sym", name: "PositiveInfinity" };
  const inf = (sign: string): Node => (sign === "-" ? { t: "fn", head: "Negate", args: [infinity] } : infinity);
  const node = (i: number) => (r.args[i] as Value & { k: "scalar" }).n;
  const lo = idx > 0 ? node(idx - 1) : inf("-");
  const hi = idx < r.args.length - 1 ? node(idx + 1) : inf("+");
  const loOpen = idx > 0 ? r.ops[idx - 1] === "Less" : true;
  const hiOpen = idx < r.args.length - 1 ? r.ops[idx] === "Less" : true;
  return { k: "interval", lo, hi, loOpen, hiOpen };
}

function relationsEqual(a: Relation, b: Relation, deadline: number): boolean {
  const sameOps = (x: RelOp[], y: RelOp[]) => x.length === y.length && x.every((o, i) => o === y[i]);
  if (sameOps(a.ops, b.ops) && orderedEqual(a.args, b.args, deadline)) return true;
  if (a.ops.length === 1 && (a.ops[0] === "Equal" || a.ops[0] === "NotEqual") && sameOps(a.ops, b.ops)) {
    const da = difference(a);
    const db = difference(b);
    if (!da || !db) return false;
    return scalarsEqual(da, db, deadline) || scalarsEqual(da, { t: "fn", head: "Negate", args: [db] }, deadline);
  }
  const ia = inequalityInterval(a);
  const ib = inequalityInterval(b);
  return ia !== null && ib !== null && intervalsEqual(ia, ib, deadline);
}

function difference(r: Relation): Node | null {
  const [l, rr] = r.args;
  if (l.k !== "scalar" || rr.k !== "scalar") return null;
  return { t: "fn", head: "Subtract", args: [l.n, rr.n] };
}
