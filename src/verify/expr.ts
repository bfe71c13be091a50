// A small, safe calculator over exact rationals: tokenizer and recursive-descent parser. Nothing is ever eval'd.
//
// Grammar (loosest binding first):
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "x" | "×" | "/" | "÷" | "//" | "mod" | "%") unary)*
//   unary   := ("-" | "+") unary | power
//   power   := postfix ("^" | "**") unary            (integer exponents only; right-associative)
//   postfix := primary "%"?                          ("%" after a value and before an operator or the end = percent)
//   primary := number | "(" sum ")"
// Numbers: "1,234.5" (groups of three), "18 000" (a space before a group that starts with 0), "12", ".5"; a "$" before a number is ignored. "6:30", "0900" and "2p" are
// words, not numbers. A spaced "/" before a tight fraction divides by the fraction: "25 / 1/3" = 75.

import { Rational } from "./rational.js";

export type TokKind = "num" | "op" | "lp" | "rp" | "eq" | "word" | "other";
export interface Token {
  kind: TokKind;
  text: string;
  /** For "num": its value. */
  value?: Rational;
  /** For "op": the canonical operator (+ - * / mod % ^); "%" is resolved to percent or mod by the parser. */
  op?: string;
  /** Whitespace came right before this token. */
  spaced: boolean;
}

const NUMBER = /^(?:\d{1,3}(?:,\d{3})+(?!\d)|\d{1,3}(?:[ \u00a0\u202f]0\d\d)+(?![\d,])|\d+)?(?:\.\d+)?/;
const LETTERS = /^[A-Za-z_\u00c0-\u024f]+/;
const OPS: Record<string, string> = {
  "+": "+",
  "-": "-",
  "\u2212": "-",
  "\u2013": "-",
  "*": "*",
  "\u00d7": "*",
  "\u00b7": "*",
  "\u22c5": "*",
  "/": "/",
  "\u00f7": "/",
  "^": "^",
  "%": "%",
};

/** Splits free text into calculator tokens. Letters glued to a number ("2p", "3rd") make one word token. */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let spaced = true;
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\u00a0") {
      i++;
      spaced = true;
      continue;
    }
    if (c === "$") {
      i++;
      continue;
    } // currency: transparent
    const rest = text.slice(i);
    const num = /^[\d.]/.test(c) ? NUMBER.exec(rest) : null;
    if (num && num[0] !== "" && num[0] !== ".") {
      let len = num[0].length;
      const glued = LETTERS.exec(text.slice(i + len));
      const clock = /^:\d+/.exec(text.slice(i + len));
      if (glued && !isTimesLetter(glued[0], text, i + len + glued[0].length)) {
        len += glued[0].length; // "2p", "3rd", "10am": a word, not a number
        out.push({ kind: "word", text: text.slice(i, i + len), spaced });
      } else if (clock || /^0\d/.test(num[0])) {
        len += clock ? clock[0].length : 0; // "6:30", "0900": a time or a code, not a quantity
        out.push({ kind: "word", text: text.slice(i, i + len), spaced });
      } else {
        const value = Rational.parseDecimal(num[0].replace(/[, \u00a0\u202f]/g, ""));
        out.push({ kind: "num", text: num[0], value: value ?? Rational.ZERO, spaced });
      }
      i += len;
    } else if (rest.startsWith("**") || rest.startsWith("//")) {
      out.push({ kind: "op", text: rest.slice(0, 2), op: rest[0] === "*" ? "^" : "//", spaced });
      i += 2;
    } else if (OPS[c] !== undefined) {
      out.push({ kind: "op", text: c, op: OPS[c], spaced });
      i++;
    } else if (c === "(" || c === ")") {
      out.push({ kind: c === "(" ? "lp" : "rp", text: c, spaced });
      i++;
    } else if (c === "=") {
      out.push({ kind: "eq", text: c, spaced });
      i++;
    } else {
      const word = LETTERS.exec(rest);
      if (word) {
        out.push(wordToken(word[0], out, text, i + word[0].length, spaced));
        i += word[0].length;
      } else {
        out.push({ kind: "other", text: c, spaced });
        i++;
      }
    }
    spaced = false;
  }
  return out;
}

/** "x" glued to a number is multiplication when a number follows: "5x3", "5x 3". */
function isTimesLetter(letters: string, text: string, end: number): boolean {
  return (letters === "x" || letters === "X") && /^\s*[\d.($]/.test(text.slice(end));
}

/** "x" between operands is multiplication and "mod" is modulo; any other word is a word. */
function wordToken(w: string, before: Token[], text: string, end: number, spaced: boolean): Token {
  const prev = before[before.length - 1];
  const afterOperand =
    prev !== undefined && (prev.kind === "num" || prev.kind === "rp" || (prev.kind === "op" && prev.op === "%"));
  const beforeOperand = /^\s*[\d.($]/.test(text.slice(end));
  if (afterOperand && beforeOperand && (w === "x" || w === "X")) return { kind: "op", text: w, op: "*", spaced };
  if (afterOperand && beforeOperand && w === "mod") return { kind: "op", text: w, op: "mod", spaced };
  return { kind: "word", text: w, spaced };
}

export interface EvalOptions {
  /** Read a postfix "%" as a label ("40%" = 40) instead of as /100. Default false. */
  percentAsUnit?: boolean;
  /** Read "25 / 1/3" as 25 / (1/3). Default true. */
  groupFractions?: boolean;
}

/** Why an expression could not be evaluated: it is not an expression, or its arithmetic is undefined. */
export type EvalResult =
  | { ok: true; value: Rational; hasOp: boolean; percent: boolean; spacedFraction: boolean }
  | { ok: false; reason: "syntax" | "math" };

/** Evaluates a whole token sequence as one expression. */
export function evaluate(tokens: readonly Token[], opts: EvalOptions = {}): EvalResult {
  const p = new Parser(tokens, opts.percentAsUnit ?? false, opts.groupFractions ?? true);
  try {
    const value = p.sum();
    if (p.pos !== tokens.length) return { ok: false, reason: "syntax" };
    return { ok: true, value, hasOp: p.sawOp, percent: p.sawPercent, spacedFraction: p.sawSpacedFraction };
  } catch (e) {
    if (e instanceof SyntaxFail) return { ok: false, reason: "syntax" };
    if (e instanceof RangeError) return { ok: false, reason: "math" };
    throw e;
  }
}

/** Evaluates a string ("48/2", "(3+4)*2", "10 mod 3"); null when it is not an expression or undefined. */
export function evalString(text: string): Rational | null {
  const r = evaluate(tokenize(text));
  return r.ok ? r.value : null;
}

class SyntaxFail extends Error {}

const MUL_OPS = new Set(["*", "/", "//", "mod", "%"]);

class Parser {
  pos = 0;
  sawOp = false;
  sawPercent = false;
  sawSpacedFraction = false;
  private depth = 0;
  constructor(
    private readonly t: readonly Token[],
    private readonly percentAsUnit: boolean,
    private readonly groupFractions: boolean,
  ) {}

  private peekOp(): string | undefined {
    const k = this.t[this.pos];
    return k && k.kind === "op" ? k.op : undefined;
  }

  sum(): Rational {
    let v = this.product();
    for (let op = this.peekOp(); op === "+" || op === "-"; op = this.peekOp()) {
      this.pos++;
      this.sawOp = true;
      const r = this.product();
      v = op === "+" ? v.add(r) : v.sub(r);
    }
    return v;
  }

  private product(): Rational {
    let v = this.unary();
    for (let op = this.peekOp(); op !== undefined && MUL_OPS.has(op); op = this.peekOp()) {
      this.pos++;
      this.sawOp = true;
      const grouped = op === "/" && this.spacedSlashBeforeTightFraction();
      if (grouped) this.sawSpacedFraction = true;
      const r = grouped && this.groupFractions ? this.tightFraction() : this.unary();
      if (op === "*") v = v.mul(r);
      else if (op === "/") v = v.div(r);
      else if (op === "//") v = v.sub(v.mod(r)).div(r);
      else v = v.mod(r);
    }
    return v;
  }

  /** "25 / 1/3" and "3/ 1/4" mean 25 / (1/3): a spaced "/" before a tight fraction divides by the fraction. */
  private spacedSlashBeforeTightFraction(): boolean {
    const [slash, a, bar, b] = [this.t[this.pos - 1], this.t[this.pos], this.t[this.pos + 1], this.t[this.pos + 2]];
    return (
      (slash.spaced || a?.spaced === true) &&
      a?.kind === "num" &&
      bar?.kind === "op" &&
      bar.op === "/" &&
      !bar.spaced &&
      b?.kind === "num" &&
      !b.spaced
    );
  }

  private tightFraction(): Rational {
    const v = this.t[this.pos].value!.div(this.t[this.pos + 2].value!);
    this.pos += 3;
    return v;
  }

  private unary(): Rational {
    const op = this.peekOp();
    if (op === "-" || op === "+") {
      this.pos++;
      const v = this.unary();
      return op === "-" ? v.neg() : v;
    }
    return this.power();
  }

  private power(): Rational {
    const base = this.postfix();
    if (this.peekOp() !== "^") return base;
    this.pos++;
    this.sawOp = true;
    const e = this.unary();
    if (!e.isInteger()) throw new RangeError("non-integer exponent");
    return base.pow(Number(e.num));
  }

  private postfix(): Rational {
    let v = this.primary();
    if (this.peekOp() === "%" && !this.operandFollows(this.pos + 1)) {
      this.pos++;
      this.sawPercent = true;
      if (!this.percentAsUnit) v = v.div(Rational.int(100));
    }
    return v;
  }

  private operandFollows(i: number): boolean {
    const k = this.t[i];
    return k !== undefined && (k.kind === "num" || k.kind === "lp");
  }

  private primary(): Rational {
    const k = this.t[this.pos];
    if (!k) throw new SyntaxFail();
    if (k.kind === "num") {
      this.pos++;
      return k.value!;
    }
    if (k.kind === "lp") {
      if (++this.depth > 64) throw new SyntaxFail();
      this.pos++;
      const v = this.sum();
      if (this.t[this.pos]?.kind !== "rp") throw new SyntaxFail();
      this.pos++;
      this.depth--;
      return v;
    }
    throw new SyntaxFail();
  }
}
