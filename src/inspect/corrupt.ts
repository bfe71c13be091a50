// Measuring credit assignment: does the implicit reward point at the wrong step?
//
// corruptSolution takes a correct reference solution and changes the result of one calculator annotation of one
// step (the number after the last "=" in `<<expr=N>>` and the same number written right after `>>`), chosen by
// seed. What follows the corrupted step depends on the mode:
// - keep (default): later steps are kept as they are. They still use the right value, so the corrupted step is the
//   only one the calculator verifier flags (verifySolution's first_error_step) and the final answer stays right;
//   but a model that copies values sees the next step disagree with the corrupted one.
// - recompute: the wrong value is carried forward: in later steps every number equal to a changed result is
//   replaced and each annotation's result recomputed from its expression (whole numbers as they are, others rounded
//   to 2 decimals), so later steps are consistent with the error, the final answer changes, and the corrupted step
//   is still the only one with an arithmetic error (a "#### n" step is then wrong too, by its answer), as in a
//   Step-DPO rejected solution that goes wrong at one step and continues from there.
//
// corruptEval scores each corrupted solution with the policy against the reference and predicts the corrupted step
// as the step with the lowest summed implicit reward; baselines: the reference (SFT) model's own lowest mean
// per-token log-prob, and chance. Only steps that hold a result that could have been corrupted are candidates
// (the "#### n" line is not), so chance is the mean of 1 / candidate steps.

import { InputError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { completionText, promptText, type PromptTemplate } from "../data/format.js";
import { sequenceSeed } from "../model/generate.js";
import type { Llama } from "../model/llama.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { evalString } from "../verify/expr.js";
import { splitSteps } from "../verify/steps.js";
import { scoreCredits, type StepCredit } from "./credit.js";

export interface Corruption {
  text: string; // the solution with one result changed
  step: number; // index of the corrupted step (splitSteps order, as verifySolution's steps)
  steps: number; // steps in the solution
  candidates: number[]; // the steps that could have been corrupted (hold an annotation with a numeric result)
  annotation: string; // the annotation body before the change, e.g. "45-18=27"
  original: string; // the result before and after
  corrupted: string;
}

/** `<<expr=N>>` with a plain numeric N after the last "=". */
const ANNOTATION = /<<([^<>]*=\s*)(-?\d+(?:\.\d+)?)(\s*)>>/g;

interface Site {
  step: number;
  at: number; // offset of N in the solution
  body: string;
  value: string;
  written: number; // offset of the same number written after ">>", or -1
}

function sitesOf(solution: string): { sites: Site[]; steps: number } {
  const spans = splitSteps(solution);
  const sites: Site[] = [];
  spans.forEach((s, step) => {
    for (const m of s.text.matchAll(ANNOTATION)) {
      const at = s.start + m.index! + 2 + m[1].length;
      const after = s.start + m.index! + m[0].length;
      const rest = solution.slice(after, after + m[2].length + 2);
      const follows = rest.startsWith(m[2]) && !/^(?:\d|\.\d)/.test(rest.slice(m[2].length)); // "27." yes, "275" no
      sites.push({ step, at, body: m[1] + m[2], value: m[2], written: follows ? after : -1 });
    }
  });
  return { sites, steps: spans.length };
}

/** A different number of the same shape: the integer part moved by 1..9 either way, never below 0 unless N was. */
export function perturb(value: string, rng: Rng): string {
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(value);
  if (!m) throw new InputError(`not a plain number: "${value}"`);
  const n = Number(m[1] + m[2]);
  const d = 1 + rng.int(9);
  let next = rng.next() < 0.5 ? n - d : n + d;
  if (next < 0 && n >= 0) next = n + d;
  return String(next) + (m[3] ?? "");
}

export type CorruptMode = "keep" | "recompute";

function formatValue(text: string): string | null {
  const v = evalString(text);
  if (v === null) return null;
  return v.isInteger() ? v.toString() : String(Math.round(v.toNumber() * 100) / 100);
}

/** `from` as a standalone number (not part of a longer one). */
const numberRe = (from: string) => new RegExp(`(?<![\\d.])${from.replace(/[.-]/g, "\\$&")}(?!\\d|\\.\\d)`);

/**
 * A later step with changed values carried in and its annotations recomputed. A changed value is carried into the
 * first later step that uses it, once: its first occurrence in the text before the first annotation and in the
 * first annotation whose expression holds it; then it is consumed (so "11 - 10" after a changed 10 two steps back
 * keeps its 10). New changes (recomputed results) are added to `changes`.
 */
function carryStep(step: string, changes: Map<string, string>): string {
  const before = [...step.matchAll(ANNOTATION)].map((m) => m[2]);
  let text = step;
  for (const [from, to] of [...changes]) {
    const re = numberRe(from);
    const at = text.indexOf("<<");
    const head = at < 0 ? text : text.slice(0, at);
    const inHead = re.test(head);
    let inAnnotation = false;
    const tail = (at < 0 ? "" : text.slice(at)).replace(ANNOTATION, (all, lhs: string, n: string, sp: string) => {
      if (inAnnotation || !re.test(lhs)) return all;
      inAnnotation = true;
      return `<<${lhs.replace(re, to)}${n}${sp}>>`;
    });
    if (!inHead && !inAnnotation) continue;
    text = (inHead ? head.replace(re, to) : head) + tail;
    changes.delete(from);
  }
  let i = 0;
  return text.replace(
    new RegExp(ANNOTATION.source + "(-?\\d+(?:\\.\\d+)?)?", "g"),
    (all, lhs: string, n: string, sp: string, written: string | undefined) => {
      const orig = before[i++];
      const value = formatValue(lhs.replace(/=\s*$/, ""));
      if (value === null || value === n) return all;
      if (value !== orig) changes.set(orig, value);
      return `<<${lhs}${value}${sp}>>${written === n ? value : (written ?? "")}`;
    },
  );
}

/** The solution with the changes of step k carried into every later step (mode recompute). */
function carryForward(solution: string, k: number, changes: Map<string, string>): string {
  let text = solution;
  for (let j = k + 1; ; j++) {
    const spans = splitSteps(text);
    if (j >= spans.length) return text;
    const s = spans[j];
    text = text.slice(0, s.start) + carryStep(s.text, changes) + text.slice(s.end);
  }
}

/** One step's result changed (see the header), or null when no step has an annotation with a numeric result. */
export function corruptSolution(solution: string, seed: number, mode: CorruptMode = "keep"): Corruption | null {
  const { sites, steps } = sitesOf(solution);
  if (sites.length === 0) return null;
  const rng = new Rng(seed);
  const candidates = [...new Set(sites.map((s) => s.step))];
  const step = candidates[rng.int(candidates.length)];
  const inStep = sites.filter((s) => s.step === step);
  const site = inStep[rng.int(inStep.length)];
  const corrupted = perturb(site.value, rng);
  const edits = [{ at: site.at, len: site.value.length }];
  if (site.written >= 0) edits.push({ at: site.written, len: site.value.length });
  let text = solution;
  for (const e of edits.reverse()) text = text.slice(0, e.at) + corrupted + text.slice(e.at + e.len); // later edit first
  if (mode === "recompute") text = carryForward(text, step, new Map([[site.value, corrupted]]));
  return { text, step, steps, candidates, annotation: site.body, original: site.value, corrupted };
}

export interface CorruptProblem {
  id: string;
  question: string;
  answer: string; // a full reference solution (with <<expr=N>> annotations)
}

export interface CorruptEvalOptions {
  beta?: number; // default 0.1
  seed?: number; // problem i is corrupted with sequenceSeed(seed, i); default 0
  mode?: CorruptMode; // what follows the corrupted step, default keep
  template?: PromptTemplate; // default plain
  batch?: number; // problems scored per batch, default 32
  onProgress?: (done: number, total: number) => void;
}

export interface CorruptRecord {
  id: string;
  step: number; // the corrupted step
  candidates: number[];
  original: string;
  corrupted: string;
  reward_pick: number; // the candidate step with the lowest summed implicit reward
  ref_pick: number; // the candidate step with the lowest mean reference log-prob per token
  step_rewards: number[];
}

export interface CorruptEvalResult {
  n: number; // solutions corrupted and scored
  implicit_reward_hit_rate: number; // share where the lowest-reward step is the corrupted one
  ref_logprob_hit_rate: number; // same for the reference's lowest mean log-prob step
  chance: number; // mean of 1 / candidate steps
  implicit_reward_mean_hit_rate: number; // lowest mean (per token) reward instead of the sum
  ref_logprob_sum_hit_rate: number; // lowest summed reference log-prob
  policy_logprob_hit_rate: number; // lowest mean policy log-prob
  skipped: number; // problems without a corruptible annotation
  beta: number;
  seed: number;
  mode: CorruptMode;
  records: CorruptRecord[];
}

/** Index among `candidates` with the lowest key (the first on ties). */
function argminOf(candidates: number[], key: (k: number) => number): number {
  let best = candidates[0];
  for (const k of candidates) if (key(k) < key(best)) best = k;
  return best;
}

const PREDICTORS: Record<string, (s: StepCredit) => number> = {
  implicit_reward_hit_rate: (s) => s.reward,
  ref_logprob_hit_rate: (s) => s.ref_logprob / Math.max(1, s.tokens),
  implicit_reward_mean_hit_rate: (s) => s.reward / Math.max(1, s.tokens),
  ref_logprob_sum_hit_rate: (s) => s.ref_logprob,
  policy_logprob_hit_rate: (s) => s.logprob / Math.max(1, s.tokens),
};

/** Corrupts each problem's reference solution, scores it, and reports how often each predictor finds the step. */
export function corruptEval(
  policy: Llama,
  ref: Llama,
  tokenizer: TextTokenizer,
  problems: CorruptProblem[],
  opts: CorruptEvalOptions = {},
): CorruptEvalResult {
  const beta = opts.beta ?? 0.1;
  const seed = opts.seed ?? 0;
  const items: { p: CorruptProblem; c: Corruption }[] = [];
  let skipped = 0;
  problems.forEach((p, i) => {
    const c = corruptSolution(completionText(p.answer), sequenceSeed(seed, i), opts.mode);
    if (c && c.candidates.length > 0) items.push({ p, c });
    else skipped++;
  });
  if (items.length === 0) {
    throw new InputError(
      "no problem has a reference solution with a <<expr=N>> annotation to corrupt",
      undefined,
      "use problems with full solutions, e.g. from `stepwise task`",
    );
  }
  const hits: Record<string, number> = Object.fromEntries(Object.keys(PREDICTORS).map((k) => [k, 0]));
  const records: CorruptRecord[] = [];
  let chance = 0;
  const batch = opts.batch ?? 32;
  for (let a = 0; a < items.length; a += batch) {
    const chunk = items.slice(a, a + batch);
    const credits = scoreCredits(
      policy,
      ref,
      tokenizer,
      chunk.map(({ p, c }) => ({
        prompt: promptText(p.question, opts.template ?? "plain", tokenizer),
        completion: c.text,
      })),
      { beta },
    );
    chunk.forEach(({ p, c }, k) => {
      const steps = credits[k].steps;
      if (steps.length !== c.steps) {
        skipped++; // the tokenizer does not give the text back as it was: the steps cannot be matched
        return;
      }
      for (const [name, key] of Object.entries(PREDICTORS)) {
        if (argminOf(c.candidates, (j) => key(steps[j])) === c.step) hits[name]++;
      }
      chance += 1 / c.candidates.length;
      records.push({
        id: p.id,
        step: c.step,
        candidates: c.candidates,
        original: c.original,
        corrupted: c.corrupted,
        reward_pick: argminOf(c.candidates, (j) => PREDICTORS.implicit_reward_hit_rate(steps[j])),
        ref_pick: argminOf(c.candidates, (j) => PREDICTORS.ref_logprob_hit_rate(steps[j])),
        step_rewards: steps.map((s) => s.reward),
      });
    });
    opts.onProgress?.(Math.min(a + batch, items.length), items.length);
  }
  const n = records.length;
  const rate = (name: string) => (n ? hits[name] / n : 0);
  return {
    n,
    implicit_reward_hit_rate: rate("implicit_reward_hit_rate"),
    ref_logprob_hit_rate: rate("ref_logprob_hit_rate"),
    chance: n ? chance / n : 0,
    implicit_reward_mean_hit_rate: rate("implicit_reward_mean_hit_rate"),
    ref_logprob_sum_hit_rate: rate("ref_logprob_sum_hit_rate"),
    policy_logprob_hit_rate: rate("policy_logprob_hit_rate"),
    skipped,
    beta,
    seed,
    mode: opts.mode ?? "keep",
    records,
  };
}
