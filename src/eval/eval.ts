// Evaluation: greedy accuracy with a Wilson interval, majority vote and pass@k over sampled answers, the calculator's
// step error rate, and accuracy by the number of reference steps. Works on any Completer (the local engine or an
// OpenAI-compatible endpoint), with the prompts SFT trains on and generation ending at EOS.
//
// What is counted:
// - accuracy: greedy (temperature 0) completions whose verdict is correct === true, over n. Undecided (null, an
//   answer the verifier cannot compare) counts as not correct. ci95 is the Wilson score interval of that proportion.
// - maj_accuracy (maj = K): the majority answer of the first K samples (stats.ts majorityVote: grouped by
//   answersEqual, ties to the group seen first) is correct when its earliest sample's verdict is correct === true.
// - pass_at_k: the mean over problems of the unbiased estimator 1 - C(s-c, k)/C(s, k), s samples, c of them correct.
// - step_error_rate: among the greedy completions' steps that the verifier decided (ok true or false), the share
//   that are false; absent when no step was decided.
// Samples (for maj and pass@k) are separate from the greedy completion: s = max(K, largest k) per problem, at
// `temperature`, sample j of problem id seeded from (seed, id, j) exactly as `stepwise sample` seeds them.

import { InputError } from "../core/errors.js";
import { promptText, type ChatFormatter, type PromptTemplate } from "../data/format.js";
import type { MathProblem } from "../data/load.js";
import { RESERVED_FIELDS, sampleSeed } from "../sample/records.js";
import { LocalCompleter } from "../sample/local.js";
import type { Completer, Completion, CompletionRequest } from "../sample/types.js";
import type { VerifiedRecord } from "../verify/index.js";
import { verifySolution, type MathTask, type Verdict } from "../verify/record.js";
import { majorityVote, passAtK, wilson } from "./stats.js";

export { wilson } from "./stats.js";

export interface EvalOptions {
  task?: MathTask; // the verifier, default "arith"
  maxTokens?: number; // new tokens per completion, default defaultMaxTokens(task)
  batchSize?: number; // requests handed to the completer at once, default 16
  maj?: number; // majority vote over this many samples per problem (off by default)
  passK?: number[]; // pass@k for each k, over max(maj, ...passK) samples per problem (off by default)
  temperature?: number; // of the samples (the accuracy is always greedy), default DEFAULT_TEMPERATURE
  seed?: number; // sample j of problem id is seeded from (seed, id, j), default 0
  template?: PromptTemplate; // default "plain"
  onProgress?: (done: number, total: number) => void; // completions done of all
  /** The chat template for template "chat"; default the LocalCompleter's tokenizer. */
  chat?: ChatFormatter;
  /** Stop strings (default none: generation ends at EOS or maxTokens). */
  stop?: string[];
}

export interface EvalResult {
  accuracy: number;
  n: number;
  correct: number;
  ci95: [number, number];
  maj_accuracy?: number;
  pass_at_k?: Record<string, number>;
  step_error_rate?: number;
  by_steps: { steps: number; n: number; accuracy: number }[];
  /** Accuracy by the problems' `level` field (a mixed built-in task's parts), when they have one. */
  by_level?: { level: string; n: number; accuracy: number }[];
  seconds: number;
  /** Greedy verdicts that were undecided (counted as not correct). */
  undecided?: number;
  /** Samples per problem for maj / pass@k, when sampling. */
  samples?: number;
}

export const DEFAULT_TEMPERATURE = 0.7;

/** New tokens a completion may take: enough for the task's solutions. */
export function defaultMaxTokens(task: MathTask): number {
  return task === "math" ? 1024 : task === "gsm8k" ? 512 : 256;
}

/**
 * The number of reference steps of a problem: its `steps` field when that is a non-negative integer, else the
 * non-blank lines of the reference solution before "####" (all of its lines when it has no "####").
 */
export function referenceSteps(p: MathProblem): number {
  if (typeof p.steps === "number" && Number.isInteger(p.steps) && p.steps >= 0) return p.steps;
  const at = p.answer.indexOf("####");
  const body = at < 0 ? p.answer : p.answer.slice(0, at);
  return body.split("\n").filter((l) => l.trim() !== "").length;
}

interface Resolved {
  task: MathTask;
  maxTokens: number;
  batchSize: number;
  maj: number | undefined;
  passK: number[];
  samples: number;
  temperature: number;
  seed: number;
}

function resolve(o: EvalOptions): Resolved {
  const int = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min))
      throw new InputError(`${name} must be an integer >= ${min}, got ${v}`);
    return v;
  };
  const task = o.task ?? "arith";
  const maj = int("maj", o.maj, 1);
  const passK = [...new Set(o.passK ?? [])].sort((a, b) => a - b);
  passK.forEach((k) => int("pass@k's k", k, 1));
  const temperature = o.temperature ?? DEFAULT_TEMPERATURE;
  if (!Number.isFinite(temperature) || temperature < 0)
    throw new InputError(`temperature must be >= 0, got ${temperature}`);
  return {
    task,
    maj,
    passK,
    temperature,
    maxTokens: int("maxTokens", o.maxTokens, 1) ?? defaultMaxTokens(task),
    batchSize: int("batchSize", o.batchSize, 1) ?? 16,
    samples: Math.max(maj ?? 0, ...passK, 0),
    seed: int("seed", o.seed, 0) ?? 0,
  };
}

/** Runs the requests in chunks of batchSize, reporting progress; one completion per request. */
async function completeAll(
  completer: Completer,
  requests: CompletionRequest[],
  r: Resolved,
  progress: (done: number) => void,
): Promise<Completion[]> {
  const out: Completion[] = [];
  for (let i = 0; i < requests.length; i += r.batchSize) {
    const got = await completer.complete(requests.slice(i, i + r.batchSize));
    got.forEach((c, j) => {
      if (!c[0]) throw new Error(`${completer.name}: no completion for request ${i + j}`);
      out.push(c[0]);
    });
    progress(out.length);
  }
  return out;
}

/** The greedy completion as a verified record (DESIGN.md "Records": a sample plus the verdict). */
function record(p: MathProblem, c: Completion, v: Verdict): VerifiedRecord {
  const { id, question, answer, ...rest } = p;
  const extra = Object.fromEntries(Object.entries(rest).filter(([k]) => !RESERVED_FIELDS.has(k)));
  return { id, sample: 0, question, answer, completion: c.text, finish_reason: c.finishReason, ...extra, ...v };
}

/** Greedy accuracy per key, in first-seen order; problems whose key is undefined are left out. */
function accuracyBy<K>(
  problems: MathProblem[],
  ok: boolean[],
  key: (p: MathProblem) => K | undefined,
): { key: K; n: number; accuracy: number }[] {
  const groups = new Map<K, { n: number; correct: number }>();
  problems.forEach((p, i) => {
    const k = key(p);
    if (k === undefined) return;
    const g = groups.get(k) ?? { n: 0, correct: 0 };
    g.n++;
    if (ok[i]) g.correct++;
    groups.set(k, g);
  });
  return [...groups.entries()].map(([k, g]) => ({ key: k, n: g.n, accuracy: g.correct / g.n }));
}

/** Accuracy grouped by the number of reference steps, fewest first. */
function bySteps(problems: MathProblem[], ok: boolean[]): EvalResult["by_steps"] {
  return accuracyBy(problems, ok, referenceSteps)
    .sort((a, b) => a.key - b.key)
    .map(({ key, n, accuracy }) => ({ steps: key, n, accuracy }));
}

/** Accuracy grouped by the problems' string `level` field, in first-seen order; undefined when none has one. */
function byLevel(problems: MathProblem[], ok: boolean[]): EvalResult["by_level"] {
  const groups = accuracyBy(problems, ok, (p) => (typeof p.level === "string" ? p.level : undefined));
  return groups.length === 0 ? undefined : groups.map(({ key, n, accuracy }) => ({ level: key, n, accuracy }));
}

/** The share of decided steps (ok true or false) that are false, or undefined when none was decided. */
function stepErrorRate(verdicts: Verdict[]): number | undefined {
  let decided = 0;
  let wrong = 0;
  for (const v of verdicts) {
    for (const s of v.steps) {
      if (s.ok === null) continue;
      decided++;
      if (s.ok === false) wrong++;
    }
  }
  return decided > 0 ? wrong / decided : undefined;
}

/** maj_accuracy and pass_at_k from each problem's sample verdicts (in sample order). */
function sampleMetrics(sampled: Verdict[][], r: Resolved): Pick<EvalResult, "maj_accuracy" | "pass_at_k"> {
  const out: Pick<EvalResult, "maj_accuracy" | "pass_at_k"> = {};
  if (r.maj !== undefined) {
    let right = 0;
    for (const vs of sampled) {
      const first = vs.slice(0, r.maj);
      const vote = majorityVote(first.map((v) => v.pred));
      if (vote.index >= 0 && first[vote.index].correct === true) right++;
    }
    out.maj_accuracy = right / sampled.length;
  }
  if (r.passK.length > 0) {
    out.pass_at_k = {};
    for (const k of r.passK) {
      const sum = sampled.reduce((s, vs) => s + passAtK(vs.length, vs.filter((v) => v.correct === true).length, k), 0);
      out.pass_at_k[String(k)] = sum / sampled.length;
    }
  }
  return out;
}

/**
 * Evaluates a completer on math problems: greedy accuracy (+ Wilson 95% interval), by_steps, step_error_rate, and
 * with `maj` / `passK` the sampled metrics. Returns the metrics and the greedy completions as verified records.
 */
export async function evaluate(
  completer: Completer,
  problems: MathProblem[],
  opts: EvalOptions = {},
): Promise<{ result: EvalResult; records: VerifiedRecord[] }> {
  const t0 = performance.now();
  const r = resolve(opts);
  if (problems.length === 0) throw new InputError("no problems to evaluate");
  const template = opts.template ?? "plain";
  const chat = opts.chat ?? (completer instanceof LocalCompleter ? completer.tokenizer : undefined);
  if (template === "chat" && !chat)
    throw new InputError("the chat template needs the model's tokenizer (a local model)");
  const prompts = problems.map((p) => promptText(p.question, template, chat));

  const params = (temperature: number, seed: number) => ({
    n: 1,
    temperature,
    maxTokens: r.maxTokens,
    stop: opts.stop,
    seed,
  });
  const requests: CompletionRequest[] = problems.map((p, i) => ({
    prompt: prompts[i],
    params: params(0, sampleSeed(r.seed, p.id, 0)),
  }));
  problems.forEach((p, i) => {
    for (let j = 0; j < r.samples; j++)
      requests.push({ prompt: prompts[i], params: params(r.temperature, sampleSeed(r.seed, p.id, j)) });
  });
  const completions = await completeAll(completer, requests, r, (done) => opts.onProgress?.(done, requests.length));

  const n = problems.length;
  const greedy = problems.map((p, i) => verifySolution(completions[i].text, p.answer, r.task));
  const sampled = problems.map((p, i) =>
    Array.from({ length: r.samples }, (_, j) =>
      verifySolution(completions[n + i * r.samples + j].text, p.answer, r.task),
    ),
  );
  const ok = greedy.map((v) => v.correct === true);
  const correct = ok.filter(Boolean).length;
  const stepErr = stepErrorRate(greedy);
  const levels = byLevel(problems, ok);
  const result: EvalResult = {
    accuracy: correct / n,
    n,
    correct,
    ci95: wilson(correct, n),
    ...(r.samples > 0 ? sampleMetrics(sampled, r) : {}),
    ...(stepErr !== undefined ? { step_error_rate: stepErr } : {}),
    by_steps: bySteps(problems, ok),
    ...(levels ? { by_level: levels } : {}),
    seconds: Math.round(performance.now() - t0) / 1000,
    undecided: greedy.filter((v) => v.correct === null).length,
    ...(r.samples > 0 ? { samples: r.samples } : {}),
  };
  const records = problems.map((p, i) => record(p, completions[i], greedy[i]));
  return { result, records };
}
