// Step-Controlled DPO pairs (Lu et al. 2024): for a step-controlled sample (from `stepwise sample --cut ...`: the
// reference solution's steps 1..k as "prefix", then a continuation at rising temperature) that ends wrong, chosen is
// the reference solution's own continuation after step k and rejected the sampled one; the prefix goes into the
// prompt, so the loss covers only what follows it. Pairs of a problem alternate between its cut points.

import { completionText } from "../data/format.js";
import { referenceAnswer, type AnswerStyle } from "../verify/answer.js";
import { splitSteps } from "../verify/steps.js";
import {
  capPairs,
  rejectedSide,
  type Tally,
  type Pair,
  type ProblemSamples,
  type RejectedRule,
  type VerifiedSample,
} from "./records.js";

export interface ScdpoOptions {
  maxPairsPerProblem: number;
  rejected: RejectedRule; // full (default) or first_error: the continuation cut after its first wrong step
  style: AnswerStyle;
}

/** Items of each group taken in turn: a0 b0 c0 a1 b1 ... */
function roundRobin<T>(groups: T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; groups.some((g) => i < g.length); i++) for (const g of groups) if (i < g.length) out.push(g[i]);
  return out;
}

/** Why a sample gives no pair, or null when it gives one. */
function unusable(s: VerifiedSample, steps: number): string | null {
  if (s.cut === null || s.prefix === null) return "samples that are not step-controlled (no cut and prefix)";
  if (s.correct === null) return "undecided samples (correct: null)";
  if (s.correct) return "step-controlled samples that reached the right answer";
  if (!s.completion.startsWith(s.prefix)) return "samples whose completion does not start with their prefix";
  if (s.cut >= steps) return "samples cut beyond the end of the reference solution";
  if (completionText(s.completion.slice(s.prefix.length)).trim() === "") return "empty continuations";
  return null;
}

export function scdpoPairs(problems: ProblemSamples[], o: ScdpoOptions, tally: Tally): Pair[] {
  const pairs: Pair[] = [];
  for (const p of problems) {
    const solution = completionText(p.answer);
    const spans = splitSteps(solution);
    const answer = referenceAnswer(p.answer, o.style);
    const byCut = new Map<number, Pair[]>();
    for (const s of p.samples) {
      const why = unusable(s, spans.length);
      if (why) {
        tally.skip(why);
        continue;
      }
      const prefix = s.prefix!;
      const chosen = solution.slice(spans[s.cut!].start);
      const side = rejectedSide(s, prefix.length, o.rejected, tally);
      const rejected = side.eos ? completionText(side.text) : side.text;
      const list = byCut.get(s.cut!) ?? [];
      list.push({
        id: p.id,
        kind: "scdpo",
        question: p.question,
        prefix,
        chosen,
        rejected,
        fullChosen: prefix + chosen,
        fullRejected: completionText(s.completion),
        answer,
        rejectedEos: side.eos,
      });
      byCut.set(s.cut!, list);
    }
    pairs.push(...roundRobin([...byCut.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l)));
  }
  return capPairs(pairs, o.maxPairsPerProblem, tally);
}
