// Outcome pairs (DPO, Iterative RPO): per problem, a verified-correct completion as chosen and an incorrect one as
// rejected; identical completions count once, and at most a cap of pairs per problem. Which combinations: every
// correct and every incorrect completion is used once before any is used twice; with balanceLengths, among those
// the pairs whose two sides are closest in length come first (so length says less about which side wins).

import { completionText } from "../data/format.js";
import { referenceAnswer, type AnswerStyle } from "../verify/answer.js";
import { capPairs, Tally, type Pair, type ProblemSamples, type VerifiedSample } from "./records.js";

export interface OutcomeOptions {
  maxPairsPerProblem: number;
  balanceLengths: boolean;
  style: AnswerStyle; // how the final answer is read from "answer"
}

/** The distinct completion texts of samples (first occurrence kept), counting the duplicates. */
function distinct(samples: VerifiedSample[], tally: Tally): string[] {
  const texts = samples.map((s) => completionText(s.completion));
  const out = [...new Set(texts)];
  tally.skip("duplicate completions", texts.length - out.length);
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
    const chosen = distinct(p.samples.filter((s) => s.correct === true), tally);
    const rejected = distinct(p.samples.filter((s) => s.correct === false), tally);
    if (chosen.length === 0) tally.skip("problems without a correct sample");
    else if (rejected.length === 0) tally.skip("problems without an incorrect sample");
    const answer = referenceAnswer(p.answer, o.style);
    for (const [i, j] of pickPairs(chosen, rejected, o.maxPairsPerProblem, o.balanceLengths)) {
      pairs.push({ id: p.id, kind: "outcome", question: p.question, prefix: "", chosen: chosen[i], rejected: rejected[j],
        fullChosen: chosen[i], fullRejected: rejected[j], answer });
    }
  }
  return capPairs(pairs, o.maxPairsPerProblem, tally);
}
