// Preference pairs from verified samples: outcome (DPO / RPO), Step-Controlled DPO and Step-DPO, in TRL or Step-DPO
// format, with a summary of what was made and what was skipped and why.

import type { AnswerStyle } from "../verify/answer.js";
import { outcomePairs } from "./outcome.js";
import type { Tally, ChosenRule, Pair, PairKind, ProblemSamples, RejectedRule } from "./records.js";
import { scdpoPairs } from "./scdpo.js";
import { stepDpoPairs, type StepDpoOptions, type StepDpoStats } from "./stepdpo.js";

export * from "./records.js";
export { outcomePairs, pickPairs, type OutcomeOptions } from "./outcome.js";
export { scdpoPairs, type ScdpoOptions } from "./scdpo.js";
export {
  correctedStep,
  STEP_CHOSEN,
  stepDpoPairs,
  type StepChosen,
  type StepDpoOptions,
  type StepDpoStats,
} from "./stepdpo.js";

export interface BuildOptions extends StepDpoOptions {
  kind: PairKind;
  balanceLengths: boolean; // outcome
  chosen: ChosenRule; // outcome: which correct samples may be chosen
  rejected: RejectedRule; // outcome, scdpo: whole rejected sides or cut after the first wrong step
  style: AnswerStyle;
}

export interface PairsPerProblem {
  mean: number; // over every problem in the input, those without pairs included
  max: number;
  histogram: Record<string, number>; // pairs -> problems with that many
}

/** Pairs of one kind, and what the builders skipped (tallied into `tally`). */
export async function buildPairs(
  problems: ProblemSamples[],
  o: BuildOptions,
  tally: Tally,
): Promise<{ pairs: Pair[]; stepdpo?: StepDpoStats }> {
  switch (o.kind) {
    case "outcome":
      return { pairs: outcomePairs(problems, o, tally) };
    case "scdpo":
      return { pairs: scdpoPairs(problems, o, tally) };
    case "stepdpo": {
      const r = await stepDpoPairs(problems, o, tally);
      return { pairs: r.pairs, stepdpo: r.stats };
    }
    default:
      return o.kind satisfies never;
  }
}

export function pairsPerProblem(problems: ProblemSamples[], pairs: Pair[]): PairsPerProblem {
  const count = new Map(problems.map((p) => [p.id, 0]));
  for (const p of pairs) count.set(p.id, (count.get(p.id) ?? 0) + 1);
  const histogram: Record<string, number> = {};
  let max = 0;
  for (const n of count.values()) {
    histogram[n] = (histogram[n] ?? 0) + 1;
    max = Math.max(max, n);
  }
  return { mean: count.size > 0 ? pairs.length / count.size : 0, max, histogram };
}
