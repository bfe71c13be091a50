// The pairs stage as a library function: `writePairs(config, ctx)` builds preference pairs (outcome, SCDPO,
// Step-DPO) from verified samples, in TRL or Step-DPO format.

import { writeJsonlAtomic } from "../core/atomic.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { checkOutputFile } from "../core/outputs.js";
import { logOf, progressOf, type StageContext } from "../core/stage.js";
import { PROMPT_TEMPLATES, promptText, type PromptTemplate } from "../data/format.js";
import { loadModelTokenizer } from "../model/hub.js";
import { LocalCompleter } from "../sample/local.js";
import { openCompleter } from "../sample/open.js";
import type { Completer } from "../sample/types.js";
import { styleOf, type MathTask } from "../verify/record.js";
import {
  buildPairs,
  CHOSEN_RULES,
  formatPair,
  pairsPerProblem,
  PAIR_FORMATS,
  PAIR_KINDS,
  readVerified,
  REJECTED_RULES,
  STEP_CHOSEN,
  Tally,
  type PairFormat,
  type PairKind,
  type PairsPerProblem,
  type StepDpoStats,
} from "./index.js";

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

export interface PairsConfig {
  kind: PairKind; // outcome, scdpo or stepdpo
  in: string; // the output of the verify stage
  out: string; // the pairs, JSONL (atomically)
  format: PairFormat; // trl (default) or stepdpo
  template: PromptTemplate; // plain or chat (needs the model's tokenizer)
  task: MathTask; // how steps and answers are read: arith, gsm8k (default), math
  max_pairs_per_problem: number; // 4
  balance_lengths: boolean;
  chosen: (typeof CHOSEN_RULES)[number]; // outcome: sound (default) or answer
  rejected: (typeof REJECTED_RULES)[number]; // outcome, scdpo: full (default) or first_error
  stepdpo_chosen: (typeof STEP_CHOSEN)[number]; // rollout (default), corrected or both
  rollouts: number; // stepdpo: continuations per prefix (8)
  temperature: number; // of the rollouts (1)
  top_p: number | null;
  top_k: number | null;
  max_tokens: number; // per rollout (256)
  seed: number;
  batch_size: number; // rollouts generated together (16)
  skip_bad: boolean;
  model: string | null; // stepdpo rollouts with a local model; its tokenizer for the chat template
  endpoint: string | null; // or with an endpoint
  endpoint_model: string | null;
}

/** The lines `stepwise pairs` prints: pairs per problem, how first wrong steps were found, what was skipped. */
export function pairsSummaryText(s: PairsSummary): string {
  const lines = [
    `${s.pairs} ${s.kind} pairs (${s.format} format) from ${s.records} samples of ${s.problems} problems ` +
      `into ${s.out}; ${s.problems_with_pairs} problems have pairs (mean ${s.pairs_per_problem.mean.toFixed(2)}, ` +
      `max ${s.pairs_per_problem.max} per problem)`,
  ];
  if (s.located)
    lines.push(
      `first wrong step found by calculator ${s.located.calculator}, by rollouts ${s.located.rollouts}; ` +
        `chosen steps from samples ${s.chosen_from!.samples}, from rollouts ${s.chosen_from!.rollouts}`,
    );
  for (const [why, n] of Object.entries(s.skipped)) lines.push(`  skipped ${n}: ${why}`);
  return lines.join("\n");
}

/** A full PairsConfig from the knobs given (flag or key spellings), validated once. */
export function pairsConfig(
  given: Partial<PairsConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
): PairsConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming);
  if (!r.has("kind"))
    throw new InputError(naming.flags ? `--kind ${PAIR_KINDS.join("|")} is required` : "kind is required");
  return {
    kind: r.choice("kind", PAIR_KINDS, "outcome"),
    format: r.choice("format", PAIR_FORMATS, "trl"),
    in: r.need("in", "FILE"),
    out: r.need("out", "FILE"),
    template: r.choice("template", PROMPT_TEMPLATES, "plain"),
    task: r.choice("task", MATH_TASKS, "gsm8k"),
    max_pairs_per_problem: r.int("max_pairs_per_problem", 4),
    balance_lengths: r.bool("balance_lengths"),
    chosen: r.choice("chosen", CHOSEN_RULES, "sound"),
    rejected: r.choice("rejected", REJECTED_RULES, "full"),
    stepdpo_chosen: r.choice("stepdpo_chosen", STEP_CHOSEN, "rollout"),
    rollouts: r.int("rollouts", 8),
    temperature: r.num("temperature", 1, (x) => x >= 0, "a number >= 0"),
    top_p: r.num("top_p", null, (x) => x > 0 && x <= 1, "a number in (0, 1]"),
    top_k: r.num("top_k", null, (x) => Number.isInteger(x) && x >= 0, "an integer >= 0"),
    max_tokens: r.int("max_tokens", 256),
    seed: r.int("seed", 0, 0),
    batch_size: r.int("batch_size", 16),
    skip_bad: r.bool("skip_bad"),
    model: r.str("model", null),
    endpoint: r.str("endpoint", null),
    endpoint_model: r.str("endpoint_model", null),
  };
}

/** The chat template needs a tokenizer: the model folder's (the model itself is loaded only for rollouts). */
function promptOf(c: PairsConfig, completer: Completer | null): (q: string) => string {
  if (c.template === "plain") return (q) => promptText(q, "plain");
  const tok =
    completer instanceof LocalCompleter ? completer.tokenizer : c.model !== null ? loadModelTokenizer(c.model) : null;
  if (!tok) throw new InputError("--template chat needs the model's tokenizer: pass --model DIR");
  return (q) => promptText(q, "chat", tok);
}

/**
 * Builds c.kind pairs from verified samples into c.out. Step-DPO locates wrong steps by the calculator, else by
 * rollouts of `completer` (or of the model / endpoint c names; without one only calculator-flagged steps and
 * shared prefixes are used).
 */
export async function writePairs(
  c: PairsConfig,
  ctx: StageContext = {},
  completer?: Completer | null,
): Promise<PairsSummary> {
  checkOutputFile(c.out);
  if (c.format === "stepdpo" && c.kind !== "stepdpo") {
    logOf(ctx)(
      "note: stepwise dpo reads Step-DPO records as one-step pairs (no EOS after " +
        `chosen/rejected); for whole-solution ${c.kind} pairs the TRL format keeps the EOS`,
    );
  }
  const tally = new Tally();
  const { problems, records } = await readVerified(c.in, c.skip_bad, tally);
  if (records === 0) throw new InputError("no verified samples", c.in);
  const opened =
    completer === undefined && c.kind === "stepdpo" && (c.model !== null || c.endpoint !== null)
      ? await openCompleter(c, { batchSize: c.batch_size, seed: c.seed })
      : null;
  const rollouts = c.kind === "stepdpo" ? (completer ?? opened) : null;
  const prompt = promptOf(c, rollouts);
  const progress = rollouts ? progressOf(ctx, "pairs: rollouts", { unit: "prefixes" }) : null;
  try {
    const built = await buildPairs(
      problems,
      {
        kind: c.kind,
        style: styleOf(c.task),
        task: c.task,
        balanceLengths: c.balance_lengths,
        chosen: c.chosen,
        rejected: c.rejected,
        chosenStep: c.stepdpo_chosen,
        maxPairsPerProblem: c.max_pairs_per_problem,
        completer: rollouts,
        rollouts: c.rollouts,
        seed: c.seed,
        batchSize: c.batch_size,
        temperature: c.temperature,
        topP: c.top_p ?? undefined,
        topK: c.top_k ?? undefined,
        maxTokens: c.max_tokens,
        promptOf: prompt,
        onRollouts: (n) => progress?.tick(n),
      },
      tally,
    );
    await writeJsonlAtomic(
      c.out,
      built.pairs.map((p) => formatPair(p, c.format, prompt)),
    );
    const perProblem = pairsPerProblem(problems, built.pairs);
    return {
      kind: c.kind,
      format: c.format,
      records,
      problems: problems.length,
      pairs: built.pairs.length,
      problems_with_pairs: new Set(built.pairs.map((p) => p.id)).size,
      pairs_per_problem: perProblem,
      skipped: tally.skipped,
      ...(built.stepdpo ? { located: built.stepdpo.located, chosen_from: built.stepdpo.chosen_from } : {}),
      out: c.out,
    };
  } finally {
    progress?.finish();
    await opened?.close?.();
  }
}
