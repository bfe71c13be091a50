// Verified records: a completion checked against its reference, step by step (DESIGN.md, "Records").
//
// For math tasks (arith, gsm8k, math): `correct` compares the extracted final answer with the reference answer
// (no answer at all is false; an answer that cannot be compared is null). Each step's `ok` is the calculator verdict;
// the step that states the final answer (the "####" line, or the step holding \boxed / "The answer is") is wrong if
// the answer is wrong. `first_error_step` is the first step with ok === false.
// The math task reads free-form output and compares answers as expressions (math.ts); `pred_source` tells how the
// answer was found ("boxed", "answer_is", "hash", "latex", "expr", "string").

import {
  answersEqual,
  extractAnswerIs,
  extractBoxed,
  extractHashAnswer,
  referenceAnswer,
  type AnswerStyle,
} from "./answer.js";
import { checkStep } from "./calculator.js";
import type { PredSource } from "./extract.js";
import { checkMathAnswer } from "./math.js";
import { splitSteps, type StepSpan } from "./steps.js";

export type MathTask = "arith" | "gsm8k" | "math";
export type Task = MathTask | "code";

export interface StepVerdict {
  text: string;
  ok: boolean | null;
}

export interface Verdict {
  correct: boolean | null;
  pred: string | null;
  /** How the math task found `pred` (absent for the other tasks). */
  pred_source?: PredSource | null;
  steps: StepVerdict[];
  first_error_step: number | null;
}

export function styleOf(task: MathTask): AnswerStyle {
  return task === "math" ? "math" : "gsm8k";
}

interface Located {
  text: string | null;
  /** Index of the step that states it, or -1. */
  step: number;
}

/** The predicted answer and the step it sits in. */
function locateAnswer(steps: StepSpan[], style: AnswerStyle): Located {
  const finders: [(s: string) => string | null, RegExp][] = [
    [extractHashAnswer, /####/],
    [extractBoxed, /\\(?:boxed|fbox)/],
    [extractAnswerIs, /answer\s*(?:is|:)/i],
  ];
  if (style === "math") [finders[0], finders[1]] = [finders[1], finders[0]];
  for (const [find, mark] of finders) {
    // "####" ends a solution: its first occurrence counts; \boxed and "The answer is": the last
    const order = steps.map((_, i) => i);
    if (find !== extractHashAnswer) order.reverse();
    for (const i of order) {
      if (!mark.test(steps[i].text)) continue;
      const text = find(steps[i].text);
      if (text !== null) return { text, step: i };
    }
  }
  return { text: null, step: -1 };
}

/** Verifies one solution against a reference answer (a full reference solution or just its final answer). */
export function verifySolution(completion: string, reference: string, task: MathTask): Verdict {
  const style = styleOf(task);
  const spans = splitSteps(completion);
  if (task === "math") return verifyMathSolution(completion, referenceAnswer(reference, style), spans);
  const pred = locateAnswer(spans, style);
  const correct = pred.text === null ? false : answersEqual(pred.text, referenceAnswer(reference, style));
  return finish(spans, pred.step, correct, { correct, pred: pred.text });
}

function verifyMathSolution(completion: string, gold: string, spans: StepSpan[]): Verdict {
  const v = checkMathAnswer(completion, gold);
  const step = v.at < 0 ? -1 : spans.findIndex((s) => v.at >= s.start && v.at < s.end);
  return finish(spans, step, v.correct, { correct: v.correct, pred: v.pred, pred_source: v.pred_source });
}

type Head = Omit<Verdict, "steps" | "first_error_step">;

/** Per-step calculator verdicts; the step that states the answer takes its verdict unless its arithmetic is wrong. */
function finish(spans: StepSpan[], answerStep: number, correct: boolean | null, head: Head): Verdict {
  const steps = spans.map((s, i): StepVerdict => {
    const calc = checkStep(s.text).ok;
    if (i !== answerStep || calc === false) return { text: s.text, ok: calc };
    return { text: s.text, ok: correct };
  });
  const first = steps.findIndex((s) => s.ok === false);
  return { ...head, steps, first_error_step: first < 0 ? null : first };
}
