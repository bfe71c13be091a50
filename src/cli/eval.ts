// `stepwise eval`: accuracy of a model (or an OpenAI-compatible endpoint) on math problems, with a Wilson 95%
// interval, majority vote, pass@k, the calculator's step error rate and accuracy by reference steps.

import { writeJsonlAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { InputError } from "../core/errors.js";
import { loadGsm8k, loadMapped, loadMath, type MathProblem } from "../data/load.js";
import { DEFAULT_TEMPERATURE, defaultMaxTokens, evaluate, type EvalResult } from "../eval/eval.js";
import type { MathTask } from "../verify/record.js";
import type { Command } from "./main.js";
import { flagNumber } from "./options.js";
import { prepareOutputFile } from "../core/outputs.js";
import { Progress } from "../core/progress.js";
import { COMPLETER_HELP, COMPLETER_OPTIONS, completerFrom, intOption, templateOption } from "./options.js";

type Values = Record<string, string | boolean | undefined>;

const TASKS: MathTask[] = ["arith", "gsm8k", "math"];
type Format = "jsonl" | "gsm8k" | "math";
const FORMATS: Format[] = ["jsonl", "gsm8k", "math"];

/** The first `limit` problems of the file (a bad line is an InputError naming file:line, or skipped). */
async function readProblems(file: string, format: Format, limit: number, skipBad: boolean): Promise<MathProblem[]> {
  const opts = { skipBad };
  const source = format === "gsm8k" ? loadGsm8k(file, opts) : format === "math" ? loadMath(file, opts) : loadMapped(file, opts);
  const out: MathProblem[] = [];
  for await (const p of source) {
    if (out.length >= limit) break;
    out.push(p);
  }
  if (out.length === 0) throw new InputError("no problems", file);
  return out;
}

function choice<T extends string>(values: Values, names: string[], allowed: T[], dflt: T): T {
  const name = names.find((n) => values[n] !== undefined);
  if (name === undefined) return dflt;
  const v = String(values[name]);
  if (!allowed.includes(v as T)) throw new InputError(`--${name} must be one of ${allowed.join(", ")}, got "${v}"`);
  return v as T;
}

/** "1,4,8" -> [1, 4, 8]. */
function kList(values: Values): number[] | undefined {
  const v = values["pass-k"];
  if (v === undefined) return undefined;
  const ks = String(v).split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (ks.length === 0 || ks.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new InputError(`--pass-k must be a comma-separated list of integers >= 1, got "${v}"`);
  }
  return ks;
}

function temperature(values: Values): number {
  const v = values.temperature;
  if (v === undefined) return DEFAULT_TEMPERATURE;
  const t = flagNumber(v);
  if (!Number.isFinite(t) || t < 0) throw new InputError(`--temperature must be a number >= 0, got "${v}"`);
  return t;
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
  const lines = [about, ...rows.map(([k, v]) => `  ${k.padEnd(12)} ${v}`), "  by reference steps:", "    steps      n  accuracy"];
  for (const g of r.by_steps) lines.push(`    ${String(g.steps).padStart(5)} ${String(g.n).padStart(6)}  ${pct(g.accuracy).padStart(8)}`);
  if (r.by_level) {
    lines.push("  by level:", "    level        n  accuracy");
    for (const g of r.by_level) lines.push(`    ${g.level.padEnd(8)} ${String(g.n).padStart(5)}  ${pct(g.accuracy).padStart(8)}`);
  }
  return lines.join("\n");
}

export const evalCommand: Command = {
  name: "eval",
  summary: "accuracy (Wilson 95% CI), majority vote, pass@k, step error rate and accuracy by steps",
  usage: "stepwise eval --model DIR|--endpoint URL --problems FILE [--task arith|gsm8k|math] [--maj K] [--pass-k 1,4] " +
    "[--temperature 0.7] [--max-tokens N] [--limit N] [--seed 0] [--template plain|chat] [--out FILE] [--json]",
  options: {
    ...COMPLETER_OPTIONS,
    problems: { type: "string" }, format: { type: "string" }, "problems-format": { type: "string" },
    task: { type: "string" }, maj: { type: "string" }, "pass-k": { type: "string" }, temperature: { type: "string" },
    "max-tokens": { type: "string" }, "batch-size": { type: "string" }, limit: { type: "string" }, seed: { type: "string" },
    template: { type: "string" }, out: { type: "string" }, "skip-bad": { type: "boolean" }, json: { type: "boolean" },
  },
  help: [
    "Generates one greedy (temperature 0) completion per problem, ending at EOS or --max-tokens, from the prompt SFT",
    "trains on, and verifies it. With --maj / --pass-k it also samples completions at --temperature.",
    "metrics (--json prints {\"accuracy\", \"n\", \"correct\", \"ci95\": [lo, hi], \"maj_accuracy\"?, \"pass_at_k\"?,",
    "\"step_error_rate\"?, \"by_steps\": [{\"steps\", \"n\", \"accuracy\"}], \"by_level\"?, \"seconds\", \"undecided\",",
    "\"samples\"?}):",
    "  accuracy         greedy completions correct / n; an undecided verdict (an answer the verifier cannot",
    "                   compare) counts as not correct; ci95 is the Wilson score interval",
    "  maj_accuracy     the majority answer of K samples is correct: answers are grouped by the verifier's",
    "                   equivalence (\"1,000\" = \"1000\"), samples without an answer do not vote, and a tie goes to the",
    "                   answer whose first sample came first (sample order is fixed by the seed)",
    "  pass_at_k        mean over problems of the unbiased 1 - C(s-c,k)/C(s,k), s = max(K, largest k) samples, c correct",
    "  step_error_rate  of the greedy completions' steps that the calculator decided (ok true or false), the share",
    "                   that are false (the \"####\" step is false when the answer is wrong); absent if none decided",
    "  by_steps         greedy accuracy grouped by the problem's \"steps\" field, else by the number of lines of",
    "                   the reference solution before \"####\"",
    "  by_level         greedy accuracy grouped by the problems' \"level\" field, when they have one (the parts of a",
    "                   mixed built-in task, stepwise task --preset easy+medium)",
    "options:",
    COMPLETER_HELP,
    "  --problems FILE      problems: {\"id\", \"question\", \"answer\"} (a reference solution or just the final answer)",
    "  --format F           jsonl (default: id/question/answer), gsm8k, math (problem/solution); --problems-format too",
    "  --task T             the verifier: arith (default), gsm8k (\"#### n\" answers), math (\\boxed{}; the default",
    "                       with --format math)",
    "  --maj K              majority vote over K sampled completions per problem",
    "  --pass-k LIST        pass@k for each k in the comma-separated list (e.g. 1,4,8)",
    `  --temperature X      of the sampled completions, default ${DEFAULT_TEMPERATURE} (the accuracy is always greedy)`,
    `  --max-tokens N       new tokens per completion, default by task: arith ${defaultMaxTokens("arith")}, ` +
      `gsm8k ${defaultMaxTokens("gsm8k")}, math ${defaultMaxTokens("math")}`,
    "  --limit N            evaluate the first N problems only",
    "  --seed N             default 0; sample j of problem id gets the seed `stepwise sample` gives it",
    "  --template T         plain (default: question, newline) or chat (the model's chat template; needs --model)",
    "  --batch-size N       completions generated together, default 16",
    "  --out FILE           write the greedy completions as verified records (sample + verdict fields), atomically",
    "  --skip-bad           skip malformed problem lines instead of stopping",
    "  --json               print the metrics as one JSON object on stdout (otherwise a table)",
  ].join("\n"),
  async run(values) {
    if (typeof values.problems !== "string") throw new InputError("--problems FILE is required");
    const format = choice(values, ["format", "problems-format"], FORMATS, "jsonl");
    const task = choice(values, ["task"], TASKS, format === "math" ? "math" : "arith");
    const batchSize = intOption(values, "batch-size", 16);
    const seed = intOption(values, "seed", 0, 0);
    const opts = {
      task, batchSize, seed, template: templateOption(values),
      maj: values.maj === undefined ? undefined : intOption(values, "maj", 1),
      passK: kList(values), temperature: temperature(values),
      maxTokens: intOption(values, "max-tokens", defaultMaxTokens(task)),
    };
    const limit = intOption(values, "limit", Number.MAX_SAFE_INTEGER);
    const out = typeof values.out === "string" ? values.out : undefined;
    if (out) prepareOutputFile(out); // its folders are made
    const problems = await readProblems(values.problems, format, limit, Boolean(values["skip-bad"]));
    const completer = (await completerFrom(values, { batchSize, seed }))!;
    const progress = new Progress("eval", { total: problems.length * (1 + Math.max(opts.maj ?? 0, ...(opts.passK ?? []))), unit: "completions" });
    let result: EvalResult;
    try {
      const got = await evaluate(completer, problems, { ...opts, onProgress: (done) => progress.set(done) });
      progress.finish();
      result = got.result;
      if (out) {
        fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
        await writeJsonlAtomic(out, got.records);
      }
    } finally {
      progress.finish();
      await completer.close?.();
    }
    if (values.json) console.log(JSON.stringify(result));
    else console.log(formatTable(result, `eval of ${completer.name} on ${values.problems} (task ${task})`, opts.maj));
    return 0;
  },
};
