// Exact values of the form q0 + q1*sqrt(r1) + q2*sqrt(r2) + ... with rational q and distinct square-free integers r:
// enough for answers like 2\sqrt{3} = \sqrt{12} or \frac{\sqrt{2}}{2} = 1/\sqrt{2}. Square roots of distinct
// square-free integers are linearly independent over the rationals, so two values are equal exactly when their
// coefficient maps are equal: equality is decided, never approximated. What falls outside (the square root of a
// sum, a non-integer power, a number too large to factor quickly) throws RangeError, which callers treat as "undecided".

import { Rational } from "./rational.js";

/** Trial division stops here; numbers with larger prime factors must be perfect squares or are refused. */
const FACTOR_LIMIT = 100_000n;

export class Surd {
  /** radicand (square-free, >= 1) -> non-zero coefficient; the rational part is radicand 1. */
  private constructor(readonly terms: ReadonlyMap<bigint, Rational>) {}

  static rational(q: Rational): Surd {
    return new Surd(q.isZero() ? new Map() : new Map([[1n, q]]));
  }

  /** The exact rational value, or null when an irrational term remains. */
  asRational(): Rational | null {
    if (this.terms.size === 0) return Rational.ZERO;
    if (this.terms.size === 1 && this.terms.has(1n)) return this.terms.get(1n)!;
    return null;
  }

  add(o: Surd): Surd {
    const m = new Map(this.terms);
    for (const [r, q] of o.terms) {
      const s = (m.get(r) ?? Rational.ZERO).add(q);
      if (s.isZero()) m.delete(r);
      else m.set(r, s);
    }
    return new Surd(m);
  }

  neg(): Surd {
    return new Surd(new Map([...this.terms].map(([r, q]) => [r, q.neg()])));
  }

  sub(o: Surd): Surd {
    return this.add(o.neg());
  }

  mul(o: Surd): Surd {
    let out = Surd.rational(Rational.ZERO);
    for (const [r1, q1] of this.terms) {
      for (const [r2, q2] of o.terms) {
        // sqrt(r1)*sqrt(r2) = g*sqrt(r1*r2/g^2) with g = gcd(r1, r2), and r1*r2/g^2 is square-free again
        const g = gcdBig(r1, r2);
        const term = new Map([[(r1 / g) * (r2 / g), q1.mul(q2).mul(Rational.of(g))]]);
        out = out.add(new Surd(term));
      }
    }
    return out;
  }

  /** Division by a single term q*sqrt(r) only: 1/(q*sqrt(r)) = sqrt(r)/(q*r). */
  div(o: Surd): Surd {
    if (o.terms.size !== 1)
      throw new RangeError(o.terms.size === 0 ? "division by zero" : "division by a sum of roots");
    const [[r, q]] = [...o.terms];
    return this.mul(new Surd(new Map([[r, Rational.ONE.div(q.mul(Rational.of(r)))]])));
  }

  /** Integer powers; negative ones only of a single term. */
  pow(k: number): Surd {
    if (!Number.isInteger(k) || Math.abs(k) > 64) throw new RangeError("exponent out of range");
    const q = this.asRational();
    if (q) return Surd.rational(q.pow(k));
    let base: Surd = k < 0 ? Surd.rational(Rational.ONE).div(this) : this;
    let out = Surd.rational(Rational.ONE);
    for (let e = Math.abs(k); e > 0; e >>= 1) {
      if (e & 1) out = out.mul(base);
      base = base.mul(base);
    }
    return out;
  }

  /** sqrt of a non-negative rational: sqrt(p/q) = sqrt(p*q)/q, with square factors taken out. */
  sqrt(): Surd {
    const x = this.asRational();
    if (!x) throw new RangeError("square root of an irrational value");
    if (x.sign() < 0) throw new RangeError("square root of a negative number");
    if (x.isZero()) return this;
    const [outside, radicand] = squareFree(x.num * x.den);
    return new Surd(new Map([[radicand, Rational.of(outside, x.den)]]));
  }

  eq(o: Surd): boolean {
    if (this.terms.size !== o.terms.size) return false;
    for (const [r, q] of this.terms) {
      const p = o.terms.get(r);
      if (!p?.eq(q)) return false;
    }
    return true;
  }

  toString(): string {
    if (this.terms.size === 0) return "0";
    return [...this.terms]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([r, q]) => (r === 1n ? q.toString() : `${q}*sqrt(${r})`))
      .join(" + ");
  }
}

/** n = outside^2 * radicand with radicand square-free. */
function squareFree(n: bigint): [bigint, bigint] {
  let outside = 1n;
  let radicand = 1n;
  let d = 2n;
  for (; d * d <= n && d <= FACTOR_LIMIT; d += d === 2n ? 1n : 2n) {
    while (n % (d * d) === 0n) {
      n /= d * d;
      outside *= d;
    }
    if (n % d === 0n) {
      n /= d;
      radicand *= d;
    }
  }
  if (d * d <= n) {
    // What is left may hide a square factor above the trial-division limit: accept it only if it is a square.
    const s = isqrt(n);
    if (s * s === n) return [outside * s, radicand];
    throw new RangeError("number too large to simplify its square root");
  }
  return [outside, radicand * n];
}

/** floor(sqrt(n)) by Newton's method, exact for any size. */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.ceil(Math.sqrt(Number(n)))) + 1n;
  x = (x + n / x) >> 1n; // one step lands at or above floor(sqrt(n)) whatever the float estimate was
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

function gcdBig(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}
