// Final answers: extraction from a solution ("#### n", "\boxed{...}", "The answer is ...") and equivalence by exact
// arithmetic. Equivalence is three-valued: true, false, or null when it cannot be decided (a symbolic answer this
// module cannot evaluate is never guessed at).
//
// What counts as the same number: "1,080" = "1080" = "1080.00" = "$1,080" = "1080 dollars"; "-3/4" = "-0.75" =
// "\frac{-3}{4}" = "-\dfrac{3}{4}"; "2 1/2" = "2\frac{1}{2}" = "5/2"; "2\sqrt{3}" = "\sqrt{12}"; "10^3" = "1000".
// "50%" equals both 50 (the percent sign as a unit, as GSM8K writes answers) and 0.5.

import { parseValue, type ParsedValue } from "./latex.js";
import type { Surd } from "./surd.js";

export type AnswerStyle = "gsm8k" | "math";

/** The rest of the line after the first "####" (what follows it is not part of the solution), or null. */
export function extractHashAnswer(text: string): string | null {
  const at = text.indexOf("####");
  if (at < 0) return null;
  const line = text
    .slice(at + 4)
    .split("\n")[0]
    .trim();
  return line === "" ? null : line;
}

/** The content of the last \boxed{...} (nested braces allowed) or \boxed x, or null. */
export function extractBoxed(text: string): string | null {
  const m = [...text.matchAll(/\\(?:boxed|fbox)\s*/g)].pop();
  if (!m) return null;
  let i = m.index! + m[0].length;
  if (text[i] !== "{") {
    const bare = /^[^\s$]+/.exec(text.slice(i));
    return bare ? bare[0] : null;
  }
  const start = ++i;
  for (let depth = 1; i < text.length; i++) {
    if (text[i] === "\\") {
      i++;
      continue;
    } // "\{" and "\}" do not count
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) {
      const inner = text.slice(start, i).trim();
      return inner === "" ? null : inner;
    }
  }
  return null; // unbalanced
}

const ANSWER_IS = /(?:final\s+answer|answer)\s*(?:is|:)\s*:?\s*/gi;

/** The rest of the sentence after the last "The answer is" / "Final answer:", or null. */
export function extractAnswerIs(text: string): string | null {
  const m = [...text.matchAll(ANSWER_IS)].pop();
  if (!m) return null;
  let rest = text.slice(m.index! + m[0].length).split("\n")[0];
  const end = /\.(?:\s|$)/.exec(rest);
  if (end) rest = rest.slice(0, end.index);
  rest = rest.replace(/^\*\*|\*\*$/g, "").trim();
  return rest === "" ? null : rest;
}

/** The final answer of a solution; `style` decides whether "####" or \boxed wins when both occur. */
export function extractAnswer(text: string, style: AnswerStyle = "gsm8k"): string | null {
  const hash = extractHashAnswer(text);
  if (style === "gsm8k" && hash !== null) return hash;
  const boxed = extractBoxed(text);
  if (boxed !== null) return boxed;
  return hash ?? extractAnswerIs(text);
}

/** A reference answer: the final answer of a full solution, or the text itself when it is just the answer. */
export function referenceAnswer(answer: string, style: AnswerStyle = "gsm8k"): string {
  const a = extractHashAnswer(answer) ?? extractBoxed(answer);
  if (a !== null) return a;
  return style === "math" ? (extractAnswerIs(answer) ?? answer.trim()) : answer.trim();
}

const NUMBER_WORDS: Record<string, string> = {
  zero: "0",
  one: "1",
  two: "2",
  three: "3",
  four: "4",
  five: "5",
  six: "6",
  seven: "7",
  eight: "8",
  nine: "9",
  ten: "10",
  eleven: "11",
  twelve: "12",
  thirteen: "13",
  fourteen: "14",
  fifteen: "15",
  sixteen: "16",
  seventeen: "17",
  eighteen: "18",
  nineteen: "19",
  twenty: "20",
  thirty: "30",
  forty: "40",
  fifty: "50",
  sixty: "60",
  seventy: "70",
  eighty: "80",
  ninety: "90",
  hundred: "100",
  thousand: "1000",
  half: "1/2",
};

/** Trailing unit words: "apples", "sq ft", "km/h", "cm^2", "dollars per hour"; not LaTeX commands ("\pi"). */
const UNIT_WORD = String.raw`(?:[a-zA-Z]{2,}|[mgslLhKVWJ](?![a-zA-Z]))(?:\/[a-zA-Z]+)?(?:\^\{?\d\}?)?`;
const UNIT_TAIL = new RegExp(String.raw`^(.*?[\d})%])\s*((?<![\\a-zA-Z])${UNIT_WORD}(?:\s+${UNIT_WORD})*)\.?$`);

/** Rewrites an answer to a canonical spelling; parseValue reads what comes out. */
export function normalizeAnswer(raw: string): string {
  let s = raw.trim();
  const boxed = /^\\boxed\s*\{/.test(s) ? extractBoxed(s) : null;
  if (boxed !== null) s = boxed;
  s = s
    .replace(/^\$([^$]+)\$$/, "$1")
    .replace(/^\\\(([\s\S]*)\\\)$/, "$1")
    .replace(/^\\\[([\s\S]*)\\\]$/, "$1");
  for (let prev = ""; prev !== s; ) {
    prev = s;
    s = s.replace(/\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|textnormal|operatorname)\s*\{([^{}]*)\}/g, " $1 ");
  }
  s = s
    .replace(/\\(?:left|right|bigg|Bigg|big|Big|displaystyle)(?![a-zA-Z])/g, "")
    .replace(/\\[!,]/g, "")
    .replace(/\\[;: ]|\\q?quad|~/g, " ")
    .replace(/\^\s*\{?\s*\\circ\s*\}?|°|\\degree/g, "")
    .replace(/\\%/g, "%")
    .replace(/\\\$/g, "$")
    .replace(/\{,\}/g, ",")
    .replace(/[\u2212\u2013]/g, "-")
    .replace(/[\u00d7\u00b7]/g, "*")
    .replace(/\u00f7/g, "/")
    .trim()
    .replace(/[.\s]+$/, "")
    .replace(/^[a-zA-Z]\s*=\s*/, "")
    .replace(/^([+-]?)\s*(?:US\$|\$|€|£|¥|₹|USD|EUR|GBP|INR|Rs\.?)\s*/, "$1");
  if (!/^[([{]/.test(s)) {
    s = s
      .replace(/\b\d{1,3}(?:,\d{3})+(?![\d,])/g, (m) => m.replace(/,/g, ""))
      .replace(/\b\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d/])/g, (m) => m.replace(/\D/g, ""));
  }
  for (let m = UNIT_TAIL.exec(s); m; m = UNIT_TAIL.exec(s)) s = m[1];
  const word = NUMBER_WORDS[s.toLowerCase()];
  return word ?? s.trim();
}

function readings(p: ParsedValue): Surd[] {
  return p.unitReading ? [p.value, p.unitReading] : [p.value];
}

function valuesEqual(a: ParsedValue, b: ParsedValue): boolean {
  for (const x of readings(a)) for (const y of readings(b)) if (x.eq(y)) return true;
  return false;
}

/**
 * Whether a predicted answer equals a reference answer: true, false, or null (undecided). Both are final answers,
 * not solutions (use extractAnswer / referenceAnswer first).
 */
export function answersEqual(pred: string, ref: string): boolean | null {
  const a = normalizeAnswer(pred);
  const b = normalizeAnswer(ref);
  if (a === "" || b === "") return null;
  if (a === b) return true;
  const va = parseValue(a);
  const vb = parseValue(b);
  if (va && vb) return valuesEqual(va, vb);
  const la = splitList(a);
  const lb = splitList(b);
  if (la && lb) return listsEqual(la, lb);
  if (squash(a) === squash(b)) return true;
  return null;
}

function squash(s: string): string {
  return s.replace(/\s+/g, "").toLowerCase();
}

interface List {
  open: string;
  close: string;
  items: string[];
}

/** "(1, 2)", "[0, 1)", "1, 2, 3": top-level comma-separated items; null for a single item. */
function splitList(s: string): List | null {
  let open = "";
  let close = "";
  const m = /^(\\\{|[([])([\s\S]*)(\\\}|[)\]])$/.exec(s);
  if (m) [open, s, close] = [m[1], m[2], m[3]];
  const items: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      items.push(s.slice(from, i));
      from = i + 1;
    }
    if (depth < 0) return null;
  }
  items.push(s.slice(from));
  if (items.length < 2 && open === "") return null;
  return { open, close, items: items.map((x) => normalizeAnswer(x)) };
}

/** Bracketed lists compare in order (tuples, intervals); bare lists and sets as multisets. */
function listsEqual(a: List, b: List): boolean | null {
  if (a.open !== b.open || a.close !== b.close) return a.open !== "" && b.open !== "" ? false : null;
  if (a.items.length !== b.items.length) return false;
  const ordered = a.open === "(" || a.open === "[";
  if (ordered) {
    let undecided = false;
    for (let i = 0; i < a.items.length; i++) {
      const e = answersEqual(a.items[i], b.items[i]);
      if (e === false) return false;
      if (e === null) undecided = true;
    }
    return undecided ? null : true;
  }
  const used = new Array<boolean>(b.items.length).fill(false);
  let undecided = false;
  for (const x of a.items) {
    let found = false;
    for (let j = 0; j < b.items.length && !found; j++) {
      if (used[j]) continue;
      const e = answersEqual(x, b.items[j]);
      if (e === true) {
        used[j] = true;
        found = true;
      } else if (e === null) undecided = true;
    }
    if (!found) return undecided ? null : false;
  }
  return true;
}
