// Exact rational numbers over bigint: the arithmetic every verifier uses, so that 0.1 + 0.2 = 0.3 holds exactly.

/** A reduced fraction num/den with den > 0. Immutable. */
export class Rational {
  private constructor(
    readonly num: bigint,
    readonly den: bigint,
  ) {}

  static readonly ZERO = new Rational(0n, 1n);
  static readonly ONE = new Rational(1n, 1n);

  /** num/den reduced; throws RangeError on a zero denominator (callers turn that into "undecided"). */
  static of(num: bigint, den: bigint = 1n): Rational {
    if (den === 0n) throw new RangeError("division by zero");
    if (den < 0n) {
      num = -num;
      den = -den;
    }
    const g = gcd(num < 0n ? -num : num, den);
    return g === 1n ? new Rational(num, den) : new Rational(num / g, den / g);
  }

  static int(n: number | bigint): Rational {
    return new Rational(BigInt(n), 1n);
  }

  /**
   * A plain decimal literal: optional sign, digits, optional fraction, optional exponent ("-12.50", "3e-2").
   * No separators; returns null when the text is not one.
   */
  static parseDecimal(text: string): Rational | null {
    const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/.exec(text);
    if (!m || (m[2] === "" && (m[3] === undefined || m[3] === ""))) return null;
    const frac = m[3] ?? "";
    let num = BigInt((m[2] || "0") + frac);
    let den = 10n ** BigInt(frac.length);
    const exp = m[4] ? Number(m[4]) : 0;
    if (exp > 0) num *= 10n ** BigInt(exp);
    else if (exp < 0) den *= 10n ** BigInt(-exp);
    return Rational.of(m[1] === "-" ? -num : num, den);
  }

  add(o: Rational): Rational {
    if (this.den === 1n && o.den === 1n) return new Rational(this.num + o.num, 1n);
    return Rational.of(this.num * o.den + o.num * this.den, this.den * o.den);
  }
  sub(o: Rational): Rational {
    return this.add(o.neg());
  }
  mul(o: Rational): Rational {
    if (this.den === 1n && o.den === 1n) return new Rational(this.num * o.num, 1n);
    return Rational.of(this.num * o.num, this.den * o.den);
  }
  div(o: Rational): Rational {
    return Rational.of(this.num * o.den, this.den * o.num);
  }
  neg(): Rational {
    return new Rational(-this.num, this.den);
  }
  abs(): Rational {
    return this.num < 0n ? this.neg() : this;
  }
  /** Floored modulo, as Python's %: the result has the sign of the divisor. */
  mod(o: Rational): Rational {
    if (o.num === 0n) throw new RangeError("modulo by zero");
    const q = floorDiv(this.num * o.den, this.den * o.num);
    return this.sub(o.mul(Rational.int(q)));
  }
  /** this^k for an integer k (|k| <= 64; larger exponents are refused as too costly to be meant). */
  pow(k: number): Rational {
    if (!Number.isInteger(k) || Math.abs(k) > 64) throw new RangeError("exponent out of range");
    const base: Rational = k < 0 ? Rational.ONE.div(this) : this;
    const e = BigInt(Math.abs(k));
    return new Rational(base.num ** e, base.den ** e);
  }

  isZero(): boolean {
    return this.num === 0n;
  }
  isInteger(): boolean {
    return this.den === 1n;
  }
  sign(): number {
    return this.num < 0n ? -1 : this.num > 0n ? 1 : 0;
  }
  eq(o: Rational): boolean {
    return this.num === o.num && this.den === o.den;
  }
  cmp(o: Rational): number {
    const d = this.num * o.den - o.num * this.den;
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  }

  /** The exact value rounded half away from zero to `places` decimals. */
  round(places: number): Rational {
    const scale = 10n ** BigInt(places);
    const n = this.num * scale;
    const q = (2n * (n < 0n ? -n : n) + this.den) / (2n * this.den);
    return Rational.of(n < 0n ? -q : q, scale);
  }

  /** Number of digits after the point if this has a finite decimal expansion, else null. */
  decimalPlaces(): number | null {
    let d = this.den;
    let twos = 0;
    let fives = 0;
    while (d % 2n === 0n) {
      d /= 2n;
      twos++;
    }
    while (d % 5n === 0n) {
      d /= 5n;
      fives++;
    }
    return d === 1n ? Math.max(twos, fives) : null;
  }

  toNumber(): number {
    return Number(this.num) / Number(this.den);
  }

  /** "7", "-3/4". */
  toString(): string {
    return this.den === 1n ? this.num.toString() : `${this.num}/${this.den}`;
  }

  /** A decimal string when the expansion is finite ("2.5"), otherwise the fraction ("1/3"). */
  toDecimalString(): string {
    const places = this.decimalPlaces();
    if (places === null || places === 0) return this.toString();
    const scale = 10n ** BigInt(places);
    const n = (this.num * scale) / this.den;
    const neg = n < 0n;
    const digits = (neg ? -n : n).toString().padStart(places + 1, "0");
    return `${neg ? "-" : ""}${digits.slice(0, -places)}.${digits.slice(-places)}`;
  }
}

export function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
