// Parses a normalized final answer ("2\frac{1}{2}", "\frac{\sqrt{3}}{2}", "1.5", "-3/4", "25%", "10^3") into an
// exact value. Anything outside this small language (variables, \pi, \sqrt[3], ...) is "not a number": null.
//
// Grammar (loosest first):
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "\cdot" | "\times" | "/" | "\div") unary | implicit)*   implicit: 2\sqrt{3}, 3(4)
//   unary   := ("-" | "+") unary | power
//   power   := postfix ("^" (digit | "{" sum "}" | "(" sum ")" | "-" digit))?
//   postfix := primary "%"?
//   primary := number [mixed fraction] | "(" sum ")" | "{" sum "}" | "\frac" arg arg | "\sqrt" arg
// Mixed numbers: "2 1/2" and "2\frac{1}{2}" are 5/2 (a whole number, then a proper fraction of whole numbers).

import { Rational } from "./rational.js";
import { Surd } from "./surd.js";

interface Tok {
  t: string; // "num", "cmd", or the character itself
  s: string; // source text
  spaced: boolean;
}

const TOKEN = /\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+|\\[a-zA-Z]+|[-+*/^(){}%]|\S)/y;

function lex(s: string): Tok[] | null {
  const out: Tok[] = [];
  s = s.trim();
  let at = 0;
  while (at < s.length) {
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(s);
    if (!m) return null;
    const text = m[1];
    const spaced = m[0].length > text.length;
    if (/^[\d.]/.test(text)) out.push({ t: "num", s: text, spaced });
    else if (text[0] === "\\") out.push({ t: "cmd", s: text, spaced });
    else out.push({ t: text, s: text, spaced });
    at = TOKEN.lastIndex;
  }
  return out;
}

export interface ParsedValue {
  value: Surd;
  /** The same text with "%" read as a unit label, when a "%" occurs. */
  unitReading?: Surd;
}

/** The exact value of a normalized answer, or null when it is not a number this parser knows. */
export function parseValue(s: string): ParsedValue | null {
  const toks = lex(s);
  if (!toks || toks.length === 0) return null;
  const a = run(toks, false);
  if (!a) return null;
  if (!a.percent) return { value: a.value };
  const b = run(toks, true);
  return b ? { value: a.value, unitReading: b.value } : { value: a.value };
}

function run(toks: Tok[], percentAsUnit: boolean): { value: Surd; percent: boolean } | null {
  const p = new ValueParser(toks, percentAsUnit);
  try {
    const value = p.sum();
    return p.pos === p.toks.length ? { value, percent: p.sawPercent } : null;
  } catch (e) {
    if (e instanceof RangeError || e instanceof NotANumber) return null;
    throw e;
  }
}

class NotANumber extends Error {}

const MUL_CMDS = new Set(["\\cdot", "\\times", "\\ast"]);
const FRAC_CMDS = new Set(["\\frac", "\\dfrac", "\\tfrac", "\\cfrac"]);

class ValueParser {
  pos = 0;
  sawPercent = false;
  private depth = 0;
  readonly toks: Tok[];
  constructor(
    toks: Tok[],
    private readonly percentAsUnit: boolean,
  ) {
    this.toks = toks.slice();
  }

  private peek(): Tok | undefined {
    return this.toks[this.pos];
  }
  private take(t: string): boolean {
    if (this.peek()?.t !== t) return false;
    this.pos++;
    return true;
  }
  private expect(t: string): void {
    if (!this.take(t)) throw new NotANumber();
  }

  sum(): Surd {
    let v = this.product();
    for (;;) {
      if (this.take("+")) v = v.add(this.product());
      else if (this.take("-")) v = v.sub(this.product());
      else return v;
    }
  }

  private product(): Surd {
    let v = this.unary();
    for (;;) {
      const k = this.peek();
      if (!k) return v;
      if (k.t === "*" || (k.t === "cmd" && MUL_CMDS.has(k.s))) {
        this.pos++;
        v = v.mul(this.unary());
      } else if (k.t === "/" || (k.t === "cmd" && k.s === "\\div")) {
        this.pos++;
        v = v.div(this.unary());
      } else if (k.t === "(" || (k.t === "cmd" && (k.s === "\\sqrt" || FRAC_CMDS.has(k.s)))) v = v.mul(this.power());
      else return v;
    }
  }

  private unary(): Surd {
    if (this.take("-")) return this.unary().neg();
    if (this.take("+")) return this.unary();
    return this.power();
  }

  private power(): Surd {
    const base = this.postfix();
    if (!this.take("^")) return base;
    const e = this.exponent().asRational();
    if (!e?.isInteger()) throw new NotANumber();
    return base.pow(Number(e.num));
  }

  private exponent(): Surd {
    if (this.peek()?.t === "{" || this.peek()?.t === "(") return this.primary();
    const neg = this.take("-");
    const v = this.singleDigitArg();
    return neg ? v.neg() : v;
  }

  private postfix(): Surd {
    const v = this.primary();
    if (!this.take("%")) return v;
    this.sawPercent = true;
    return this.percentAsUnit ? v : v.div(Surd.rational(Rational.int(100)));
  }

  private primary(): Surd {
    const k = this.peek();
    if (!k) throw new NotANumber();
    if (k.t === "num") {
      this.pos++;
      const q = Rational.parseDecimal(k.s);
      if (!q) throw new NotANumber();
      return Surd.rational(this.mixedTail(q) ?? q);
    }
    if (k.t === "(" || k.t === "{") {
      if (++this.depth > 64) throw new NotANumber();
      this.pos++;
      const v = this.sum();
      this.expect(k.t === "(" ? ")" : "}");
      this.depth--;
      return v;
    }
    if (k.t === "cmd" && FRAC_CMDS.has(k.s)) {
      this.pos++;
      const num = this.arg();
      return num.div(this.arg());
    }
    if (k.t === "cmd" && k.s === "\\sqrt") {
      this.pos++;
      if (this.peek()?.t === "[") throw new NotANumber(); // n-th roots are out of scope
      return this.arg().sqrt();
    }
    throw new NotANumber();
  }

  /** After a whole number: " 1/2" or "\frac{1}{2}" makes a mixed number (2 1/2 = 5/2). */
  private mixedTail(whole: Rational): Rational | null {
    if (!whole.isInteger() || whole.sign() < 0) return null;
    const [a, b, c] = [this.toks[this.pos], this.toks[this.pos + 1], this.toks[this.pos + 2]];
    let frac: Rational | null = null;
    let used = 0;
    if (a?.t === "num" && a.spaced && b?.t === "/" && !b.spaced && c?.t === "num" && !c.spaced) {
      frac = intFraction(a.s, c.s);
      used = 3;
    } else if (a?.t === "cmd" && FRAC_CMDS.has(a.s)) {
      const m = /^\{(\d+)\}\{(\d+)\}$/.exec(
        this.toks
          .slice(this.pos + 1, this.pos + 7)
          .map((t) => t.s)
          .join(""),
      );
      if (m) {
        frac = intFraction(m[1], m[2]);
        used = 7;
      }
    }
    if (!frac || frac.cmp(Rational.ONE) >= 0 || frac.isZero()) return null;
    this.pos += used;
    return whole.add(frac);
  }

  /** A command argument: "{...}" or a single digit ("\frac12" = 1/2). */
  private arg(): Surd {
    if (this.peek()?.t === "{") return this.primary();
    return this.singleDigitArg();
  }

  private singleDigitArg(): Surd {
    const k = this.peek();
    if (k?.t !== "num" || !/^\d/.test(k.s)) throw new NotANumber();
    if (k.s.length === 1) {
      this.pos++;
      return Surd.rational(Rational.int(Number(k.s)));
    }
    this.toks[this.pos] = { t: "num", s: k.s.slice(1), spaced: false }; // "\frac12": take "1", leave "2"
    return Surd.rational(Rational.int(Number(k.s[0])));
  }
}

function intFraction(a: string, b: string): Rational | null {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b) || /^0+$/.test(b)) return null;
  return Rational.of(BigInt(a), BigInt(b));
}
