// `stepwise search`: step-level beam search guided by the implicit reward beta * log(pi / pi_ref) (or the policy's
// log-prob), against greedy decoding, on held-out problems (src/inspect/search.ts).

import { asFlags } from "../core/config.js";
import { searchConfig, searchFile } from "../inspect/stage.js";
import type { Command } from "./command.js";
import { cliContext } from "./context.js";

export const searchCommand: Command = {
  name: "search",
  summary: "implicit-reward guided step-level beam search; accuracy vs greedy decoding",
  usage:
    "stepwise search --model DIR --ref DIR --problems FILE --beams K [--expand 3] [--temperature 0.7] " +
    "[--beta 0.1] [--score reward|logprob] [--max-steps 12] [--max-tokens 256] [--json]",
  help: [
    "Solves each problem twice with the policy: greedy decoding, and a beam search over steps (lines). Each round,",
    "every live beam proposes its greedy next line plus --expand lines sampled at --temperature (duplicates dropped);",
    "a partial solution's score is the implicit reward beta * sum log(pi/pi_ref) of all its generated tokens (or its",
    "summed policy log-prob with --score logprob); the best K of the finished beams and all extensions are kept.",
    'A beam ends at EOS, after its "#### n" line, or when --max-tokens are spent; the search after --max-steps',
    "rounds. The top beam's answer is verified against the reference. --beams 1 --expand 0 is greedy decoding.",
    "Prompts are made as SFT makes them (the question and a newline, or the chat template).",
    "options:",
    "  --model DIR         the policy",
    "  --ref DIR           the reference model (needed for --score reward)",
    '  --problems FILE     {"id", "question", "answer"} (a reference solution or a final answer)',
    "  --beams K           beams kept per problem",
    "  --expand N          sampled candidates per beam and step besides the greedy one, default 3",
    "  --temperature T     of the sampled candidates, default 0.7",
    "  --score S           reward (default: beta*log(pi/pi_ref)) or logprob (the policy's log-prob)",
    "  --beta X            DPO beta of the reward, default 0.1",
    "  --max-steps N       steps (lines) per solution at most, default 12",
    "  --max-tokens N      generated tokens per solution at most, default 256",
    "  --seed N            seeds the sampled candidates, default 0",
    "  --template T        plain (default) or chat",
    "  --task T            arith (default), gsm8k or math: how answers are compared",
    "  --limit N           the first N problems",
    "  --batch-size N      rows generated and scored together, default 32",
    '  --out FILE          per-problem records {"id", "greedy", "beam", "beam_score", "greedy_correct",',
    '                      "beam_correct", "greedy_pred", "beam_pred"}, JSONL',
    '  --json              print {"n", "greedy_accuracy", "beam_accuracy", "beams", "expand", "temperature",',
    '                      "score", "beta", "max_steps", "both_correct", "beam_only", "greedy_only", "seconds"}',
    "  --backend B         native (default when built) or reference",
    "  --threads N         worker threads of the native backend",
  ].join("\n"),
  async run(values) {
    const r = await searchFile(searchConfig(values, asFlags), cliContext());
    if (values.json) console.log(JSON.stringify(r));
    else {
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      console.log(
        `problems ${r.n}: greedy ${pct(r.greedy_accuracy)}, beam search (K=${r.beams}, expand ${r.expand}, ` +
          `score ${r.score}) ${pct(r.beam_accuracy)}; beam only ${r.beam_only}, greedy only ${r.greedy_only}`,
      );
    }
    return 0;
  },
};
