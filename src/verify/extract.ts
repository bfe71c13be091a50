// Final answers from free-form model output (MATH-style solutions), in order of evidence:
//   1. the last \boxed{} / \fbox{} (with the boxed answers right before it joined into a list when only "and", ","
//      or "or" separate them: "the roots are \boxed{2} and \boxed{5}" answers "2, 5");
//   2. the rest of the sentence after the last "final answer is" / "the answer is" / "answer:" (its first math
//      span, or the spans that "and", "or", "," join: "$x = 2$ or $x = 3$" answers "x = 2, x = 3"; else plain
//      arithmetic: "2^2", "1/2 = 0.5" answers "0.5");
//      a math span there that comes after the last box overrides 1. ("\boxed{255} ... The final answer is $10,455$");
//      a span that only names the unknown takes the plain value after it ("The largest $n$ is 34" answers 34);
//   3. the rest of the line after the first "####"; an output that is one formula without delimiters is that formula;
//   4. whichever comes later in the text: the last LaTeX math span ($...$, $$...$$, \(...\), \[...\]; of a
//      chain "16 + 6 = 22" or "x = 2 + 3 = 5" its last side, while an equation "x = 5" stays whole) or the last
//      plain number or fraction outside math spans ("3/4", "75%"); spans joined as in 1. and 2.
// What each step may return depends on the extraction targets, as Math-Verify's extraction configs do: "latex"
// (boxed answers and math spans), "expr" (plain numbers and fractions), "string" (multiple-choice letters).
// Number words ("five") are never read: an answer in words counts as no answer.

export type ExtractionTarget = "latex" | "expr" | "string";
export type PredSource = "boxed" | "answer_is" | "hash" | "latex" | "expr" | "string";

export interface Extracted {
  text: string;
  source: PredSource;
  /** Offset in the output where the answer was found (to locate the step that states it). */
  at: number;
}

export interface ExtractOptions {
  /** Which kinds of answer to look for; default ["latex", "expr"] (Math-Verify's default configs). */
  targets?: readonly ExtractionTarget[];
  /** The choice letters the "string" target looks for; default A-D. */
  choices?: readonly string[];
}

export const DEFAULT_TARGETS: readonly ExtractionTarget[] = ["latex", "expr"];

/** The final answer of a free-form output, or null when none is found for the targets asked for. */
export function extractFinal(text: string, opts: ExtractOptions = {}): Extracted | null {
  const targets = opts.targets ?? DEFAULT_TARGETS;
  const choices = opts.choices ?? ["A", "B", "C", "D"];
  const latex = targets.includes("latex");
  const b = latex ? boxedAnswer(text) : null;
  const anchor = lastAnchor(text, b?.end ?? 0);
  // a math span after "final answer is", stated after the last box, supersedes it ("... = \boxed{255}. ... The
  // final answer is $10,455$."); a plain number there does not ("so $x = \boxed{7}$. Then the answer is 8.")
  if (b && !(anchor && anchor.index >= b.end)) return b;
  const anchored = anchor ? anchoredAnswer(text, anchor.index + anchor[0].length, targets, choices) : null;
  if (b && !(anchored && mathAt(text, anchored.at))) return b;
  if (anchored) return anchored;
  const hash = hashAnswer(text);
  if (hash) return hash;
  if (latex && isBareFormula(text)) return { text: text.trim(), source: "latex", at: text.search(/\S/) };
  const candidates = [
    latex ? lastMathSpan(text) : null,
    targets.includes("expr") ? lastNumber(text) : null,
    targets.includes("string") ? lastChoice(text, choices, 0) : null,
  ].filter((c): c is Extracted => c !== null);
  return candidates.sort((a, b) => b.at - a.at)[0] ?? null;
}

interface Box {
  inner: string;
  start: number;
  end: number;
}

/** Every \boxed{...} / \fbox{...} (nested braces allowed) or "\boxed 5", in order. */
export function boxes(text: string): Box[] {
  const out: Box[] = [];
  for (const m of text.matchAll(/\\(?:boxed|fbox)\s*/g)) {
    let i = m.index + m[0].length;
    if (text[i] !== "{") {
      const bare = /^[^\s$]+?(?=[.,;]*(?:[\s$]|$))/.exec(text.slice(i)); // "\boxed 4." is 4
      if (bare) out.push({ inner: bare[0], start: m.index, end: i + bare[0].length });
      continue;
    }
    const from = ++i;
    for (let depth = 1; i < text.length; i++) {
      if (text[i] === "\\") {
        i++;
        continue;
      }
      if (text[i] === "{") depth++;
      else if (text[i] === "}" && --depth === 0) break;
    }
    if (i < text.length) out.push({ inner: text.slice(from, i).trim(), start: m.index, end: i + 1 });
  }
  return out.filter((b) => b.inner !== "");
}

const JOINER = /^[\s$,;]*(?:(?:and|or)[\s$,;]*)?$/;

/** An output that is one LaTeX formula without delimiters ("\\frac{10}{9}"): a command, no words, one line. */
function isBareFormula(text: string): boolean {
  if (text.length > 200 || !text.includes("\\")) return false;
  const t = text.trim();
  if (/\n|\$|\\[([]/.test(t) || !/\\[a-zA-Z]+/.test(t)) return false;
  return !/[a-zA-Z]{2,}/.test(t.replace(/\\[a-zA-Z]+/g, " "));
}

function boxedAnswer(text: string): (Extracted & { end: number }) | null {
  const all = boxes(text);
  if (all.length === 0) return null;
  const group = [all[all.length - 1]];
  for (let k = all.length - 2; k >= 0; k--) {
    if (!JOINER.test(text.slice(all[k].end, group[0].start))) break;
    group.unshift(all[k]);
  }
  const parts = [...new Set(group.map((b) => b.inner))];
  return { text: parts.join(", "), source: "boxed", at: group[0].start, end: group[group.length - 1].end };
}

const ANCHOR = /(?:final\s+answer|answer)\s*(?:is|:)\s*:?\s*|(?:correct\s+)?(?:choice|option)\s+is\s*/gi;
const SPAN = /\$\$([\s\S]+?)\$\$|(?<!\\)\$((?:\\[\s\S]|[^$\\])+)\$|\\\(([\s\S]+?)\\\)|\\\[([\s\S]+?)\\\]/g;

/** Arithmetic on plain numbers after an anchor: "42", "3/4", "2^2", "6*7 = 42", "75%". */
const NUM = String.raw`[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)`;
const ARITH = String.raw`${NUM}(?:\s*[-+*/^]\s*${NUM})*`;
const PLAIN_EXPR = new RegExp(String.raw`^${ARITH}(?:\s*=\s*${ARITH})*\s*%?`);

/** The last "final answer is" / "answer:" at or after `from`. */
function lastAnchor(text: string, from: number): RegExpExecArray | null {
  const re = ANCHOR; // global: exec goes on from lastIndex
  re.lastIndex = from;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) last = m;
  return last;
}

/** Whether a math span ($, \( or \[) starts at `at`. */
function mathAt(text: string, at: number): boolean {
  return text[at] === "$" || (text[at] === "\\" && (text[at + 1] === "(" || text[at + 1] === "["));
}

/** "The largest $n$ is 34", "the domain of $f(x)$ is 19": a span naming the unknown, then its value in plain text. */
const NAMED_VALUE = new RegExp(
  String.raw`\$\s*(?:[a-zA-Z]+|[a-zA-Z]\s*\(\s*[a-zA-Z]\s*\))\s*\$\s+(?:is|equals)\s+(${NUM}%?)(?![\w$])(?![^$]*\$)`,
);

function anchoredAnswer(
  text: string,
  at: number,
  targets: readonly ExtractionTarget[],
  choices: readonly string[],
): Extracted | null {
  const tail = sentence(text.slice(at));
  const named = targets.includes("expr") && tail.includes("$") ? NAMED_VALUE.exec(tail) : null;
  if (named) return { text: named[1], source: "answer_is", at: at + named.index + named[0].lastIndexOf(named[1]) };
  if (targets.includes("latex")) {
    const spans = [...tail.matchAll(SPAN)];
    const joined = (k: number) => JOINER.test(tail.slice(spans[k].index + spans[k][0].length, spans[k + 1].index));
    let k = 0;
    while (k + 1 < spans.length && joined(k)) k++;
    if (spans.length) return { text: joinSpans(spans.slice(0, k + 1)), source: "answer_is", at: at + spans[0].index };
  }
  const plain = tail.replace(/^\*\*|\*\*$/g, "").trim();
  if (targets.includes("expr")) {
    const n = PLAIN_EXPR.exec(plain);
    const wordAfter = n && /^[a-zA-Z]/.test(plain.slice(n[0].length));
    if (n && !wordAfter) return { text: lastSide(n[0].trim()), source: "answer_is", at };
  }
  if (targets.includes("string")) {
    const c = lastChoice(plain, choices, at);
    if (c) return { ...c, source: "answer_is" };
  }
  return null;
}

/** Text up to the end of its sentence: a period followed by a space or the end, or a line break. */
function sentence(s: string): string {
  const end = /\.(?=\s|$)|\n/.exec(s.replace(/\$[^$]*\$/g, (x) => " ".repeat(x.length)));
  return end ? s.slice(0, end.index) : s;
}

function hashAnswer(text: string): Extracted | null {
  const at = text.indexOf("####");
  if (at < 0) return null;
  const line = text
    .slice(at + 4)
    .split("\n")[0]
    .trim();
  return line === "" ? null : { text: line, source: "hash", at };
}

function spanContent(m: RegExpMatchArray): string {
  return (m[1] ?? m[2] ?? m[3] ?? m[4]).trim();
}

/** The last math span, with the spans right before it joined when only "and", "or" or "," separate them. */
function lastMathSpan(text: string): Extracted | null {
  const spans = [...text.matchAll(SPAN)];
  if (spans.length === 0) return null;
  let k = spans.length - 1;
  while (k > 0 && JOINER.test(text.slice(spans[k - 1].index + spans[k - 1][0].length, spans[k].index))) k--;
  return { text: joinSpans(spans.slice(k)), source: "latex", at: spans[k].index };
}

function joinSpans(spans: RegExpExecArray[] | RegExpMatchArray[]): string {
  return [...new Set(spans.map((m) => lastSide(spanContent(m))))].join(", ");
}

/**
 * "16 + 6 = 22" and "x = 2 + 3 = 5" -> the last side; an equation "x = 5", "x^2 + y^2 = 4" and a list of them
 * ("x = 1, x = 2", "x = 1 \text{ or } x = 2") stay whole.
 */
function lastSide(s: string): string {
  const exact = s.replace(/\s*\\approx(?![a-zA-Z])[\s\S]*$/, ""); // "x = 1/3 \approx 0.33" is x = 1/3
  if (exact !== s && /=/.test(exact)) s = exact;
  if (/[,;]|\\text|\\q?quad|\\(?:text)?(?:or|and)\b/.test(s)) return s;
  const sides = s.split(/(?<![<>!\\])=(?!=)/);
  if (sides.length < 2) return s;
  if (sides.length === 2 && /[a-zA-Z]/.test(sides[0].replace(/\\[a-zA-Z]+/g, ""))) return s;
  return sides[sides.length - 1].trim() || s;
}

/** The last number, fraction or percentage outside math spans ("3/4", "-2.5", "75%", "1,080"). */
function lastNumber(text: string): Extracted | null {
  // math spans are not plain text, nor is LaTeX after an unclosed "$" (an output cut off mid-formula); a "$" before
  // plain words is a currency sign ("$18 a day")
  const blank = (x: string) => " ".repeat(x.length);
  const masked = text.replace(SPAN, blank).replace(/(?<!\\)\$(?=[^$]*[\\{}])[^$]*$/, blank);
  const re = /(?<![\w.:])[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s*\/\s*\d+)?%?(?![\w])/g;
  const m = [...masked.matchAll(re)].pop();
  return m ? { text: m[0].replace(/\s+/g, ""), source: "expr", at: m.index } : null;
}

function lastChoice(text: string, choices: readonly string[], offset: number): Extracted | null {
  let best: Extracted | null = null;
  for (const c of choices) {
    const esc = c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const m = [...text.matchAll(new RegExp(`(?<![A-Za-z])${esc}(?![A-Za-z])`, "g"))].pop();
    if (m && (!best || offset + m.index > best.at)) best = { text: c, source: "string", at: offset + m.index };
  }
  return best;
}
