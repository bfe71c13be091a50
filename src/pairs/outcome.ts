// Outcome pairs (DPO, Iterative RPO): per problem, a verified-correct completion as chosen and an incorrect one as
// rejected; identical completions count once, and at most a cap of pairs per problem. Which combinations: every
// correct and every incorrect completion is used once before any is used twice; with balanceLengths, among those
// the pairs whose two sides are closest in length come first (so length says less about which side wins).

import { completionText } from "../data/format.js";
import { referenceAnswer, type AnswerStyle } from "../verify/answer.js";
import {
  acceptable,
  capPairs,
  rejectedSide,
  type Tally,
  type ChosenRule,
  type Pair,
  type ProblemSamples,
  type RejectedRule,
} from "./records.js";

export interface OutcomeOptions {
  maxPairsPerProblem: number;
  chosen: ChosenRule; // sound (default): a chosen side must also pass the step verifier
  rejected: RejectedRule; // full (default) or first_error: rejected sides cut after their first wrong step
  balanceLengths: boolean;
  style: AnswerStyle; // how the final answer is read from "answer"
}

/** The distinct sides of samples (first occurrence kept), counting the duplicates. */
function distinct<T extends { text: string }>(sides: T[], tally: Tally): T[] {
  const seen = new Set<string>();
  const out = sides.filter((s) => !seen.has(s.text) && seen.add(s.text));
  tally.skip("duplicate completions", sides.length - out.length);
  return out;
}

/**
 * Up to `cap` distinct (chosen, rejected) index pairs: the least-used sides first, then (balance) the closest
 * lengths, then the earliest samples.
 */
export function pickPairs(chosen: string[], rejected: string[], cap: number, balance: boolean): [number, number][] {
  const usedC = chosen.map(() => 0);
  const usedR = rejected.map(() => 0);
  const taken = new Set<number>();
  const out: [number, number][] = [];
  const limit = Math.min(cap, chosen.length * rejected.length);
  while (out.length < limit) {
    let best: [number, number] | null = null;
    let bestKey: number[] = [];
    for (let i = 0; i < chosen.length; i++) {
      for (let j = 0; j < rejected.length; j++) {
        if (taken.has(i * rejected.length + j)) continue;
        const key = [usedC[i] + usedR[j], balance ? Math.abs(chosen[i].length - rejected[j].length) : 0];
        if (best === null || key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) {
          best = [i, j];
          bestKey = key;
        }
      }
    }
    const [i, j] = best!;
    taken.add(i * rejected.length + j);
    usedC[i]++;
    usedR[j]++;
    out.push([i, j]);
  }
  return out;
}

export function outcomePairs(problems: ProblemSamples[], o: OutcomeOptions, tally: Tally): Pair[] {
  const pairs: Pair[] = [];
  for (const p of problems) {
    tally.skip("undecided samples (correct: null)", p.samples.filter((s) => s.correct === null).length);
    const right = p.samples.filter((s) => s.correct === true);
    const good = right.filter((s) => acceptable(s, o.chosen));
    tally.skip("correct samples with a wrong step (not chosen: pairs.chosen sound)", right.length - good.length);
    const chosen = distinct(
      good.map((s) => ({ text: completionText(s.completion) })),
      tally,
    ).map((s) => s.text);
    const wrong = distinct(
      p.samples
        .filter((s) => s.correct === false)
        .map((s) => {
          const side = rejectedSide(s, 0, o.rejected, tally);
          return {
            ...side,
            text: side.eos ? completionText(side.text) : side.text,
            full: completionText(s.completion),
          };
        }),
      tally,
    );
    const rejected = wrong.map((s) => s.text);
    if (chosen.length === 0) tally.skip("problems without a correct sample");
    else if (rejected.length === 0) tally.skip("problems without an incorrect sample");
    const answer = referenceAnswer(p.answer, o.style);
    for (const [i, j] of pickPairs(chosen, rejected, o.maxPairsPerProblem, o.balanceLengths)) {
      pairs.push({
        id: p.id,
        kind: "outcome",
        question: p.question,
        prefix: "",
        chosen: chosen[i],
        rejected: rejected[j],
        fullChosen: chosen[i],
        fullRejected: wrong[j].full,
        answer,
        rejectedEos: wrong[j].eos,
      });
    }
  }
  return capPairs(pairs, o.maxPairsPerProblem, tally);
}
