// Step-DPO pairs (Lai et al. 2024, "Step-DPO"): for an incorrect solution, find its first wrong step, then a
// self-generated correct step in its place; chosen is that step, rejected the wrong one, and the steps before it
// go into the prompt. The loss covers one step, with no EOS after it.
//
// The first wrong step: where the calculator flags a step (an arithmetic error in a <<a=b>> annotation or a plain
// equation), that step. Otherwise (no annotations, or only the final answer is wrong) by rollouts: M continuations
// from the prefix before each step in turn, from the question onwards; the wrong step is the earliest step after
// which none of them reaches the correct answer while from the prefix before it one still does (the last step when
// every prefix still can).
//
// The chosen step: the step in that place of a correct continuation of the prefix before the wrong step, taken
// from the problem's own correct samples that share the prefix (free), or else from M rollouts. It must differ
// from the rejected step, and the calculator must find no wrong step in the chosen solution.

import { completionText } from "../data/format.js";
import { fnv1a } from "../data/task.js";
import { sequenceSeed } from "../model/generate.js";
import type { Completer, CompletionRequest } from "../sample/types.js";
import { referenceAnswer } from "../verify/answer.js";
import { checkAnnotation, checkStep } from "../verify/calculator.js";
import { styleOf, verifySolution, type MathTask } from "../verify/record.js";
import { splitSteps, type StepSpan } from "../verify/steps.js";
import type { Tally, Pair, ProblemSamples, VerifiedSample } from "./records.js";

export interface StepDpoOptions {
  completer: Completer | null; // for rollouts; without one only calculator-located steps and shared prefixes work
  rollouts: number; // M continuations per prefix
  temperature: number;
  topP?: number;
  topK?: number;
  maxTokens: number;
  seed: number;
  task: MathTask; // how answers are checked
  promptOf: (question: string) => string; // promptText with the run's template
  maxPairsPerProblem: number;
  chosenStep?: StepChosen; // rollout (default): a self-generated correct step; corrected: where the calculator
  // located the wrong step, that step with its arithmetic corrected (a minimal pair), else a rollout; both: each
  batchSize: number; // requests per completer call
  onRollouts?: (requests: number) => void;
}

export type StepChosen = "rollout" | "corrected" | "both";
export const STEP_CHOSEN: readonly StepChosen[] = ["rollout", "corrected", "both"];

export interface StepDpoStats {
  located: { calculator: number; rollouts: number };
  chosen_from: { samples: number; rollouts: number; corrected: number };
}

/**
 * A step with every wrong `<<expr=value>>` (and the number written after it) set to the exact value of expr: the
 * same words with the right result. Null when nothing changes or the calculator still finds the step wrong (an
 * operand copied wrong is not an arithmetic slip and is not corrected).
 */
export function correctedStep(step: string): string | null {
  const fixed = step.replace(
    /<<([^<>=]*)=([^<>]*)>>(\$?)(-?\d[\d,]*(?:\.\d+)?)?/g,
    (m, lhs: string, rhs: string, money: string, written?: string) => {
      const c = checkAnnotation(`${lhs}=${rhs}`);
      const value = c.ok === false ? c.expected : c.ok === true ? rhs : undefined;
      if (value === undefined) return m;
      return `<<${lhs}=${value}>>${money}${written !== undefined ? value : ""}`;
    },
  );
  return fixed !== step && checkStep(fixed).ok === true ? fixed : null;
}

/** One incorrect sample on its way to a pair. */
interface Case {
  problem: ProblemSamples;
  s: VerifiedSample;
  spans: StepSpan[];
  wrong: number | null; // the first wrong step, once located
  candidates: string[]; // rollouts from the prefix before the wrong step that reach the answer
}

function prefixAt(c: Case, j: number): string {
  return c.s.completion.slice(0, c.spans[j].start);
}

/** A step as a pair side: its text, and the line break when more follows. */
function stepText(spans: StepSpan[], i: number): string {
  return spans[i].text + (i < spans.length - 1 ? "\n" : "");
}

function reaches(c: Case, prefix: string, continuation: string, task: MathTask): boolean {
  return verifySolution(prefix + continuation, c.problem.answer, task).correct === true;
}

/** A chosen solution: the right answer, and no step the calculator finds wrong. */
function sound(c: Case, prefix: string, continuation: string, task: MathTask): boolean {
  const v = verifySolution(prefix + continuation, c.problem.answer, task);
  return v.correct === true && v.first_error_step === null;
}

/** M continuations of each (case, prefix before step j), seeded by (seed, id, sample, j). */
async function rollout(jobs: { c: Case; j: number }[], o: StepDpoOptions): Promise<string[][]> {
  const out: string[][] = [];
  for (let i = 0; i < jobs.length; i += o.batchSize) {
    const batch = jobs.slice(i, i + o.batchSize);
    const requests = batch.map(
      ({ c, j }): CompletionRequest => ({
        prompt: o.promptOf(c.problem.question) + prefixAt(c, j),
        params: {
          n: o.rollouts,
          temperature: o.temperature,
          topP: o.topP,
          topK: o.topK,
          maxTokens: o.maxTokens,
          seed: sequenceSeed(fnv1a(`${o.seed >>> 0}\u0000${c.problem.id}\u0000${c.s.sample ?? c.s.where}`), j),
        },
      }),
    );
    const got = await o.completer!.complete(requests);
    out.push(...got.map((r) => r.map((x) => x.text)));
    o.onRollouts?.(batch.length);
  }
  return out;
}

/** The calculator's first wrong step of a sample, or null (none flagged); a reason when the record is unusable. */
function calculatorStep(c: Case): number | null | string {
  const { steps, firstErrorStep: e } = c.s;
  if (steps === null) return "incorrect samples without steps (not verified for a math task)";
  if (steps.length !== c.spans.length || steps.some((s, i) => s.text !== c.spans[i].text)) {
    return "incorrect samples whose steps do not match their completion";
  }
  return e !== null && e < c.spans.length && checkStep(c.spans[e].text).ok === false ? e : null;
}

/** Rollout scan for cases the calculator does not decide; sets wrong and candidates, or tallies why not. */
async function locateByRollouts(cases: Case[], o: StepDpoOptions, tally: Tally): Promise<void> {
  let active = cases;
  for (let j = 0; active.length > 0; j++) {
    const got = await rollout(
      active.map((c) => ({ c, j })),
      o,
    );
    active = active.filter((c, k) => {
      const good = got[k].filter((t) => reaches(c, prefixAt(c, j), t, o.task));
      if (good.length === 0) {
        if (j === 0) {
          tally.skip("incorrect samples from whose question no rollout reaches the answer");
          c.problem.unreachable = true; // its other samples would roll out from the same question: not tried
        } else c.wrong = j - 1; // candidates hold the rollouts from prefix j - 1
        return false;
      }
      c.candidates = good;
      if (j === c.spans.length - 1) c.wrong = j; // every prefix still reaches it: the last step is the wrong one
      return c.wrong === null;
    });
  }
}

/** Continuations (of the prefix before c.wrong) from the problem's correct samples that share that prefix. */
function fromSamples(c: Case): string[] {
  const e = c.wrong!;
  const out: string[] = [];
  for (const s of c.problem.samples) {
    if (s.correct !== true) continue;
    const spans = splitSteps(s.completion);
    if (spans.length <= e || spans.slice(0, e).some((sp, i) => sp.text !== c.spans[i].text)) continue;
    out.push(s.completion.slice(spans[e].start));
  }
  return out;
}

/** The first candidate continuation that gives a chosen step, or null. */
function pick(c: Case, candidates: string[], task: MathTask): string | null {
  const prefix = prefixAt(c, c.wrong!);
  const rejected = c.spans[c.wrong!].text;
  for (const t of candidates) {
    const first = splitSteps(t)[0];
    if (first && first.text !== rejected && sound(c, prefix, t, task)) return t;
  }
  return null;
}

/** Sets each case's first wrong step (calculator, else rollouts); returns the located cases in input order. */
async function locate(all: Case[], o: StepDpoOptions, tally: Tally, stats: StepDpoStats): Promise<Case[]> {
  const scan: Case[] = [];
  for (const c of all) {
    const e = calculatorStep(c);
    if (typeof e === "string") tally.skip(e);
    else if (e !== null) {
      c.wrong = e;
      stats.located.calculator++;
    } else if (o.completer) scan.push(c);
    else
      tally.skip(
        "incorrect samples with no step the calculator flags (locating one needs rollouts: --model or --endpoint)",
      );
  }
  await locateByRollouts(scan, o, tally);
  stats.located.rollouts += scan.filter((c) => c.wrong !== null).length; // summed over the waves
  return all.filter((c) => c.wrong !== null);
}

/** The chosen continuation of each located case: shared-prefix samples first, then rollouts. */
async function chooseSteps(cases: Case[], o: StepDpoOptions, stats: StepDpoStats): Promise<Map<Case, string>> {
  // Rollout-located cases have their rollouts already; calculator-located ones get fresh ones.
  const chosen = new Map<Case, string>();
  const needFresh: Case[] = [];
  for (const c of cases) {
    const t = pick(c, fromSamples(c), o.task);
    if (t !== null) {
      chosen.set(c, t);
      stats.chosen_from.samples++;
    } else if (c.candidates.length > 0 || !o.completer) {
      const r = pick(c, c.candidates, o.task);
      if (r !== null) {
        chosen.set(c, r);
        stats.chosen_from.rollouts++;
      }
    } else needFresh.push(c);
  }
  const fresh = await rollout(
    needFresh.map((c) => ({ c, j: c.wrong! })),
    o,
  );
  needFresh.forEach((c, k) => {
    const r = pick(c, fresh[k], o.task);
    if (r !== null) {
      chosen.set(c, r);
      stats.chosen_from.rollouts++;
    }
  });
  return chosen;
}

/** The pair of a located case with its chosen step (and the solution it starts, for fullChosen). */
function pairOf(c: Case, step: string, t: string, task: MathTask): Pair {
  const e = c.wrong!;
  const prefix = prefixAt(c, e);
  // Spaces before the wrong step (a generated line that began with one) belong to both sides, not to the prompt:
  // a prompt ending in a space would tokenize apart from the word after it.
  const indent = /[ \t]*$/.exec(prefix)![0];
  return {
    id: c.problem.id,
    kind: "stepdpo",
    question: c.problem.question,
    prefix: prefix.slice(0, prefix.length - indent.length),
    chosen: indent + step,
    rejected: indent + stepText(c.spans, e),
    fullChosen: completionText(prefix + t),
    fullRejected: completionText(c.s.completion),
    answer: referenceAnswer(c.problem.answer, styleOf(task)),
  };
}

/** The minimal pair of a calculator-located case: its wrong step corrected in place, or null. */
function correctedPair(c: Case, task: MathTask): Pair | null {
  const e = c.wrong!;
  const fixed = correctedStep(c.spans[e].text);
  if (fixed === null) return null;
  const more = e < c.spans.length - 1 ? "\n" : "";
  return pairOf(c, fixed + more, fixed + more, task);
}

/**
 * Works in waves so that no rollout is spent past the cap: each wave takes, per problem, as many of its next
 * incorrect samples as it still lacks pairs.
 */
export async function stepDpoPairs(
  problems: ProblemSamples[],
  o: StepDpoOptions,
  tally: Tally,
): Promise<{ pairs: Pair[]; stats: StepDpoStats }> {
  const stats: StepDpoStats = {
    located: { calculator: 0, rollouts: 0 },
    chosen_from: { samples: 0, rollouts: 0, corrected: 0 },
  };
  const mode = o.chosenStep ?? "rollout";
  const queues = new Map<string, Case[]>(); // each problem's incorrect samples with steps, in input order
  for (const problem of problems) {
    tally.skip("undecided samples (correct: null)", problem.samples.filter((s) => s.correct === null).length);
    const wrong = problem.samples.filter((s) => s.correct === false);
    if (wrong.length === 0) tally.skip("problems without an incorrect sample");
    const cases = wrong.map(
      (s): Case => ({ problem, s, spans: splitSteps(s.completion), wrong: null, candidates: [] }),
    );
    tally.skip("incorrect samples without steps", cases.filter((c) => c.spans.length === 0).length);
    queues.set(
      problem.id,
      cases.filter((c) => c.spans.length > 0),
    );
  }
  const made = new Map<string, Pair[]>(problems.map((p) => [p.id, []]));
  const seen = new Set<string>();
  for (;;) {
    for (const [id, q] of queues) {
      if (q.length > 0 && q[0].problem.unreachable) {
        tally.skip("incorrect samples of a problem no rollout from the question solves", q.length);
        queues.set(id, []);
      }
    }
    const wave = [...queues].flatMap(([id, q]) =>
      q.splice(0, Math.max(0, o.maxPairsPerProblem - made.get(id)!.length)),
    );
    if (wave.length === 0) break;
    const located = await locate(wave, o, tally, stats);
    const minimal = new Map<Case, Pair>();
    if (mode !== "rollout") {
      for (const c of located) {
        const p = c.candidates.length === 0 ? correctedPair(c, o.task) : null; // calculator-located cases only
        if (p) minimal.set(c, p);
      }
    }
    const chosen = await chooseSteps(mode === "corrected" ? located.filter((c) => !minimal.has(c)) : located, o, stats);
    const add = (pair: Pair): boolean => {
      const key = JSON.stringify([pair.id, pair.prefix, pair.chosen, pair.rejected]);
      if (seen.has(key)) tally.skip("duplicate pairs");
      else if (made.get(pair.id)!.length >= o.maxPairsPerProblem) tally.skip("pairs over --max-pairs-per-problem");
      else {
        seen.add(key);
        made.get(pair.id)!.push(pair);
        return true;
      }
      return false;
    };
    for (const c of located) {
      const m = minimal.get(c);
      if (m && add(m)) stats.chosen_from.corrected++;
      const t = chosen.get(c);
      if (t === undefined) {
        if (!m)
          tally.skip(
            o.completer
              ? "incorrect samples with no correct continuation of the prefix before the wrong step"
              : "incorrect samples with no correct sample sharing the prefix before the wrong step (rollouts need --model or --endpoint)",
          );
        continue;
      }
      add(pairOf(c, stepText(splitSteps(t), 0), t, o.task));
    }
  }
  for (const q of queues.values())
    tally.skip("incorrect samples not needed (their problem has --max-pairs-per-problem pairs)", q.length);
  return { pairs: problems.flatMap((p) => made.get(p.id)!), stats };
}
