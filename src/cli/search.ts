// `stepwise search`: step-level beam search guided by the implicit reward beta * log(pi / pi_ref) (or the policy's
// log-prob), against greedy decoding, on held-out problems (src/inspect/search.ts).

import { writeJsonlAtomic } from "../core/atomic.js";
import { InputError } from "../core/errors.js";
import { collect, loadMapped } from "../data/load.js";
import { searchProblems, type SearchScore } from "../inspect/search.js";
import type { MathTask } from "../verify/record.js";
import type { Command } from "./command.js";
import { flagNumber, intOption, templateOption } from "./options.js";
import { betaOption, loadPolicyAndRef, writeOutput } from "./policy-ref.js";
import { Progress } from "../core/progress.js";

type Values = Record<string, string | boolean | undefined>;

function numberOption(values: Values, name: string, dflt: number, ok: (x: number) => boolean, what: string): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const x = flagNumber(v);
  if (!Number.isFinite(x) || !ok(x)) throw new InputError(`--${name} must be ${what}, got "${v}"`);
  return x;
}

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
    if (typeof values.problems !== "string") throw new InputError("--problems FILE is required");
    if (values.beams === undefined) throw new InputError("--beams K is required");
    const score = String(values.score ?? "reward") as SearchScore;
    if (score !== "reward" && score !== "logprob")
      throw new InputError(`--score must be reward or logprob, got "${values.score}"`);
    const task = String(values.task ?? "arith") as MathTask;
    if (!["arith", "gsm8k", "math"].includes(task))
      throw new InputError(`--task must be arith, gsm8k or math, got "${values.task}"`);
    const opts = {
      beams: intOption(values, "beams", 1),
      expand: intOption(values, "expand", 3, 0),
      temperature: numberOption(values, "temperature", 0.7, (x) => x >= 0, "a number >= 0"),
      beta: betaOption(values),
      score,
      maxSteps: intOption(values, "max-steps", 12),
      maxTokens: intOption(values, "max-tokens", 256),
      seed: intOption(values, "seed", 0, 0),
      batchSize: intOption(values, "batch-size", 32),
      template: templateOption(values),
      task,
    };
    const limit = intOption(values, "limit", Infinity);
    const problems = (await collect(loadMapped(values.problems))).slice(0, limit);
    if (problems.length === 0) throw new InputError("no problems", values.problems);
    const { model, ref, tokenizer } = loadPolicyAndRef(values, score === "reward");
    try {
      const t0 = performance.now();
      const bar = new Progress("search", { total: problems.length, unit: "problems" });
      const r = searchProblems(model, ref, tokenizer, problems, { ...opts, onProgress: (d) => bar.set(d) });
      bar.finish();
      const { records, ...summary } = r;
      if (typeof values.out === "string") await writeOutput(values.out, (f) => writeJsonlAtomic(f, records));
      const out = { ...summary, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)) };
      if (values.json) console.log(JSON.stringify(out));
      else {
        const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
        console.log(
          `problems ${r.n}: greedy ${pct(r.greedy_accuracy)}, beam search (K=${r.beams}, expand ${r.expand}, ` +
            `score ${r.score}) ${pct(r.beam_accuracy)}; beam only ${r.beam_only}, greedy only ${r.greedy_only}`,
        );
      }
      return 0;
    } finally {
      model.dispose();
      ref?.dispose();
    }
  },
};
