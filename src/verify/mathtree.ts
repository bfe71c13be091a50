// A final answer as a typed value: LaTeX is cleaned (dollar signs, \boxed, degrees, currency, thousands separators,
// a trailing period; a trailing "%" is remembered), parsed to MathJSON by the LaTeX parser of
// @cortex-js/compute-engine (its `latex-syntax` module only: the parser, without the symbolic engine), then read
// into one of the answer kinds the comparison knows: a scalar expression, a tuple "(a, b)", a bracketed list
// "[a, b]", a bare list ("a, b", "a \text{ or } b", "a \pm b"), a set, an interval, a union of intervals, a
// relation (an equation or a chain of inequalities), a matrix, or text. Unit text after a number
// ("5\text{ apples}", "4 \mathrm{cm}^2") is dropped; a whole number before a proper fraction is a mixed number
// (2\frac{1}{3} = 7/3).
// The parser is loaded on first use (about 40 ms), so that commands which check no LaTeX never pay for it.

import { createRequire } from "node:module";
import { Undecidable, type Node } from "./scalar.js";

export type RelOp = "Equal" | "NotEqual" | "Less" | "LessEqual";

export type Value =
  | { k: "scalar"; n: Node; percent: boolean }
  | { k: "tuple" | "bracket" | "list" | "set"; items: Value[] }
  | { k: "interval"; lo: Node; hi: Node; loOpen: boolean; hiOpen: boolean }
  | { k: "union"; parts: Value[] }
  | { k: "rel"; ops: RelOp[]; args: Value[] }
  | { k: "matrix"; rows: Value[][] }
  | { k: "text"; s: string };

type Json = number | string | { num?: string; sym?: string; str?: string; fn?: Json[] } | Json[];

let parser: ((latex: string) => Json) | null = null;

function parseLatex(latex: string): Json {
  if (!parser) {
    const mod = createRequire(import.meta.url)("@cortex-js/compute-engine/latex-syntax") as { parse(s: string): Json };
    parser = (s) => mod.parse(s);
  }
  return parser(latex);
}

/** Answers longer than this are not parsed (undecided): the parser's time grows with the input. */
export const MAX_ANSWER_CHARS = 2000;

/** Cleans an answer's LaTeX; `percent` tells whether a trailing "%" was removed. */
export function cleanAnswer(raw: string): { latex: string; percent: boolean } {
  let s = raw.trim();
  s = s
    .replace(/^\$+([\s\S]*?)\$+$/, "$1")
    .replace(/^\\\(([\s\S]*)\\\)$/, "$1")
    .replace(/^\\\[([\s\S]*)\\\]$/, "$1");
  const boxed = /^\\(?:boxed|fbox)\s*\{([\s\S]*)\}$/.exec(s.trim());
  if (boxed) s = boxed[1];
  if (s.includes("\\")) s = cleanCommands(s);
  s = s
    .replace(/°/g, "")
    .replace(/\{,\}/g, "")
    .replace(/!=/g, "\\neq ")
    .replace(/[\u2212\u2013]/g, "-")
    .trim()
    .replace(/,\s*$/, "") // "$\frac{1}{3},$" (but "1, 2, 3, \dots" keeps its comma)
    .replace(/(?:\\[,;: ]|\s|\.(?!\d))+$/, "")
    .trim();
  if (/^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, "");
  if (s.includes("\\approx")) s = approximation(s);
  s = s.replace(/(?<!\d)\d{1,3}(?:(?:\\[,; ]|~|\s)\d{3})+(?![\d.])/g, (m) => m.replace(/\D/g, "")); // 18\,000
  const pct = /^([\s\S]*?)\s*\\?%$/.exec(s);
  return pct && pct[1] !== "" ? { latex: pct[1], percent: true } : { latex: s, percent: false };
}

/** The LaTeX commands an answer can do without: degrees, dollars, the font of unit words, spacing; array matrices. */
function cleanCommands(s: string): string {
  return s
    .replace(/\^\s*(?:\{\s*\\circ\s*\}|\\circ)|\\degree(?![a-zA-Z])/g, "")
    .replace(/\\\$|\\textdollar(?![a-zA-Z])/g, "")
    .replace(/\\(?:textbf|textnormal|textrm|textit|textsf|texttt|mbox)\s*\{/g, "\\text{") // unit words in any font
    .replace(/,\\!\s*/g, ",") // 11,\! 111 is 11,111
    .replace(/\\left\s*[[(]\s*\\begin\{array\}\{[^{}]*\}/g, "\\begin{pmatrix}") // \left[\begin{array}{cc} is a matrix
    .replace(/\\end\{array\}\s*\\right\s*[\])]/g, "\\end{pmatrix}")
    .replace(/\\(?:displaystyle|[!])/g, "");
}

/**
 * "x = 1/3 \approx 0.33" is x = 1/3: an approximation after an exact value is dropped; "x \approx 11" (nothing
 * exact before it) is read as x = 11.
 */
function approximation(s: string): string {
  const at = s.search(/\\approx(?![a-zA-Z])/);
  if (at < 0) return s;
  if (/(?<![<>!\\])=/.test(s.slice(0, at))) return s.slice(0, at).trim();
  return s.replace(/\\approx(?![a-zA-Z])/g, "=");
}

/** The value of an answer; throws Undecidable when it cannot be parsed. */
export function readAnswer(raw: string): Value {
  if (raw.length > MAX_ANSWER_CHARS) throw new Undecidable("answer too long to parse");
  const { latex, percent } = cleanAnswer(raw);
  if (latex === "") throw new Undecidable("empty answer");
  // the parser joins digits across any space ("2 3" = 23); only thousands groups (cleaned above) may be so joined,
  // and a subscript or superscript digit may be followed by a space ("\log_2 8")
  if (/(?<![_^]\d*)\d(?:\s|\\[,;:! ]|~|\\enspace|\\q?quad)+\d/.test(latex)) {
    throw new Undecidable("digits separated by a space");
  }
  let json: Json;
  try {
    json = parseLatex(latex);
  } catch (e) {
    throw new Undecidable(`LaTeX parser failed: ${(e as Error).message}`);
  }
  const v = toValue(toNode(json));
  return percent && v.k === "scalar" ? { ...v, percent: true } : v;
}

/** MathJSON (any of its spellings) to Node; a parse error anywhere throws Undecidable. */
function toNode(j: Json | null | undefined): Node {
  if (j === null || j === undefined) throw new Undecidable("incomplete MathJSON");
  if (typeof j === "number") return { t: "num", s: String(j) };
  if (typeof j === "string") {
    if (/^'[\s\S]*'$/.test(j)) return { t: "str", s: j.slice(1, -1) };
    return { t: "sym", name: j };
  }
  if (Array.isArray(j)) return fnNode(j);
  if (j.num !== undefined) return { t: "num", s: j.num };
  if (j.sym !== undefined) return { t: "sym", name: j.sym };
  if (j.str !== undefined) return { t: "str", s: j.str };
  if (j.fn !== undefined) return fnNode(j.fn);
  throw new Undecidable("unknown MathJSON");
}

function fnNode(j: Json[]): Node {
  const head = typeof j[0] === "string" ? j[0] : null;
  if (head === null || head === "Error") throw new Undecidable("LaTeX did not parse");
  const args = j
    .slice(1)
    .map(toNode)
    .filter((a) => !(a.t === "fn" && a.head === "HorizontalSpacing"));
  if (head === "InvisibleOperator") return productWithoutUnits(args);
  return { t: "fn", head, args };
}

/** "5\text{ apples}" = InvisibleOperator(5, 'apples'): the unit text after a number is dropped. */
function productWithoutUnits(args: Node[]): Node {
  const isUnit = (a: Node) => a.t === "str" || (a.t === "fn" && a.head === "__unit__");
  const kept = args.filter((a) => !isUnit(a));
  if (kept.length === 0 || (kept.length < args.length && !isUnit(args[args.length - 1]))) {
    throw new Undecidable("text inside an expression");
  }
  if (kept.length === 1) return kept[0];
  return mixedNumber(kept) ?? { t: "fn", head: "InvisibleOperator", args: kept };
}

/** "2\frac{1}{3}" = 7/3: a whole number followed by a proper fraction of whole numbers. */
function mixedNumber(args: Node[]): Node | null {
  const [w, f] = args;
  if (args.length !== 2 || w.t !== "num" || !/^\d+$/.test(w.s) || f.t !== "fn" || f.head !== "Divide") return null;
  const [a, b] = f.args;
  const whole = (x: Node | undefined): x is Node & { t: "num" } => x?.t === "num" && /^\d+$/.test(x.s);
  if (!whole(a) || !whole(b) || BigInt(a.s) >= BigInt(b.s)) return null;
  return { t: "fn", head: "Add", args: [w, f] };
}

const REL: Record<string, { op: RelOp; flip: boolean }> = {
  Equal: { op: "Equal", flip: false },
  NotEqual: { op: "NotEqual", flip: false },
  Less: { op: "Less", flip: false },
  LessEqual: { op: "LessEqual", flip: false },
  Greater: { op: "Less", flip: true },
  GreaterEqual: { op: "LessEqual", flip: true },
};

function toValue(n: Node): Value {
  if (n.t === "str") return { k: "text", s: n.s };
  if (n.t !== "fn") return scalar(n);
  const items = () => n.args.map(toValue);
  switch (n.head) {
    case "Delimiter":
      return delimited(n);
    case "Sequence":
      return { k: "list", items: items() };
    case "List":
      return { k: "bracket", items: items() };
    case "Tuple":
      return { k: "tuple", items: items() };
    case "Set":
      return { k: "set", items: items() };
    case "Interval":
      return interval(n.args);
    case "Union":
      return { k: "union", parts: items() };
    case "Element":
      return toValue(n.args[1]);
    case "Or":
    case "And":
      return { k: "list", items: items() }; // "x = 2 \text{ or } x = 3"
    case "Measurement":
      return plusMinus(n.args); // "1 \pm \sqrt{2}"
    case "Matrix":
      return matrix(n.args[0]);
    case "Text":
      return { k: "text", s: n.args.map((a) => (a.t === "str" ? a.s : "")).join("") };
  }
  if (n.head in REL) return relation(n);
  return scalar(n);
}

/** a \pm b is the list a + b, a - b. */
function plusMinus([a, b]: Node[]): Value {
  if (!a || !b) throw new Undecidable("\\pm without two sides");
  const sum: Node = { t: "fn", head: "Add", args: [a, b] };
  const diff: Node = { t: "fn", head: "Subtract", args: [a, b] };
  return { k: "list", items: [scalar(sum), scalar(diff)] };
}

function scalar(n: Node): Value {
  return { k: "scalar", n, percent: false };
}

/** Delimiter(Sequence(...), "(,)") is a tuple, Delimiter(Sequence(...), ",") a bare list, Delimiter(x) is x. */
function delimited(n: Node & { t: "fn" }): Value {
  const [body, style] = n.args;
  const fence = style?.t === "str" ? style.s : "(,)";
  const parts = body.t === "fn" && body.head === "Sequence" ? body.args : [body];
  if (parts.length === 1 && fence.length > 1) return toValue(parts[0]);
  const items = parts.map(toValue);
  if (fence === "," || fence === ";") return { k: "list", items };
  if (fence.startsWith("[")) return { k: "bracket", items };
  if (fence.startsWith("{") || fence.startsWith("\\{")) return { k: "set", items };
  return { k: "tuple", items };
}

function interval(args: Node[]): Value {
  const end = (a: Node): [Node, boolean] => (a.t === "fn" && a.head === "Open" ? [a.args[0], true] : [a, false]);
  if (args.length !== 2) throw new Undecidable("interval without two ends");
  const [lo, loOpen] = end(args[0]);
  const [hi, hiOpen] = end(args[1]);
  return { k: "interval", lo, hi, loOpen, hiOpen };
}

function matrix(rows: Node | undefined): Value {
  if (rows?.t !== "fn" || rows.head !== "List") throw new Undecidable("matrix");
  return {
    k: "matrix",
    rows: rows.args.map((r) => (r.t === "fn" && r.head === "List" ? r.args.map(toValue) : [toValue(r)])),
  };
}

/** Equal / Less / Greater chains, nested ones ("1 < x \le 2" = LessEqual(Less(1, x), 2)) flattened. */
function relation(n: Node & { t: "fn" }): Value {
  const { op, flip } = REL[n.head];
  let ops: RelOp[] = [];
  let args: Value[] = [];
  const first = n.args[0];
  const ordering = op === "Less" || op === "LessEqual";
  if (first.t === "fn" && first.head in REL && ordering && REL[first.head].flip === flip) {
    const inner = relation(first) as Value & { k: "rel" };
    if (flip) throw new Undecidable("mixed chain");
    ops = inner.ops;
    args = inner.args;
    n = { ...n, args: n.args.slice(1) };
  }
  args.push(...n.args.map(toValue));
  while (ops.length < args.length - 1) ops.push(op);
  if (flip) {
    args.reverse();
    ops.reverse();
  }
  return { k: "rel", ops, args };
}
