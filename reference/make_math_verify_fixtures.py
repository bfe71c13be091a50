"""Writes src/verify/fixtures/math_verify.json: Hugging Face Math-Verify's verdicts on (gold, prediction) cases.

The cases are written here (none are taken from another suite): every answer notation the math checker claims to
handle (numbers, fractions, surds, pi, symbolic expressions, intervals, sets, tuples, unordered lists, equations and
inequalities, matrices, percentages, units and text, degrees, scientific notation, LaTeX spacing and sizing), wrong
answers close to right ones, and free-form outputs: long solutions with the answer at the end, several boxed
answers, "final answer is", "####", answers in words, multiple-choice letters; and real prose: GSM8K test solutions
without their "#### n" line, and SmolLM2-135M's answers to 40 MATH-style problems (3 samples each, see
src/verify/fixtures/generate_smollm2_outputs.mjs); and 300 pairs of two different answers of one category (`expect` null: no verdict was
intended), and 300 references against a small change of themselves, a search for false accepts.

Each case carries `expect`, the verdict its author intended, next to `mv`, Math-Verify's verdict; the TypeScript test
(src/verify/math_verify.test.ts) measures agreement with `mv` and prints the disagreements. Cases marked `held_out`
were added after the checker was first measured on the others (and not tuned to afterwards): their agreement is
reported on its own.

Usage (PyPI `math-verify`; the versions used are recorded in the fixture):
    pip install math-verify==0.9.0
    python reference/make_math_verify_fixtures.py
"""

import json
import os
import random
import re
from importlib.metadata import version

from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "verify", "fixtures", "math_verify.json")

# Extraction modes, as the TypeScript checker names them: which Math-Verify extraction configs parse the prediction.
MODES = {
    "latex+expr": [LatexExtractionConfig(), ExprExtractionConfig()],
    "latex": [LatexExtractionConfig()],
    "expr": [ExprExtractionConfig()],
    "string": [StringExtractionConfig()],
}

CASES = []


def case(category, gold, pred, expect, mode="latex+expr"):
    CASES.append({"category": category, "gold": gold, "pred": pred, "expect": expect, "mode": mode})


def boxed(category, rows):
    """Bare answers compared both as "$pred$" in a sentence and inside \\boxed{}."""
    for gold, pred, expect in rows:
        case(category, gold, f"The final answer is ${pred}$.", expect)
        case(category, gold, f"So we get $\\boxed{{{pred}}}$", expect)


boxed("integer", [
    ("72", "72", True), ("72", "072", True), ("5", "+5", True), ("-5", "-5", True), ("5", "6", False),
    ("72", "720", False), ("-5", "5", False), ("1080", "1,080", True), ("1080", "108", False), ("0", "-0", True),
    ("1000000", "1,000,000", True), ("1000", "1{,}000", True), ("18000", "18\\,000", True), ("42", "41", False),
])
boxed("decimal", [
    ("72", "72.0", True), ("0.5", ".5", True), ("0.25", "0.250", True), ("0.5", "0.05", False),
    ("3.14", "3.1416", False), ("1.5", "1.50", True), ("2.5", "2.4", False), ("0.1", "\\frac{1}{10}", True),
])
boxed("fraction", [
    ("\\frac{1}{2}", "0.5", True), ("\\frac{1}{2}", "\\dfrac{1}{2}", True), ("\\frac{3}{4}", "\\tfrac{3}{4}", True),
    ("\\frac{1}{2}", "\\frac12", True), ("-\\frac{3}{4}", "\\frac{-3}{4}", True), ("\\frac{3}{4}", "\\frac{6}{8}", True),
    ("\\frac{1}{3}", "2/6", True), ("\\frac{1}{2}", "\\frac{1}{3}", False), ("\\frac{3}{4}", "0.7", False),
    ("\\frac{1}{3}", "0.333", False), ("\\frac{7}{4}", "1.75", True), ("\\frac{5}{2}", "\\dfrac{10}{4}", True),
    ("\\frac{2}{3}", "\\frac{3}{2}", False), ("-\\frac{7}{2}", "-3.5", True), ("\\frac{1}{4}", "\\frac{1}{4}+0", True),
    ("\\frac{9}{7}", "\\frac{9}{8}", False), ("\\frac{1}{6}", "0.1666667", True), ("\\frac{1}{6}", "0.17", False),
])
boxed("surd", [
    ("2\\sqrt{3}", "\\sqrt{12}", True), ("\\sqrt{8}", "2\\sqrt{2}", True), ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("\\sqrt{2}", "\\sqrt{3}", False), ("2\\sqrt{3}", "\\sqrt{6}", False), ("1+\\sqrt{2}", "1-\\sqrt{2}", False),
    ("3\\sqrt{2}", "\\sqrt{18}", True), ("\\sqrt{5}+1", "1+\\sqrt{5}", True), ("\\sqrt[3]{8}", "2", True),
    ("\\sqrt[3]{2}", "2^{1/3}", True), ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True), ("\\sqrt{2}", "1.414", False),
    ("4\\sqrt{3}", "4\\sqrt3", True), ("\\frac{3+\\sqrt{5}}{2}", "\\frac{3-\\sqrt{5}}{2}", False),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{2}{\\sqrt{5}-1}", True), ("5\\sqrt{2}", "\\sqrt{50}", True),
])
boxed("constant", [
    ("2\\pi", "2\\pi", True), ("2\\pi", "\\pi \\cdot 2", True), ("\\frac{\\pi}{4}", "\\frac{1}{4}\\pi", True),
    ("\\pi", "3.14", False), ("4\\pi", "2\\pi", False), ("\\frac{\\pi}{3}", "60", False), ("e^2", "e\\cdot e", True),
    ("\\pi r^2", "r^2\\pi", True), ("\\frac{8\\pi}{3}", "\\frac{8}{3}\\pi", True), ("9\\pi", "9 \\pi", True),
    ("\\ln 2", "\\log 2", True), ("\\infty", "\\infty", True), ("-\\infty", "\\infty", False),
])
boxed("symbolic", [
    ("x^2+2x+1", "(x+1)^2", True), ("x^2-1", "(x-1)(x+1)", True), ("2x+3", "3+2x", True), ("x^2+1", "x^2-1", False),
    ("\\frac{x}{2}", "0.5x", True), ("a+b", "b+a", True), ("2a", "a+a", True), ("x^3", "x^2", False),
    ("\\frac{1}{x+1}", "(x+1)^{-1}", True), ("3x-2", "3x+2", False), ("\\sin^2 x + \\cos^2 x", "1", True),
    ("n(n+1)/2", "\\frac{n^2+n}{2}", True), ("2^{n}", "2^{n+1}", False), ("x^2+y^2", "y^2+x^2", True),
    ("\\frac{a}{b}", "\\frac{b}{a}", False), ("4x^2-9", "(2x-3)(2x+3)", True),
])
boxed("interval", [
    ("[1,2]", "[1, 2]", True), ("[0,1)", "[0,1)", True), ("[0,1)", "(0,1)", False), ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("(2,\\infty)", "(2, \\infty)", True), ("(2,\\infty)", "[2,\\infty)", False), ("[1,2]", "[1,3]", False),
    ("\\left[\\frac{1}{2}, 3\\right)", "[0.5,3)", True), ("(-\\infty,0)\\cup(1,\\infty)", "(-\\infty,0)\\cup(1,\\infty)", True),
    ("(-\\infty,0)\\cup(1,\\infty)", "(1,\\infty)\\cup(-\\infty,0)", True), ("(-\\infty,0)\\cup(1,\\infty)", "(-\\infty,1)", False),
    ("[-2,5]", "\\left[ -2, 5 \\right]", True), ("(-1, 1)", "(-1, 2)", False),
])
boxed("set", [
    ("\\{1,2\\}", "\\{2,1\\}", True), ("\\{1,2,3\\}", "\\{1,2\\}", False), ("\\{-1, 3\\}", "\\{3, -1\\}", True),
    ("\\{\\frac{1}{2}, 2\\}", "\\{2, 0.5\\}", True), ("\\{1,2\\}", "\\{1,3\\}", False), ("\\{0\\}", "\\{0\\}", True),
])
boxed("tuple", [
    ("(1,2)", "(1, 2)", True), ("(1,2)", "(2,1)", False), ("(1,2)", "(1,3)", False), ("(1,2)", "(1,2,3)", False),
    ("(0.5, 3)", "(\\frac{1}{2}, 3)", True), ("\\left(1,2\\right)", "(1,2)", True), ("(3,-4)", "(3, -4)", True),
    ("(\\sqrt{2}, \\pi)", "(\\sqrt 2, \\pi)", True), ("(2, 3, 4)", "(2, 4, 3)", False), ("(-1, 0)", "(1, 0)", False),
])
boxed("list", [
    ("1, 2", "2, 1", True), ("-3, 4", "4, -3", True), ("1, 2, 3", "1, 2", False), ("1, 2", "1, 3", False),
    ("2, -2", "-2, 2", True), ("\\frac{1}{2}, 1", "1, 0.5", True), ("3, 5", "3", False),
])
boxed("equation", [
    ("3", "x=3", True), ("x=3", "3", True), ("x=3", "x=3", True), ("y=2x+1", "y=1+2x", True), ("3", "x=4", False),
    ("x=3", "4", False), ("2x+1", "y=2x+1", True), ("y=2x+1", "y=2x-1", False), ("x=2", "x = 2", True),
    ("x^2+y^2=4", "y^2+x^2=4", True), ("x=1, x=2", "1, 2", True),
])
boxed("inequality", [
    ("[1,2]", "1\\le x\\le 2", True), ("1\\le x\\le 2", "[1,2]", True), ("(3,\\infty)", "x>3", True),
    ("x>3", "(3,\\infty)", True), ("x\\ge 3", "x \\geq 3", True), ("x<3", "x\\le 3", False), ("(1,2)", "1<x<2", True),
    ("x > 3", "x > 4", False), ("(-\\infty, 5)", "x < 5", True), ("[1,2]", "1<x<2", False),
])
boxed("matrix", [
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", True),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}", False),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    ("\\begin{pmatrix}\\frac{1}{2}&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}0.5&0\\\\0&1\\end{pmatrix}", True),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", False),
    ("\\begin{pmatrix}2\\\\-1\\end{pmatrix}", "\\begin{pmatrix}-1\\\\2\\end{pmatrix}", False),
])
boxed("percent", [
    ("50", "50\\%", True), ("0.5", "50\\%", True), ("12.5", "12.5\\%", True), ("50", "5\\%", False),
    ("25\\%", "25", True), ("25\\%", "0.25", True), ("30", "40\\%", False), ("100\\%", "100", True),
])
boxed("unit", [
    ("10", "10\\text{ cm}", True), ("10", "10 \\text{cm}", True), ("5", "5\\text{ apples}", True), ("10", "11\\text{ cm}", False),
    ("12", "12\\mbox{ inches}", True), ("30", "30^\\circ", True), ("30", "30^{\\circ}", True), ("45", "40^\\circ", False),
    ("18", "\\$18", True), ("18", "\\$18.00", True), ("7", "7\\text{ meters}", True), ("90", "90^\\circ", True),
    ("4", "4 \\mathrm{cm}^2", True), ("20", "\\text{20 dollars}", True),
])
boxed("scientific", [
    ("300000", "3\\times 10^{5}", True), ("3\\times10^5", "300000", True), ("0.001", "10^{-3}", True),
    ("1000", "10^3", True), ("1000", "10^4", False), ("2.5\\times 10^{3}", "2500", True), ("1.2\\times10^{-2}", "0.012", True),
    ("6.02\\times10^{23}", "6.02\\times10^{22}", False), ("1024", "2^{10}", True),
])
boxed("spacing", [
    ("\\frac{1}{2}", "\\left(\\frac{1}{2}\\right)", True), ("12", "\\, 12", True), ("\\frac{1}{2}", "\\displaystyle\\frac{1}{2}", True),
    ("(1,2)", "\\left( 1 , 2 \\right)", True), ("5", "\\! 5", True), ("3", "\\;3\\;", True), ("7", "{7}", True),
    ("\\frac{3}{2}", "\\dfrac{3}{2}\\,", True), ("2", "\\left|-2\\right|", True), ("-2", "|-2|", False),
])
boxed("text", [
    ("\\text{(B)}", "\\text{(B)}", True), ("\\text{yes}", "\\text{yes}", True), ("\\text{odd}", "\\text{even}", False),
])

# Free-form outputs: where the answer sits decides what is extracted.
LONG = ("Let us compute step by step. First, the area of the square is $4^2 = 16$. Then the triangle has area "
        "$\\frac{1}{2}\\cdot 4 \\cdot 3 = 6$. Adding them gives $16 + 6 = 22$.")
for gold, tail, expect in [
    ("22", " Therefore the answer is $\\boxed{22}$.", True),
    ("22", " Therefore the answer is $\\boxed{21}$.", False),
    ("22", "\n\nThe final answer is $22$.", True),
    ("22", "\n\nThe final answer is 22.", True),
    ("22", "\n\nFinal answer: 22", True),
    ("22", "\n#### 22", True),
    ("22", "\n#### 23", False),
    ("22", " So the total area is 22.", True),
    ("22", " So the total area is 23.", False),
    ("6", " Hence $\\boxed{22}$.", False),
    ("16", " The answer is 22.", False),
    ("22", " The answer is $22$ square units.", True),
    ("22", " So the answer is \\(22\\).", True),
    ("22", " So the answer is \\[22\\]", True),
    ("22", " Answer: $\\boxed{22}$", True),
    ("22", " The answer is $\\fbox{22}$.", True),
]:
    case("long", gold, LONG + tail, expect)

for gold, pred, expect in [
    ("5", "First I thought $\\boxed{3}$, but checking again the answer is $\\boxed{5}$.", True),
    ("3", "First I thought $\\boxed{3}$, but checking again the answer is $\\boxed{5}$.", False),
    ("2, 5", "The roots are $\\boxed{2}$ and $\\boxed{5}$.", True),
    ("7", "We have $x=\\boxed{7}$ and also $\\boxed{7}$ again.", True),
    ("\\frac{1}{2}", "The probability is $\\boxed{\\dfrac{1}{2}}$. Some checking: $1-\\frac12 = \\frac12$.", True),
    ("10", "Answer $\\boxed{10}$. Note that 11 is not possible.", True),
]:
    case("several_boxed", gold, pred, expect)

for gold, pred, expect in [
    ("5", "The answer is five.", True),
    ("12", "There are twelve apples.", True),
    ("3", "She has three cats left.", True),
    ("2", "The answer is one.", False),
    ("0.5", "The answer is one half.", True),
    ("20", "twenty", True),
]:
    case("words", gold, pred, expect)

for gold, pred, expect in [
    ("x=5", "Solving gives $2x = 10$, so $x = 5$.", True),
    ("5", "Solving gives $2x = 10$, so $x = 5$.", True),
    ("10", "Solving gives $2x = 10$, so $x = 5$.", False),
    ("\\frac{3}{4}", "The probability is 3/4.", True),
    ("\\frac{3}{4}", "The probability is $3/4$.", True),
    ("0.75", "The probability is 75%.", True),
    ("\\sqrt{2}", "The side length is $\\sqrt{2}$ units.", True),
    ("\\sqrt{2}", "The side length is $\\sqrt{3}$ units.", False),
    ("(1,2)", "The point is $(1, 2)$.", True),
    ("(1,2)", "The point is $(2, 1)$.", False),
    ("[1,2]", "So $x \\in [1, 2]$.", True),
    ("3.5", "The mean is 3.5 and the median is 3.", False),
    ("42", "We compute 6*7 = 42", True),
    ("1000", "The result is 1e3.", True),
    ("-4", "So the minimum value is $-4$.", True),
    ("12", "The result is $$12$$", True),
    ("\\frac{5}{2}", "which simplifies to $\\frac{5}{2}$, i.e. $2.5$.", True),
    ("7", "$7$ is the answer, not $8$.", False),
    ("-1", "No real answer other than $x = -1$.", True),
]:
    case("free_form", gold, pred, expect)

# Several answers: \pm, "or" / "and" between equations or math spans, \quad between answers.
for gold, pred, expect in [
    ("1\\pm\\sqrt{2}", "$1+\\sqrt{2}, 1-\\sqrt{2}$", True), ("1\\pm\\sqrt{2}", "$1-\\sqrt{2}, 1+\\sqrt{2}$", True),
    ("1+\\sqrt{2}, 1-\\sqrt{2}", "$1\\pm\\sqrt{2}$", True), ("\\pm 2", "$2, -2$", True), ("\\pm 2", "$\\pm 2$", True),
    ("1\\pm\\sqrt{2}", "$1\\pm\\sqrt{3}$", False), ("\\pm 3", "$3$", False), ("2, 3", "$x=2 \\text{ or } x=3$", True),
    ("2, 3", "$x = 2$ or $x = 3$", True), ("2, 3", "$x = 2$ or $x = 4$", False), ("\\frac{1}{2}", "$\\frac{1}{2}$ or $0.5$", True),
    ("12", "$12$ and $13$", False), ("2", "$x^2 = 4$ so $x = \\pm 2$", False), ("2, 3", "$2 \\quad 3$", True),
    ("23", "$2 \\quad 3$", False), ("-1, 5", "The solutions are $x=-1$ and $x=5$.", True),
    ("-1, 5", "The solutions are $x=-1$ and $x=6$.", False),
]:
    case("joined", gold, pred, expect)

# Plain-text answers after an anchor; assignments against a tuple.
for gold, pred, expect in [
    ("2x+1", "The answer is 2x+1.", True), ("x^2", "So the answer is x^2.", True), ("\\sqrt{2}", "The answer is sqrt(2).", True),
    ("\\frac{1}{2}", "The answer is 1/2.", True), ("3\\pi", "The answer is 3pi.", True), ("(2,3)", "The answer is (2, 3).", True),
    ("(2,3)", "$a=2, b=3$", True), ("(2,3)", "$a=3, b=2$", False), ("10", "The answer is 10 apples.", True),
    ("-3", "The answer is negative 3.", True), ("4", "The answer is 2^2.", True), ("5", "The answer is 2^2.", False),
    ("0.5", "The answer is 1/2 = 0.5", True), ("7", "The answer is **7**.", True), ("7", "**Final Answer:** 7", True),
    ("\\frac{1}{4}", "Answer: 1/4", True), ("42", "The answer is 6*7 = 42.", True), ("41", "The answer is 6*7 = 42.", False),
]:
    case("plain", gold, pred, expect)

# The left side of an equation in the prediction; a choice letter as text.
for gold, pred, expect in [
    ("2x+1", "$f(x) = 2x+1$", True), ("A", "$\\text{(A)}$", True), ("\\text{(A)}", "$A$", True), ("\\text{(A)}", "$B$", False),
    ("3", "$(3)$", True), ("\\frac{1}{2}", "$P = \\frac{1}{2}$", True), ("5", "$AB = 5$", True), ("5", "$AB = 6$", False),
    ("5", "$\\overline{AB} = 5$", True), ("10", "$x+y = 10$", True), ("\\frac{\\sqrt{3}}{2}", "$\\sin 60^\\circ = \\frac{\\sqrt{3}}{2}$", True),
    ("2", "$\\angle A = 2$", True), ("4", "$a_n = 4$", True), ("3", "$n=3$ and $m=4$", False), ("x+1", "$y=x+1$", True),
    ("2", "$2 = x$", False),
]:
    case("equation_lhs", gold, pred, expect)

# Extraction modes: only LaTeX, only plain expressions, only multiple-choice letters.
for gold, pred, mode, expect in [
    ("\\frac{1}{2}", "The answer is $\\frac{1}{2}$.", "latex", True),
    ("\\frac{1}{2}", "The answer is 1/2.", "latex", False),
    ("\\frac{1}{2}", "The answer is 1/2.", "expr", True),
    ("\\frac{1}{2}", "The answer is $\\frac{1}{2}$.", "expr", False),
    ("3", "So the answer is 3.", "expr", True),
    ("3", "So the answer is 4.", "expr", False),
    ("3", "So the answer is $\\boxed{3}$.", "latex", True),
    ("0.25", "Thus 1/4 of them", "expr", True),
    ("B", "The answer is (B).", "string", True),
    ("B", "The answer is B.", "string", True),
    ("C", "The answer is B.", "string", False),
    ("A", "I think the correct choice is A", "string", True),
    ("D", "Answer: C", "string", False),
    ("B", "The answer is $\\boxed{B}$", "latex+expr", True),
    ("B", "The answer is $\\boxed{C}$", "latex+expr", False),
]:
    case("mode", gold, pred, expect, mode)


# Held out: written after the checker was first measured, to see how far its agreement carries to new cases.
# MATH-style solutions as a model writes them, each with a right and a wrong final answer.
HELD = []


def held(category, gold, pred, expect, mode="latex+expr"):
    HELD.append({"category": category, "gold": gold, "pred": pred, "expect": expect, "mode": mode})


SOLUTIONS = [
    # (gold, solution text with {A} where the final answer goes, right answer, wrong answer)
    ("\\frac{5}{12}", "There are $\\binom{9}{2} = 36$ pairs, and $15$ of them work, so the probability is {A}.",
     "$\\boxed{\\frac{5}{12}}$", "$\\boxed{\\frac{5}{11}}$"),
    ("12\\pi", "The radius is $r = \\sqrt{12}$, so the area is $\\pi r^2$, which gives {A}.", "$\\boxed{12\\pi}$",
     "$\\boxed{24\\pi}$"),
    ("(-2, 3)", "Completing the square, $(x+2)^2 + (y-3)^2 = 16$. The center is {A}.", "$\\boxed{(-2,3)}$",
     "$\\boxed{(2,-3)}$"),
    ("\\frac{\\sqrt{3}}{2}", "Since the angle is $60^\\circ$, $\\sin 60^\\circ =$ {A}.", "$\\boxed{\\dfrac{\\sqrt3}{2}}$",
     "$\\boxed{\\dfrac{1}{2}}$"),
    ("-\\frac{1}{3}", "Setting the slopes equal: $3k + 1 = 0$, so $k =$ {A}.", "$\\boxed{-\\frac13}$", "$\\boxed{\\frac13}$"),
    ("2\\sqrt{5}", "By the distance formula, $d = \\sqrt{(4-0)^2 + (2-0)^2} = \\sqrt{20}$, i.e. {A}.",
     "$\\boxed{2\\sqrt{5}}$", "$\\boxed{4\\sqrt{5}}$"),
    ("[-3, 5]", "The quadratic $x^2 - 2x - 15 \\le 0$ factors as $(x-5)(x+3) \\le 0$, so $x \\in$ {A}.",
     "$\\boxed{[-3,5]}$", "$\\boxed{(-3,5)}$"),
    ("\\{-2, 2\\}", "From $x^2 = 4$ the solutions form the set {A}.", "$\\boxed{\\{2,-2\\}}$", "$\\boxed{\\{2\\}}$"),
    ("3, -1", "The equation $(x-3)(x+1) = 0$ has roots {A}.", "$\\boxed{-1, 3}$", "$\\boxed{1, -3}$"),
    ("x^2 - 4x + 4", "Expanding, the polynomial is {A}.", "$\\boxed{(x-2)^2}$", "$\\boxed{(x+2)^2}$"),
    ("\\begin{pmatrix} 2 & 1 \\\\ 0 & 3 \\end{pmatrix}", "Multiplying the matrices gives {A}.",
     "$\\boxed{\\begin{pmatrix}2&1\\\\0&3\\end{pmatrix}}$", "$\\boxed{\\begin{pmatrix}2&0\\\\1&3\\end{pmatrix}}$"),
    ("6", "We need $\\log_2 64$, and $2^6 = 64$, so the answer is {A}.", "$6$", "$8$"),
    ("40", "The discount is $20\\%$ of $\\$50$, so she pays {A}.", "$\\$40$", "$\\$10$"),
    ("5", "Thus the remainder when $2^{100}$ is divided by $7$ is... let me recompute: the answer is {A}.", "$\\boxed{2}$",
     "$\\boxed{5}$"),
    ("\\frac{1}{4}", "The ratio of the areas is $\\left(\\frac{1}{2}\\right)^2$ = {A}.", "$\\boxed{0.25}$", "$\\boxed{0.5}$"),
    ("1.5", "So the speed is $\\frac{3}{2}$ meters per second, i.e. {A}.", "$\\boxed{\\frac{3}{2}}$", "$\\boxed{\\frac{2}{3}}$"),
    ("\\infty", "The series diverges, so the sum is {A}.", "$\\boxed{\\infty}$", "$\\boxed{0}$"),
    ("(-\\infty, -1) \\cup (2, \\infty)", "The sign chart gives {A}.", "$\\boxed{(-\\infty,-1)\\cup(2,\\infty)}$",
     "$\\boxed{(-1,2)}$"),
    ("y = -2x + 7", "The slope is $-2$ and the line passes through $(1, 5)$, so the line is {A}.", "$\\boxed{y=7-2x}$",
     "$\\boxed{y=-2x+5}$"),
    ("8", "Each side is $\\sqrt{64} = 8$ cm, so the side length is {A}.", "$\\boxed{8\\text{ cm}}$",
     "$\\boxed{16\\text{ cm}}$"),
    ("\\frac{3}{5}", "By SOH-CAH-TOA, $\\cos\\theta = \\frac{\\text{adj}}{\\text{hyp}}$ = {A}.", "$\\boxed{\\frac{6}{10}}$",
     "$\\boxed{\\frac{4}{5}}$"),
    ("\\sqrt{2}", "Rationalizing, $\\frac{2}{\\sqrt{2}}$ simplifies to {A}.", "$\\boxed{\\sqrt{2}}$", "$\\boxed{2}$"),
    ("1", "Since $\\sin^2\\theta + \\cos^2\\theta = 1$ for every $\\theta$, the value is {A}.", "$\\boxed{1}$",
     "$\\boxed{0}$"),
    ("2^{10}", "There are $2$ choices for each of the $10$ bits, so {A} subsets.", "$\\boxed{1024}$", "$\\boxed{1000}$"),
    ("\\frac{\\pi}{6}", "The angle whose sine is $\\frac12$ in $[0, \\frac{\\pi}{2}]$ is {A}.", "$\\boxed{\\frac{\\pi}{6}}$",
     "$\\boxed{\\frac{\\pi}{3}}$"),
    ("3\\sqrt{3}", "The height is $\\frac{\\sqrt{3}}{2}\\cdot 6$, which is {A}.", "$\\boxed{3\\sqrt3}$",
     "$\\boxed{6\\sqrt3}$"),
    ("-7", "Plugging in, $f(-2) = 3(-2)^2 - 4(-2) - 27 =$ {A}.", "$\\boxed{-7}$", "$\\boxed{7}$"),
    ("0.2", "The probability is $\\frac{1}{5}$, so the answer is {A}.", "$\\boxed{20\\%}$", "$\\boxed{2\\%}$"),
    ("10^{6}", "A million is {A}.", "$\\boxed{1{,}000{,}000}$", "$\\boxed{100{,}000}$"),
    ("4", "**Step 1:** $2x + 3 = 11$.\n**Step 2:** $2x = 8$.\n**Step 3:** Therefore {A}.", "$x = 4$", "$x = 8$"),
]
for gold, text, right, wrong in SOLUTIONS:
    held("solution", gold, text.replace("{A}", right), True)
    held("solution", gold, text.replace("{A}", wrong), False)

for gold, pred, expect in [
    ("\\frac{7}{3}", "$\\frac{7}{3}$", True), ("\\frac{7}{3}", "$2\\frac{1}{3}$", True), ("\\frac{7}{3}", "$2.33$", False),
    ("-\\sqrt{3}", "$-\\sqrt{3}$", True), ("-\\sqrt{3}", "$\\sqrt{3}$", False), ("\\sqrt{3}-1", "$-1+\\sqrt{3}$", True),
    ("\\frac{\\sqrt{6}}{3}", "$\\sqrt{\\frac{2}{3}}$", True), ("\\frac{\\sqrt{6}}{3}", "$\\frac{\\sqrt{6}}{2}$", False),
    ("2\\pi", "$6.283185$", True), ("2\\pi", "$6.28$", False), ("e", "$e$", True), ("\\ln 4", "$2\\ln 2$", True),
    ("\\ln 4", "$\\ln 2$", False), ("\\log_2 8", "$3$", True), ("\\sqrt[4]{16}", "$2$", True), ("x^{1/2}", "$\\sqrt{x}$", True),
    ("\\frac{x+1}{x-1}", "$\\frac{1+x}{x-1}$", True), ("\\frac{x+1}{x-1}", "$\\frac{x-1}{x+1}$", False),
    ("(x-1)(x-2)", "$x^2-3x+2$", True), ("(x-1)(x-2)", "$x^2-3x-2$", False), ("2^{x+1}", "$2\\cdot 2^x$", True),
    ("\\binom{6}{2}", "$15$", True), ("5!", "$120$", True), ("5!", "$100$", False), ("|x-1|", "$|1-x|$", True),
    ("[2, 7)", "$[2,7)$", True), ("[2, 7)", "$[2,7]$", False), ("(0, 1]", "$(0,1]$", True), ("(0,1]", "$0 < x \\le 1$", False),
    ("0 < x \\le 1", "$(0,1]$", True), ("x \\ge -2", "$[-2, \\infty)$", True), ("x \\ge -2", "$(-2, \\infty)$", False),
    ("\\{1, 2, 3\\}", "$\\{3, 2, 1\\}$", True), ("\\{1, 2, 3\\}", "$\\{1, 2, 4\\}$", False), ("(1, 2, 3)", "$(1,2,3)$", True),
    ("(1, 2, 3)", "$(3,2,1)$", False), ("1, 2, 3", "$3, 1, 2$", True), ("x = 7", "$7$", True), ("x = 7", "$x = -7$", False),
    ("a = 2", "$2$", True), ("k=\\frac{1}{2}", "$0.5$", True), ("90^\\circ", "$90$", True), ("90", "$90^{\\circ}$", True),
    ("45", "$\\frac{\\pi}{4}$", False), ("75\\%", "$75$", True), ("75\\%", "$0.75$", True), ("75\\%", "$7.5$", False),
    ("3", "$3.0$", True), ("3", "$3.01$", False), ("1000", "$1000.0$", True), ("\\frac{2}{3}", "$0.666667$", True),
    ("\\frac{2}{3}", "$0.67$", False), ("12", "$12 \\text{ inches}$", True), ("12", "$12$ feet", True),
    ("\\$12.50", "$12.5$", True), ("12.50", "$12.49$", False), ("5\\text{ m}", "$5$", True),
    ("\\text{Monday}", "$\\text{Monday}$", True), ("\\text{Monday}", "$\\text{Tuesday}$", False),
    ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "$\\begin{pmatrix}1\\\\-2\\end{pmatrix}$", True),
    ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "$\\begin{pmatrix}-1\\\\2\\end{pmatrix}$", False),
    ("\\begin{pmatrix} \\frac{1}{3} & 0 \\\\ 0 & 2 \\end{pmatrix}", "$\\begin{bmatrix}1/3&0\\\\0&2\\end{bmatrix}$", True),
    ("4.5\\times 10^{-3}", "$0.0045$", True), ("4.5\\times 10^{-3}", "$0.045$", False), ("2 \\times 10^{4}", "$20000$", True),
    ("\\dfrac{9}{4}", "$\\tfrac{9}{4}$", True), ("\\left(\\frac{1}{2}, \\frac{3}{2}\\right)", "$(0.5, 1.5)$", True),
    ("\\left(\\frac{1}{2}, \\frac{3}{2}\\right)", "$(1.5, 0.5)$", False), ("\\pm 2", "$\\pm 2$", True),
    ("\\emptyset", "$\\emptyset$", True), ("3+4i", "$3+4i$", True), ("3+4i", "$4i+3$", True), ("3+4i", "$3-4i$", False),
]:
    held("notation", gold, f"The final answer is {pred}.", expect)

for gold, pred, expect in [
    ("9", "Let's count: 1, 3, 5, 7, 9, 11, 13, 15, 17. That is 9 numbers.", True),
    ("9", "Let's count: 1, 3, 5, 7, 9, 11, 13, 15, 17. That is 8 numbers.", False),
    ("17", "The largest prime less than 20 is 19... no wait, we need it odd and 1 mod 4, which is 17.", True),
    ("250", "She earns $\\$25$ per hour for $10$ hours: $25 \\times 10 = 250$ dollars.", True),
    ("250", "She earns $\\$25$ per hour for $10$ hours: $25 \\times 10 = 200$ dollars.", False),
    ("\\frac{1}{2}", "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", True),
    ("\\frac{1}{2}", "Final Answer: The final answer is $\\frac{1}{3}$. I hope it is correct.", False),
    ("24", "We get $4! = 24$ arrangements.\n\n**Answer:** 24", True),
    ("24", "We get $4! = 24$ arrangements.\n\n**Answer:** 12", False),
    ("3", "The answer is 3 because $3^2 = 9$.", True),
    ("-2", "So $m = -2$. Checking: $-2 + 2 = 0$. ✓", False),
    ("6", "I'll try $x=5$: no. $x=6$: yes. So $x=6$.", True),
    ("6", "I'll try $x=6$: no. $x=5$: yes. So $x=5$.", False),
    ("4", "The answer is \\boxed{4}.", True),
    ("4", "The answer is \\boxed 4.", True),
    ("\\frac{4}{9}", "\\[ P = \\frac{4}{9} \\]", True),
    ("7", "Therefore, the final answer is: $\\boxed{7}$. I hope it is correct.", True),
    ("7", "Therefore, the final answer is: $\\boxed{17}$. I hope it is correct.", False),
    ("2", "The answer is $\\boxed{2}$.\n\nWait, let me double-check. Yes, $\\boxed{2}$ is correct.", True),
    ("100", "It costs one hundred dollars.", True),
]:
    held("output", gold, pred, expect)


# Held out, second batch: boxed answers as models format them (units, text, currency inside the box).
for gold, pred, expect in [
    ("\\text{(C)}", "Comparing the options, the answer is $\\boxed{\\text{(C)}}$.", True),
    ("\\text{(C)}", "Comparing the options, the answer is $\\boxed{\\text{(D)}}$.", False),
    ("4.50", "She pays $\\boxed{\\$4.50}$ in total.", True),
    ("4.50", "She pays $\\boxed{\\$4.05}$ in total.", False),
    ("12", "The rate is $\\boxed{12\\%}$.", True),
    ("\\frac{1}{2}", "It takes $\\boxed{\\frac{1}{2}\\text{ hours}}$.", True),
    ("\\frac{1}{2}", "It takes $\\boxed{\\frac{1}{3}\\text{ hours}}$.", False),
    ("5, 7", "The two numbers are $\\boxed{5 \\text{ and } 7}$.", True),
    ("5, 7", "The two numbers are $\\boxed{5 \\text{ and } 8}$.", False),
    ("\\frac{3\\sqrt{2}}{4}", "Simplifying, $\\boxed{\\dfrac{3\\sqrt{2}}{4}}$.", True),
    ("\\frac{3\\sqrt{2}}{4}", "Simplifying, $\\boxed{\\dfrac{3}{2\\sqrt{2}}}$.", True),
    ("\\frac{3\\sqrt{2}}{4}", "Simplifying, $\\boxed{\\dfrac{3\\sqrt{2}}{2}}$.", False),
    ("3", "The answer is $\\boxed{3}$ dollars.", True),
    ("-\\frac{5}{3}", "Thus $a = \\boxed{-\\frac{5}{3}}$", True),
    ("-\\frac{5}{3}", "Thus $a = \\boxed{\\frac{-5}{-3}}$", False),
    ("(3, -2)", "The intersection point is $\\boxed{(3,-2)}$.", True),
    ("(3, -2)", "The intersection point is $\\boxed{(-2,3)}$.", False),
    ("27\\pi", "The volume is $\\boxed{27 \\pi \\text{ cubic units}}$.", True),
    ("27\\pi", "The volume is $\\boxed{9 \\pi \\text{ cubic units}}$.", False),
    ("\\frac{\\pi}{2}", "The period is $\\boxed{\\pi/2}$.", True),
    ("x^3 - 3x + 2", "The polynomial is $\\boxed{x^3-3x+2}$.", True),
    ("x^3 - 3x + 2", "The polynomial is $\\boxed{(x-1)^2(x+2)}$.", True),
    ("x^3 - 3x + 2", "The polynomial is $\\boxed{(x-1)(x+2)^2}$.", False),
    ("\\sqrt{13}", "The magnitude is $\\boxed{\\sqrt{13}}$ units.", True),
    ("\\sqrt{13}", "The magnitude is $\\boxed{13}$ units.", False),
    ("2", "So $\\log_3 9 = \\boxed{2}$.", True),
    ("0", "Every term cancels, giving $\\boxed{0}$.", True),
    ("0", "Every term cancels, giving $\\boxed{O}$.", False),
    ("(-\\infty, 2]", "The range is $\\boxed{(-\\infty, 2]}$.", True),
    ("(-\\infty, 2]", "The range is $\\boxed{(-\\infty, 2)}$.", False),
    ("\\{1, 4\\}", "The solution set is $\\boxed{\\{4, 1\\}}$.", True),
    ("1,4", "The solutions are $\\boxed{1}$ and $\\boxed{4}$.", True),
    ("1,4", "The solutions are $\\boxed{1}$ and $\\boxed{5}$.", False),
    ("8", "Therefore, there are $\\boxed{8}$ ways.\n\nNote: an earlier attempt gave $\\boxed{6}$, which was wrong.", False),
    ("\\frac{1}{27}", "The probability is $\\left(\\frac13\\right)^3 = \\boxed{\\frac{1}{27}}$.", True),
    ("\\frac{1}{27}", "The probability is $\\left(\\frac13\\right)^3 = \\boxed{\\frac{1}{9}}$.", False),
    ("1.25", "Converting, $\\frac{5}{4} = \\boxed{1.25}$.", True),
    ("\\dfrac{5}{4}", "Converting, we get $\\boxed{1.25}$.", True),
    ("100", "The answer is $\\boxed{10^2}$.", True),
    ("60^\\circ", "Each angle measures $\\boxed{60^\\circ}$.", True),
    ("60^\\circ", "Each angle measures $\\boxed{120^\\circ}$.", False),
]:
    held("output2", gold, pred, expect)


# Real prose: GSM8K test solutions (../shared/data/gsm8k, MIT) with their calculator annotations and "#### n" line
# removed, so that the answer must be found in the text; each against its answer and against a wrong one (n + 1).
GSM8K = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "gsm8k", "test.jsonl")


def gsm8k_cases(every=13, limit=100):
    if not os.path.exists(GSM8K):
        return []
    out = []
    with open(GSM8K) as f:
        rows = [json.loads(line) for line in f]
    for row in rows[::every][:limit]:
        body, answer = row["answer"].rsplit("####", 1)
        text = re.sub(r"<<[^>]*>>", "", body).strip()
        gold = answer.strip().replace(",", "")
        wrong = str(int(gold) + 1) if re.fullmatch(r"-?\d+", gold) else gold + "1"
        out.append({"category": "gsm8k_prose", "gold": gold, "pred": text, "expect": True, "mode": "latex+expr"})
        out.append({"category": "gsm8k_prose", "gold": wrong, "pred": text, "expect": False, "mode": "latex+expr"})
    return out


# Real model outputs: SmolLM2-135M-Instruct on MATH-style problems (src/verify/fixtures/generate_smollm2_outputs.mjs).
MODEL_OUTPUTS = os.path.join(os.path.dirname(OUT), "smollm2_outputs.json")


def model_cases():
    if not os.path.exists(MODEL_OUTPUTS):
        return []
    with open(MODEL_OUTPUTS) as f:
        outputs = json.load(f)["outputs"]
    return [{"category": "smollm2", "gold": o["gold"], "pred": o["completion"], "expect": None, "mode": "latex+expr"}
            for o in outputs]


def cross_cases(n=300):
    """Answers of one category against another answer of the same category: mostly unequal, some equal by accident."""
    rng = random.Random(19)
    by_cat = {}
    for c in CASES + HELD:
        if c["mode"] == "latex+expr" and c["category"] not in ("long", "several_boxed", "words", "free_form", "output"):
            by_cat.setdefault(c["category"], set()).add(c["gold"])
    pools = [sorted(v) for v in by_cat.values() if len(v) > 2]
    out = []
    while len(out) < n:
        pool = rng.choice(pools)
        g, p = rng.sample(pool, 2)
        out.append({"category": "cross", "gold": g, "pred": f"The answer is ${p}$.", "expect": None, "mode": "latex+expr"})
    return out


def perturbed_cases(n=300):
    """Each scalar reference against a small change of itself (doubled, negated, plus one, inverted, squared)."""
    rng = random.Random(7)
    golds = sorted({c["gold"] for c in CASES + HELD if c["category"] in (
        "integer", "decimal", "fraction", "surd", "constant", "symbolic", "scientific", "notation", "solution")})
    golds = [g for g in golds if not re.search(r"[=<>,]|\\le|\\ge|\\in|\\text|matrix|\\infty|\\\{|\[|\(.*,", g)]
    changes = ["2\\left({g}\\right)", "-\\left({g}\\right)", "\\left({g}\\right)+1", "\\frac{{1}}{{{g}}}",
               "\\left({g}\\right)^2", "\\left({g}\\right)-\\frac{{1}}{{1000}}", "\\left({g}\\right)\\cdot 1.01"]
    out = []
    while len(out) < n:
        g = rng.choice(golds)
        p = rng.choice(changes).format(g=g)
        out.append({"category": "perturbed", "gold": g, "pred": f"So the answer is $\\boxed{{{p}}}$.", "expect": None,
                    "mode": "latex+expr"})
    return out


def gold_parsed(gold, mode):
    if mode == "string":
        return parse(gold, extraction_config=MODES[mode])
    return parse(f"${gold}$", extraction_config=[LatexExtractionConfig()])


def main():
    out = []
    cases = [{**c, "held_out": False} for c in CASES] + [{**c, "held_out": True} for c in HELD + gsm8k_cases() + model_cases() + cross_cases() + perturbed_cases()]
    for i, c in enumerate(cases):
        g = gold_parsed(c["gold"], c["mode"])
        p = parse(c["pred"], extraction_config=MODES[c["mode"]])
        mv = bool(verify(g, p)) if g and p else False
        out.append({"id": i, **c, "mv": mv, "mv_pred": str(p[-1]) if p else None})
    meta = {"format": 1, "math_verify": version("math-verify"), "latex2sympy2_extended": version("latex2sympy2_extended"),
            "sympy": version("sympy"), "gold": "parse('$' + gold + '$', [LatexExtractionConfig()])",
            "pred": "parse(pred, MODES[mode])", "verdict": "verify(gold, pred) with defaults"}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"meta": meta, "modes": list(MODES), "cases": out}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    agree = sum(c["mv"] == c["expect"] for c in out if c["expect"] is not None)
    held_out = sum(c["held_out"] for c in out)
    print(f"{len(out)} cases ({held_out} held out), math-verify agrees with the intended verdict on {agree}")


if __name__ == "__main__":
    main()
