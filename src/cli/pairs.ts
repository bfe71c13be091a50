// `stepwise pairs`: flags -> PairsConfig -> the pairs stage (src/pairs/stage.ts).

import { asFlags } from "../core/config.js";
import { pairsConfig, pairsSummaryText, writePairs, type PairsSummary } from "../pairs/stage.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";
import { COMPLETER_HELP, completerFrom } from "./options.js";

export const pairsCommand: Command = {
  name: "pairs",
  summary: "build preference pairs (outcome, SCDPO, Step-DPO) from verified samples",
  usage:
    "stepwise pairs --kind outcome|scdpo|stepdpo --in FILE --out FILE [--format trl|stepdpo] " +
    "[--max-pairs-per-problem 4] [--balance-lengths] [--chosen sound|answer] [--rejected full|first_error] " +
    "[--stepdpo-chosen rollout|corrected|both] [--model DIR | --endpoint URL] [--rollouts 8] [--json]",
  options: {
    kind: { type: "string" },
    format: { type: "string" },
    "top-p": { type: "string" },
    "top-k": { type: "string" },
  },
  help: [
    'Reads the output of stepwise verify (samples with "correct", "steps", "first_error_step").',
    "kinds:",
    "  outcome   chosen a correct completion, rejected an incorrect one of the same problem",
    "  scdpo     step-controlled samples (stepwise sample --cut ...) that end wrong: chosen the reference solution's",
    "            continuation after the cut, rejected the sampled one; the shared prefix goes into the prompt",
    "  stepdpo   incorrect samples: the first wrong step (calculator, else rollouts) is rejected, the step in its",
    "            place of a correct continuation (a correct sample sharing the prefix, else rollouts) is chosen",
    "formats:",
    '  trl       {"prompt", "chosen", "rejected", "id", "kind"}: the prompt is the full prompt text plus the prefix',
    '  stepdpo   {"prompt" (the question), "initial_reason_steps", "chosen", "rejected", "full_chosen",',
    '            "full_rejected", "answer", "id", "kind"}',
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
    '                            first_error (cut after its first wrong step, no EOS; "rejected_eos": false)',
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
    '  --json                    print a JSON summary {"kind", "format", "records", "problems", "pairs",',
    '                            "problems_with_pairs", "pairs_per_problem": {"mean", "max", "histogram"}, "skipped",',
    '                            "located"?, "chosen_from"?, "out"}',
  ].join("\n"),
  async run(values) {
    const c = pairsConfig(values, asFlags);
    // Rollouts need a model or an endpoint; without one, only calculator-flagged steps and shared prefixes are used.
    const completer =
      c.kind === "stepdpo"
        ? await completerFrom(values, { batchSize: c.batch_size, seed: c.seed, optional: true })
        : null;
    let s: PairsSummary;
    try {
      s = await writePairs(c, cliContext("stepwise pairs: "), completer);
    } finally {
      await completer?.close?.();
    }
    if (values.json) console.log(JSON.stringify(s));
    else console.error(pairsSummaryText(s));
    return 0;
  },
};
