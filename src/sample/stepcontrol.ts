// Step-controlled sampling (SCDPO, Lu et al. 2024, "Step-Controlled DPO"): keep the first k steps of a correct
// solution and generate the rest one step at a time, the temperature rising with each generated step, so that the
// continuation drifts into an error after the shared prefix. Written against the Completer interface, so it runs
// on the local engine and on any OpenAI-compatible server alike: every step is one request that stops at "\n".
//
// A step is a line (GSM8K's format). Generation of a solution ends at a step holding the final "#### n" line, at
// EOS, when the token budget is spent, or after maxSteps steps.

import { InputError } from "../core/errors.js";
import type { Rng } from "../core/rng.js";
import { sequenceSeed } from "../model/generate.js";
import { splitSteps } from "../verify/steps.js";
import type { Completer, CompletionRequest, FinishReason } from "./types.js";

// --- temperature schedules ---

/** temperature(i) = min(start + slope * i, cap) for generated step i (0-based, counted from the cut). */
export interface StepSchedule {
  start: number;
  slope: number;
  cap: number | null; // null: no cap
  spec: string; // as given, for configs and logs
}

/** The papers' schedules: GSM8K and MATH from the SCDPO code, the blog's 1.05, 1.1, 1.15, ... */
export const SCHEDULE_PRESETS: Record<"gsm8k" | "math" | "blog", StepSchedule> = {
  gsm8k: { start: 1.1, slope: 0.1, cap: 1.4, spec: "gsm8k" },
  math: { start: 1.0, slope: 0.05, cap: 1.2, spec: "math" },
  blog: { start: 1.05, slope: 0.05, cap: null, spec: "blog" },
};

export const DEFAULT_SCHEDULE = SCHEDULE_PRESETS.gsm8k;

const NUM = String.raw`(\d+(?:\.\d*)?|\.\d+)`;
/** "a", "a+b*i", "a+b*i<=c" (spaces allowed). */
const CUSTOM = new RegExp(String.raw`^${NUM}(?:\+${NUM}\*i)?(?:<=${NUM})?$`);

/** A preset name or a custom "a+b*i<=c" spec; InputError (naming the flag) when it is not one. */
export function parseStepSchedule(spec: string, flag = "--step-temperature"): StepSchedule {
  const s = spec.trim();
  if (s in SCHEDULE_PRESETS) return SCHEDULE_PRESETS[s as keyof typeof SCHEDULE_PRESETS];
  const hint =
    `use a preset (${Object.keys(SCHEDULE_PRESETS).join(", ")}) or "a+b*i<=c", e.g. "1.1+0.1*i<=1.4" ` +
    "(i counts generated steps from 0; b and the cap are optional)";
  const m = CUSTOM.exec(s.replace(/\s+/g, ""));
  if (!m) throw new InputError(`${flag}: cannot read the schedule "${spec}"`, undefined, hint);
  const start = Number(m[1]);
  const slope = m[2] === undefined ? 0 : Number(m[2]);
  const cap = m[3] === undefined ? null : Number(m[3]);
  if (start > 10 || (cap !== null && cap > 10)) {
    throw new InputError(`${flag}: temperatures above 10 make noise, got "${spec}"`, undefined, hint);
  }
  if (cap !== null && cap < start) {
    throw new InputError(
      `${flag}: the cap ${cap} is below the starting temperature ${start} in "${spec}"`,
      undefined,
      hint,
    );
  }
  return { start, slope, cap, spec: s };
}

/** The temperature of generated step i (rounded to 1e-10, so that 1.1 + 0.1*1 is 1.2). */
export function stepTemperature(s: StepSchedule, i: number): number {
  const t = Number((s.start + s.slope * i).toFixed(10));
  return s.cap === null ? t : Math.min(t, s.cap);
}

// --- cut points ---

/** Where a reference solution is cut: a random step, one step, or every step in a range. */
export type CutSpec = { kind: "random" } | { kind: "range"; lo: number; hi: number };

/** "random", "K" or "A-B". */
export function parseCut(spec: string, flag = "--cut"): CutSpec {
  const s = spec.trim();
  if (s === "random") return { kind: "random" };
  const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(s);
  if (!m) throw new InputError(`${flag} must be random, a step count K or a range A-B, got "${spec}"`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi < lo) throw new InputError(`${flag}: the range ${s} is empty (A must be <= B)`);
  return { kind: "range", lo, hi };
}

/** How many cut points (sample groups) a spec gives: 1 for random and K, B - A + 1 for a range. */
export function cutCount(c: CutSpec): number {
  return c.kind === "random" ? 1 : c.hi - c.lo + 1;
}

export interface SolutionSteps {
  /** Every step (line), the final "#### n" line included. */
  steps: string[];
  /** Steps before the final answer line: the reasoning steps. */
  reasoning: number;
}

/** The steps of a reference solution (splitSteps: lines, or "Step k:" blocks). */
export function solutionSteps(solution: string): SolutionSteps {
  const steps = splitSteps(solution).map((s) => s.text);
  const last = steps.at(-1);
  const reasoning = last !== undefined && /^\s*####/.test(last) ? steps.length - 1 : steps.length;
  return { steps, reasoning };
}

/**
 * The cut point of one sample, or null when the solution is too short for it. Random picks k in 1..R-1 (R
 * reasoning steps: keep at least one, regenerate at least one; 0 when R < 2), drawn from `rng`. Range cut number
 * `which` is lo + which, valid while at least one step (the answer line included) is left to generate.
 */
export function cutPoint(c: CutSpec, sol: SolutionSteps, which: number, rng: Rng): number | null {
  if (c.kind === "random") return sol.reasoning < 2 ? 0 : 1 + rng.int(sol.reasoning - 1);
  const k = c.lo + which;
  return k <= sol.steps.length - 1 ? k : null;
}

/** The text of steps 1..k of a solution, each ended by "\n" ("" for k = 0): what the continuation follows. */
export function solutionPrefix(solution: string, k: number): string {
  if (k === 0) return "";
  const spans = splitSteps(solution);
  if (k > spans.length) throw new InputError(`cannot cut after step ${k}: the solution has ${spans.length} steps`);
  return solution.slice(0, spans[k - 1].end) + "\n";
}

// --- generation one step at a time ---

export interface StepTask {
  prompt: string; // the full prompt: promptText(question) + prefix
  seed: number; // step i is sampled with seed sequenceSeed(seed, i)
}

export interface StepControlOptions {
  schedule: StepSchedule;
  /**
   * Tokens of the whole continuation, checked between steps: a continuation ends ("length") after the step that
   * reaches it, and no single step is longer. (One limit for every request of a round keeps them in one batch.)
   */
  maxTokens: number;
  maxSteps?: number; // steps generated at most, default 32
  topP?: number;
  topK?: number;
  logprobs?: boolean;
}

export interface Continuation {
  text: string; // the generated steps, each ended by "\n" except the last one when it ends the solution
  finishReason: FinishReason; // "stop": a "#### n" line; "eos"; "length": token budget or maxSteps spent
  temperatures: number[]; // of each generated step
  tokens: number;
  logprobs?: number[];
}

const FINAL_LINE = /^\s*####\s*\S/m;

interface Live {
  task: number;
  c: Continuation;
}

/**
 * Continues each task's prompt step by step: all live tasks go to the completer together, one step (a request that
 * stops at "\n") each per round, step i at temperature schedule(i). Results in task order.
 */
export async function continueStepwise(
  completer: Completer,
  tasks: StepTask[],
  o: StepControlOptions,
): Promise<Continuation[]> {
  const maxSteps = o.maxSteps ?? 32;
  if (!Number.isInteger(maxSteps) || maxSteps < 1)
    throw new InputError(`maxSteps must be an integer >= 1, got ${maxSteps}`);
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1)
    throw new InputError(`maxTokens must be an integer >= 1, got ${o.maxTokens}`);
  const out = tasks.map(
    (): Continuation => ({
      text: "",
      finishReason: "length",
      temperatures: [],
      tokens: 0,
      ...(o.logprobs ? { logprobs: [] } : {}),
    }),
  );
  let live: Live[] = tasks.map((_, task) => ({ task, c: out[task] }));
  while (live.length > 0) {
    const requests = live.map(({ task, c }): CompletionRequest => {
      const step = c.temperatures.length;
      c.temperatures.push(stepTemperature(o.schedule, step));
      return {
        prompt: tasks[task].prompt + c.text,
        params: {
          n: 1,
          temperature: c.temperatures[step],
          topP: o.topP,
          topK: o.topK,
          maxTokens: o.maxTokens,
          stop: ["\n"],
          seed: sequenceSeed(tasks[task].seed, step),
          logprobs: o.logprobs,
        },
      };
    });
    const results = await completer.complete(requests);
    if (results.length !== live.length)
      throw new Error(`${completer.name}: ${results.length} results for ${live.length} requests`);
    live = live.filter((l, k) => {
      const got = results[k][0];
      if (!got) throw new Error(`${completer.name}: no completion for request ${k}`);
      return addStep(l.c, got, maxSteps, o.maxTokens);
    });
  }
  return out;
}

/** Appends one generated step to a continuation; false when the continuation is finished. */
function addStep(
  c: Continuation,
  got: { text: string; finishReason: FinishReason; tokens?: number; logprobs?: number[] },
  maxSteps: number,
  maxTokens: number,
): boolean {
  c.text += got.text;
  // A budget in tokens needs counts; a server that gives none is charged about 4 characters a token.
  c.tokens += got.tokens ?? got.logprobs?.length ?? Math.max(1, Math.ceil(got.text.length / 4));
  if (c.logprobs && got.logprobs) c.logprobs.push(...got.logprobs);
  if (got.finishReason !== "stop") {
    c.finishReason = got.finishReason;
    return false;
  }
  if (FINAL_LINE.test(got.text)) {
    c.finishReason = "stop";
    return false;
  }
  c.text += "\n"; // the stop string: the step's line break
  c.finishReason = "length";
  return c.temperatures.length < maxSteps && c.tokens < maxTokens;
}
