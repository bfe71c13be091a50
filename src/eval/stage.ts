// The eval stage as a library function: `evaluateFile(config, ctx)` scores a model (or an endpoint) on a problems
// file: accuracy with a Wilson 95% interval, majority vote, pass@k, the calculator's step error rate and accuracy
// by reference steps (src/eval/eval.ts), and a readable table of it.

import { writeJsonlAtomic } from "../core/atomic.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { prepareOutputFile } from "../core/outputs.js";
import { progressOf, type StageContext } from "../core/stage.js";
import { PROMPT_TEMPLATES, type PromptTemplate } from "../data/format.js";
import { loadGsm8k, loadMapped, loadMath, type MathProblem } from "../data/load.js";
import { openCompleter } from "../sample/open.js";
import type { Completer } from "../sample/types.js";
import type { MathTask } from "../verify/record.js";
import { DEFAULT_TEMPERATURE, defaultMaxTokens, evaluate, type EvalResult } from "./eval.js";

const TASKS: MathTask[] = ["arith", "gsm8k", "math"];
export type ProblemFileFormat = "jsonl" | "gsm8k" | "math";
const FORMATS: ProblemFileFormat[] = ["jsonl", "gsm8k", "math"];

/** The first `limit` problems of the file (a bad line is an InputError naming file:line, or skipped). */
export async function readProblems(
  file: string,
  format: ProblemFileFormat,
  limit: number,
  skipBad: boolean,
): Promise<MathProblem[]> {
  const opts = { skipBad };
  const source =
    format === "gsm8k" ? loadGsm8k(file, opts) : format === "math" ? loadMath(file, opts) : loadMapped(file, opts);
  const out: MathProblem[] = [];
  for await (const p of source) {
    if (out.length >= limit) break;
    out.push(p);
  }
  if (out.length === 0) throw new InputError("no problems", file);
  return out;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The readable summary: one metric a line, then accuracy by reference steps. */
export function formatTable(r: EvalResult, about: string, maj?: number): string {
  const rows: [string, string][] = [
    ["accuracy", `${pct(r.accuracy)}  (${r.correct}/${r.n} greedy)  95% CI [${pct(r.ci95[0])}, ${pct(r.ci95[1])}]`],
  ];
  if (r.undecided) rows.push(["undecided", `${r.undecided} (counted as not correct)`]);
  if (r.maj_accuracy !== undefined) rows.push([maj ? `maj@${maj}` : "maj", pct(r.maj_accuracy)]);
  for (const [k, v] of Object.entries(r.pass_at_k ?? {})) rows.push([`pass@${k}`, pct(v)]);
  if (r.step_error_rate !== undefined) rows.push(["step errors", `${pct(r.step_error_rate)} of decided steps`]);
  rows.push(["time", `${r.seconds.toFixed(1)} s`]);
  const lines = [
    about,
    ...rows.map(([k, v]) => `  ${k.padEnd(12)} ${v}`),
    "  by reference steps:",
    "    steps      n  accuracy",
  ];
  for (const g of r.by_steps)
    lines.push(`    ${String(g.steps).padStart(5)} ${String(g.n).padStart(6)}  ${pct(g.accuracy).padStart(8)}`);
  if (r.by_level) {
    lines.push("  by level:", "    level        n  accuracy");
    for (const g of r.by_level)
      lines.push(`    ${g.level.padEnd(8)} ${String(g.n).padStart(5)}  ${pct(g.accuracy).padStart(8)}`);
  }
  return lines.join("\n");
}

export interface EvalConfig {
  problems: string; // {id, question, answer} (jsonl), GSM8K's or MATH's format
  format: ProblemFileFormat; // jsonl (default), gsm8k, math
  task: MathTask; // the verifier: arith (default), gsm8k, math (the default with format math)
  maj: number | null; // majority vote over this many samples per problem (null: off)
  pass_k: number[] | null; // pass@k for each k (null: off)
  temperature: number; // of the sampled completions (the accuracy is always greedy)
  max_tokens: number; // new tokens per completion (by task)
  batch_size: number; // completions generated together (16)
  limit: number | null; // the first N problems only
  seed: number; // sample j of problem id gets the seed the sample stage gives it
  template: PromptTemplate; // plain or chat
  skip_bad: boolean; // skip malformed problem lines instead of stopping
  out: string | null; // the greedy completions as verified records, written atomically
  model: string | null; // a local model to evaluate (or pass a completer)
  endpoint: string | null; // or an OpenAI-compatible endpoint
  endpoint_model: string | null;
}

/** A full EvalConfig from the knobs given (flag or key spellings), validated once. */
export function evalConfig(
  given: Partial<EvalConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
): EvalConfig {
  const r: KnobReader = new KnobReader(given as Record<string, unknown>, naming);
  const format = r.choice(
    r.has("problems_format") && !r.has("format") ? "problems_format" : "format",
    FORMATS,
    "jsonl",
  );
  const task = r.choice("task", TASKS, format === "math" ? "math" : "arith");
  const passK = r.intList("pass_k");
  return {
    problems: r.need("problems", "FILE"),
    format,
    task,
    maj: r.int("maj", null),
    pass_k: passK,
    temperature: r.num("temperature", DEFAULT_TEMPERATURE, (x) => x >= 0, "a number >= 0"),
    max_tokens: r.int("max_tokens", defaultMaxTokens(task)),
    batch_size: r.int("batch_size", 16),
    limit: r.int("limit", null),
    seed: r.int("seed", 0, 0),
    template: r.choice("template", PROMPT_TEMPLATES, "plain"),
    skip_bad: r.bool("skip_bad"),
    out: r.str("out", null),
    model: r.str("model", null),
    endpoint: r.str("endpoint", null),
    endpoint_model: r.str("endpoint_model", null),
  };
}

/**
 * Evaluates a completer on c.problems and writes c.out when set. The completer: one given (the caller closes it),
 * or one this opens after the problems are read (a bad file fails before a model loads) and closes: from `open`,
 * else the model / endpoint c names. Returns the metrics and the completer's name.
 */
export async function evaluateFile(
  c: EvalConfig,
  ctx: StageContext = {},
  completer?: Completer | (() => Promise<Completer>),
): Promise<{ result: EvalResult; completer: string }> {
  if (c.out !== null) prepareOutputFile(c.out); // its folders are made
  const problems = await readProblems(c.problems, c.format, c.limit ?? Number.MAX_SAFE_INTEGER, c.skip_bad);
  const given = typeof completer === "object" ? completer : null;
  const opener =
    typeof completer === "function" ? completer : () => openCompleter(c, { batchSize: c.batch_size, seed: c.seed });
  const own = given ?? (await opener());
  const opts = {
    task: c.task,
    batchSize: c.batch_size,
    seed: c.seed,
    template: c.template,
    maj: c.maj ?? undefined,
    passK: c.pass_k ?? undefined,
    temperature: c.temperature,
    maxTokens: c.max_tokens,
  };
  const progress = progressOf(ctx, "eval", {
    total: problems.length * (1 + Math.max(c.maj ?? 0, ...(c.pass_k ?? []))),
    unit: "completions",
  });
  try {
    const got = await evaluate(own, problems, { ...opts, onProgress: (done) => progress.set(done) });
    if (c.out !== null) await writeJsonlAtomic(c.out, got.records);
    return { result: got.result, completer: own.name };
  } finally {
    progress.finish();
    if (!given) await own.close?.();
  }
}
