// `stepwise pairs`: preference pairs from verified samples (outcome, SCDPO, Step-DPO) in TRL or Step-DPO format.

import { InputError } from "../core/errors.js";
import { promptText } from "../data/format.js";
import { writeJsonlAtomic } from "../data/jsonl.js";
import { loadModelTokenizer } from "../model/hub.js";
import {
  buildPairs, CHOSEN_RULES, formatPair, pairsPerProblem, PAIR_FORMATS, PAIR_KINDS, readVerified, REJECTED_RULES, STEP_CHOSEN, Tally,
  type PairFormat, type PairKind, type PairsPerProblem, type StepDpoStats,
} from "../pairs/index.js";
import { LocalCompleter } from "../sample/local.js";
import type { Completer } from "../sample/types.js";
import { styleOf, type MathTask } from "../verify/record.js";
import { COMPLETER_HELP, COMPLETER_OPTIONS, completerFrom, intOption, templateOption } from "./options.js";
import { Progress } from "./progress.js";
import type { Command } from "./main.js";
import { checkOutputFile } from "../core/outputs.js";
import { numOption } from "./options.js";

type Values = Record<string, string | boolean | undefined>;

export interface PairsSummary {
  kind: PairKind;
  format: PairFormat;
  records: number;
  problems: number;
  pairs: number;
  problems_with_pairs: number;
  pairs_per_problem: PairsPerProblem;
  skipped: Record<string, number>;
  located?: StepDpoStats["located"]; // stepdpo: how first wrong steps were found
  chosen_from?: StepDpoStats["chosen_from"]; // stepdpo: where chosen steps came from
  out: string;
}

const MATH_TASKS: MathTask[] = ["arith", "gsm8k", "math"];

function choice<T extends string>(values: Values, name: string, allowed: readonly T[], dflt?: T): T {
  const v = values[name] ?? dflt;
  if (v === undefined) throw new InputError(`--${name} ${allowed.join("|")} is required`);
  if (!allowed.includes(v as T)) throw new InputError(`--${name} must be one of ${allowed.join(", ")}, got "${v}"`);
  return v as T;
}


/** The chat template needs a tokenizer: the --model folder's (the model itself is loaded only for rollouts). */
function promptOf(values: Values, completer: Completer | null): (q: string) => string {
  const template = templateOption(values);
  if (template === "plain") return (q) => promptText(q, "plain");
  const tok = completer instanceof LocalCompleter ? completer.tokenizer
    : typeof values.model === "string" ? loadModelTokenizer(values.model) : null;
  if (!tok) throw new InputError("--template chat needs the model's tokenizer: pass --model DIR");
  return (q) => promptText(q, "chat", tok);
}

async function run(values: Values): Promise<PairsSummary> {
  const kind = choice(values, "kind", PAIR_KINDS);
  const format = choice(values, "format", PAIR_FORMATS, "trl");
  if (typeof values.in !== "string") throw new InputError("--in FILE is required");
  if (typeof values.out !== "string") throw new InputError("--out FILE is required");
  checkOutputFile(values.out);
  const task = choice(values, "task", MATH_TASKS, "gsm8k");
  const batchSize = intOption(values, "batch-size", 16);
  const seed = intOption(values, "seed", 0, 0);
  if (format === "stepdpo" && kind !== "stepdpo") {
    process.stderr.write("stepwise pairs: note: stepwise dpo reads Step-DPO records as one-step pairs (no EOS after " +
      `chosen/rejected); for whole-solution ${kind} pairs the TRL format keeps the EOS\n`);
  }
  const tally = new Tally();
  const { problems, records } = await readVerified(values.in, Boolean(values["skip-bad"]), tally);
  if (records === 0) throw new InputError("no verified samples", values.in);
  const completer = kind === "stepdpo" ? await completerFrom(values, { batchSize, seed, optional: true }) : null;
  const prompt = promptOf(values, completer);
  const progress = new Progress("pairs: rollouts", { unit: "prefixes" });
  try {
    const built = await buildPairs(problems, {
      kind, style: styleOf(task), task, balanceLengths: Boolean(values["balance-lengths"]),
      chosen: choice(values, "chosen", CHOSEN_RULES, "sound"),
      rejected: choice(values, "rejected", REJECTED_RULES, "full"),
      chosenStep: choice(values, "stepdpo-chosen", STEP_CHOSEN, "rollout"),
      maxPairsPerProblem: intOption(values, "max-pairs-per-problem", 4),
      completer, rollouts: intOption(values, "rollouts", 8), seed, batchSize,
      temperature: numOption(values, "temperature", 1, (x) => x >= 0, "a number >= 0")!,
      topP: numOption(values, "top-p", undefined, (x) => x > 0 && x <= 1, "a number in (0, 1]"),
      topK: numOption(values, "top-k", undefined, (x) => Number.isInteger(x) && x >= 0, "an integer >= 0"),
      maxTokens: intOption(values, "max-tokens", 256),
      promptOf: prompt,
      onRollouts: (n) => progress.tick(n),
    }, tally);
    await writeJsonlAtomic(values.out, built.pairs.map((p) => formatPair(p, format, prompt)));
    const perProblem = pairsPerProblem(problems, built.pairs);
    return {
      kind, format, records, problems: problems.length, pairs: built.pairs.length,
      problems_with_pairs: new Set(built.pairs.map((p) => p.id)).size, pairs_per_problem: perProblem,
      skipped: tally.skipped, ...(built.stepdpo ? { located: built.stepdpo.located, chosen_from: built.stepdpo.chosen_from } : {}),
      out: values.out,
    };
  } finally {
    if (completer) progress.finish();
    await completer?.close?.();
  }
}

export const pairsCommand: Command = {
  name: "pairs",
  summary: "build preference pairs (outcome, SCDPO, Step-DPO) from verified samples",
  usage: "stepwise pairs --kind outcome|scdpo|stepdpo --in FILE --out FILE [--format trl|stepdpo] " +
    "[--max-pairs-per-problem 4] [--balance-lengths] [--chosen sound|answer] [--rejected full|first_error] " +
    "[--stepdpo-chosen rollout|corrected|both] [--model DIR | --endpoint URL] [--rollouts 8] [--json]",
  options: {
    ...COMPLETER_OPTIONS,
    kind: { type: "string" }, in: { type: "string" }, out: { type: "string" }, format: { type: "string" },
    template: { type: "string" }, task: { type: "string" }, "max-pairs-per-problem": { type: "string" },
    "balance-lengths": { type: "boolean" }, chosen: { type: "string" }, rejected: { type: "string" },
    "stepdpo-chosen": { type: "string" }, rollouts: { type: "string" }, temperature: { type: "string" },
    "top-p": { type: "string" }, "top-k": { type: "string" }, "max-tokens": { type: "string" }, seed: { type: "string" },
    "batch-size": { type: "string" }, "skip-bad": { type: "boolean" }, json: { type: "boolean" },
  },
  help: [
    "Reads the output of stepwise verify (samples with \"correct\", \"steps\", \"first_error_step\").",
    "kinds:",
    "  outcome   chosen a correct completion, rejected an incorrect one of the same problem",
    "  scdpo     step-controlled samples (stepwise sample --cut ...) that end wrong: chosen the reference solution's",
    "            continuation after the cut, rejected the sampled one; the shared prefix goes into the prompt",
    "  stepdpo   incorrect samples: the first wrong step (calculator, else rollouts) is rejected, the step in its",
    "            place of a correct continuation (a correct sample sharing the prefix, else rollouts) is chosen",
    "formats:",
    "  trl       {\"prompt\", \"chosen\", \"rejected\", \"id\", \"kind\"}: the prompt is the full prompt text plus the prefix",
    "  stepdpo   {\"prompt\" (the question), \"initial_reason_steps\", \"chosen\", \"rejected\", \"full_chosen\",",
    "            \"full_rejected\", \"answer\", \"id\", \"kind\"}",
    "options:",
    "  --in FILE                 verified samples (JSONL)",
    "  --out FILE                pairs (JSONL, written atomically)",
    "  --task T                  gsm8k (default), arith or math: how final answers are read and compared",
    "  --template T              plain (default) or chat (needs --model for the tokenizer); as in sft/dpo",
    "  --max-pairs-per-problem N default 4; identical pairs and identical completions count once",
    "  --balance-lengths         outcome: prefer pairs whose two sides are closest in length",
    "  --chosen R                outcome: sound (default: the right answer and no step the calculator finds wrong)",
    "                            or answer (the right final answer is enough)",
    "  --rejected R              outcome, scdpo: full (default: the whole wrong completion, EOS after it) or",
    "                            first_error (cut after its first wrong step, no EOS; \"rejected_eos\": false)",
    "  --stepdpo-chosen S        stepdpo: rollout (default: a self-generated correct step), corrected (where the",
    "                            calculator located the wrong step, that line with its arithmetic corrected: a",
    "                            minimal pair; else a rollout) or both (a pair of each)",
    "stepdpo rollouts (without --model/--endpoint only calculator-flagged steps and shared prefixes are used):",
    COMPLETER_HELP,
    "  --rollouts M              continuations per prefix, default 8",
    "  --temperature X           default 1; --top-p P, --top-k K as in sample",
    "  --max-tokens N            per continuation, default 256",
    "  --seed N                  default 0",
    "  --batch-size N            prefixes per generation batch, default 16",
    "  --skip-bad                skip malformed lines (counted) instead of stopping",
    "  --json                    print a JSON summary {\"kind\", \"format\", \"records\", \"problems\", \"pairs\",",
    "                            \"problems_with_pairs\", \"pairs_per_problem\": {\"mean\", \"max\", \"histogram\"}, \"skipped\",",
    "                            \"located\"?, \"chosen_from\"?, \"out\"}",
  ].join("\n"),
  async run(values) {
    const s = await run(values);
    if (values.json) {
      console.log(JSON.stringify(s));
      return 0;
    }
    const lines = [`${s.pairs} ${s.kind} pairs (${s.format} format) from ${s.records} samples of ${s.problems} problems ` +
      `into ${s.out}; ${s.problems_with_pairs} problems have pairs (mean ${s.pairs_per_problem.mean.toFixed(2)}, ` +
      `max ${s.pairs_per_problem.max} per problem)`];
    if (s.located) lines.push(`first wrong step found by calculator ${s.located.calculator}, by rollouts ${s.located.rollouts}; ` +
      `chosen steps from samples ${s.chosen_from!.samples}, from rollouts ${s.chosen_from!.rollouts}`);
    for (const [why, n] of Object.entries(s.skipped)) lines.push(`  skipped ${n}: ${why}`);
    console.error(lines.join("\n"));
    return 0;
  },
};
