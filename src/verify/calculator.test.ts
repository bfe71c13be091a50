// The calculator: exact rationals, the safe expression parser, and step verdicts with the rules that keep it from
// crying wolf on real text.

import assert from "node:assert/strict";
import { test } from "node:test";
import { checkStep } from "./calculator.js";
import { evalString } from "./expr.js";
import { Rational } from "./rational.js";
import { Surd } from "./surd.js";

const q = (s: string) => {
  const v = evalString(s);
  return v === null ? null : v.toString();
};

test("rationals are exact", () => {
  const a = Rational.parseDecimal("0.1")!;
  const b = Rational.parseDecimal("0.2")!;
  assert.ok(a.add(b).eq(Rational.parseDecimal("0.3")!));
  assert.equal(Rational.of(6n, -8n).toString(), "-3/4");
  assert.equal(Rational.of(-7n, 2n).mod(Rational.int(3)).toString(), "5/2"); // floored, like Python
  assert.equal(Rational.of(1n, 3n).round(2).toDecimalString(), "0.33");
  assert.equal(Rational.of(2n, 3n).round(2).toDecimalString(), "0.67");
  assert.equal(Rational.of(1n, 8n).decimalPlaces(), 3);
  assert.equal(Rational.of(1n, 3n).decimalPlaces(), null);
  assert.throws(() => Rational.of(1n, 0n), RangeError);
  assert.equal(Rational.int(2).pow(-3).toString(), "1/8");
});

test("surds decide equality of square-root expressions exactly", () => {
  const s = (n: number) => Surd.rational(Rational.int(n)).sqrt();
  assert.ok(s(12).eq(s(3).mul(Surd.rational(Rational.int(2)))));
  assert.ok(
    s(2)
      .mul(s(2))
      .eq(Surd.rational(Rational.int(2))),
  );
  assert.ok(!s(2).add(s(3)).eq(s(5)));
  assert.throws(() => Surd.rational(Rational.int(-4)).sqrt(), RangeError);
  assert.throws(() => s(2).add(s(3)).sqrt(), RangeError);
});

test("the expression parser: precedence, operators, numbers; no eval", () => {
  assert.equal(q("2+3*4"), "14");
  assert.equal(q("(2+3)*4"), "20");
  assert.equal(q("2 x 3"), "6");
  assert.equal(q("2 \u00d7 3 \u00f7 4"), "3/2");
  assert.equal(q("10 - 2 - 3"), "5");
  assert.equal(q("48/2/4"), "6");
  assert.equal(q("-3 + 5"), "2");
  assert.equal(q("2^10"), "1024");
  assert.equal(q("2**3"), "8");
  assert.equal(q("-2^2"), "-4");
  assert.equal(q("17 % 5"), "2"); // "%" before an operand is modulo
  assert.equal(q("17 mod 5"), "2");
  assert.equal(q("17 // 5"), "3");
  assert.equal(q("50%"), "1/2"); // "%" at the end is percent
  assert.equal(q("20% * 50"), "10");
  assert.equal(q("1,234 + 1"), "1235");
  assert.equal(q("$1,000.50 - $0.50"), "1000");
  assert.equal(q(".5 + .25"), "3/4");
  assert.equal(q("25 / 1/3"), "75"); // a spaced "/" divides by the tight fraction
  assert.equal(q("0.1 + 0.2"), "3/10");
  assert.equal(q("5/0"), null); // undefined arithmetic
  assert.equal(q("2^0.5"), null);
  assert.equal(q("process.exit(1)"), null);
  assert.equal(q("require('fs')"), null);
  assert.equal(q("2 +"), null);
  assert.equal(q("((((1))))"), "1");
  assert.equal(q("(".repeat(100) + "1" + ")".repeat(100)), null); // nesting is bounded
});

type Case = [step: string, ok: boolean | null];

const STEPS: Case[] = [
  // annotations and the number written after them
  ["Natalia sold 48/2 = <<48/2=24>>24 clips in May.", true],
  ["Natalia sold 48/2 = <<48/2=25>>25 clips in May.", false],
  ["She has <<27-15=12>>13 stickers.", false], // right annotation, wrong number written after it
  ["Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.", true],
  ["So <<560//10=56>>56 cars.", true],
  ["He pays <<100/3=33.33>>33.33 each.", true], // rounded to the 2 decimals written
  ["He pays <<100/3=33.3>>33.3 each.", false], // one decimal is not accepted as rounding
  ["<<10/3=3>>3 people", false],
  ["<<5/0=5>>5", false],
  ["<<a+b=c>>", null],
  // plain equations
  ["Sam memorized 4+6=10 digits of pi.", true],
  ["Sam memorized 4+6=11 digits of pi.", false],
  ["2*5 = 10 = 12", false],
  ["3 x (8/16) = 1.5", true],
  ["100% - 40% = 60%, so most passed", true],
  ["100% - 40% = 60% of the students", null], // "60% of" is only part of the right side
  ["0.4*100 = 40%.", true], // "%" as a unit label
  ["$1 / 2 = 50 cents", true],
  ["$9 / $27 * 100% = 33.333%", true],
  ["Coursework costs $1000-($150+$300+$250) = $300", true],
  ["(so 2 + 3 = 5)", true],
  ["So in a month, he uses 600 x 30 = 18 000 watts.", true],
  // not checked: variables, cut-off operands, clock times, codes
  ["All the ships had S + 2S + 4S = 7S = 847 people.", null],
  ["Her income is p+$600 = 1600", null],
  ["half of 80 = 40", null],
  ["There are 60 students x 2/3 = 40 students", null],
  ["It takes 17/3 = 5 and 2/3 loads.", null],
  ["The sun sets at 6:00+48=6:48 PM", null],
  ["He leaves at 0900-0130 = 0730 hours", null],
  ["3 = 3", null],
  ["She has 5 apples.", null],
  ["#### 72", null],
];

test("step verdicts", () => {
  const wrong = STEPS.filter(([s, want]) => checkStep(s).ok !== want).map(
    ([s, want]) => `${JSON.stringify(s)}: want ${want}, got ${checkStep(s).ok} ${JSON.stringify(checkStep(s).checks)}`,
  );
  assert.deepEqual(wrong, []);
});

test("a failed check says what the value should have been", () => {
  const r = checkStep("So 6*2.5 = 18 dollars.");
  assert.equal(r.ok, false);
  assert.deepEqual(r.checks, [{ kind: "equation", text: "6*2.5 = 18", ok: false, expected: "15" }]);
});
