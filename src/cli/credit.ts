// `stepwise credit`: which tokens and steps a DPO-trained policy credits or blames, as the per-token implicit reward
// beta * log(pi / pi_ref) against its reference (src/inspect/credit.ts), drawn in terminal colours, as a table, as
// an HTML heatmap, or as JSON. With --corrupt-eval it measures how often the lowest-reward step of a corrupted
// correct solution is the corrupted one (src/inspect/corrupt.ts).

import { asFlags } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { type ColorMode, creditAnsi, creditTable, terminalColors } from "../inspect/render.js";
import { corruptEvalConfig, corruptEvalFile, corruptEvalText, creditConfig, creditText } from "../inspect/stage.js";
import type { Command } from "./command.js";
import { cliContext } from "./context.js";

type Values = Record<string, string | boolean | undefined>;

/** Colours for stdout: off when --color never, NO_COLOR is set or stdout is no terminal (unless --color always). */
function colorMode(values: Values): ColorMode | null {
  const c = String(values.color ?? "auto");
  if (c !== "auto" && c !== "always" && c !== "never")
    throw new InputError(`--color must be auto, always or never, got "${c}"`);
  return terminalColors(c, Boolean(process.stdout.isTTY));
}

async function runCredit(values: Values): Promise<number> {
  if (typeof values.text !== "string")
    throw new InputError("--text STR is required (or --corrupt-eval --problems FILE)");
  const config = creditConfig(values, asFlags);
  const mode = colorMode(values);
  const c = await creditText(config, cliContext());
  if (values.json) console.log(JSON.stringify(c));
  else {
    console.log(mode ? creditAnsi(c, mode) : creditTable(c));
    if (config.html !== null) console.log(`wrote ${config.html}`);
  }
  return 0;
}

async function runCorruptEval(values: Values): Promise<number> {
  if (typeof values.problems !== "string")
    throw new InputError("--corrupt-eval needs --problems FILE (problems with reference solutions)");
  if (values.text !== undefined) throw new InputError("--corrupt-eval takes --problems, not --text");
  const r = await corruptEvalFile(corruptEvalConfig(values, asFlags), cliContext());
  console.log(values.json ? JSON.stringify(r) : corruptEvalText(r));
  return 0;
}

export const creditCommand: Command = {
  name: "credit",
  summary: "per-token implicit reward beta*log(pi/pi_ref) as a heatmap (terminal, HTML); --corrupt-eval measures it",
  usage:
    "stepwise credit --model DIR --ref DIR --text STR [--prompt STR | --question STR] [--html FILE] [--beta 0.1] " +
    "[--json]\n       stepwise credit --corrupt-eval --model DIR --ref DIR --problems FILE [--corrupt-mode keep|recompute] " +
    "[--seed 0] [--limit N] [--json]",
  options: {
    template: { type: "string" },
    "corrupt-eval": { type: "boolean" },
  },
  help: [
    "Scores the text teacher-forced under the policy and the reference. Each token's reward is",
    'beta * (log pi(token | prefix) - log pi_ref(token | prefix)); a step (a line, or a "Step k:" block) sums its',
    "tokens' rewards. Red: the policy likes a token less than the reference did; green: more; the colour scale is the",
    "largest |reward| of the text. On a terminal the tokens are coloured (24-bit where COLORTERM says so, else 256",
    "colours), one line per step with its sum; with NO_COLOR, or when stdout is not a terminal, a table is printed.",
    "options:",
    "  --model DIR       the policy (a model folder, a .gguf file or a Hugging Face name owner/name)",
    "  --ref DIR         the reference model (the policy's starting point, e.g. the SFT model)",
    "  --text STR        the completion to score",
    "  --prompt STR      text before it, context only (no rewards); default none (BOS alone)",
    "  --question STR    a problem's question: the prompt is made as SFT makes it (--template plain|chat)",
    "  --eos             also score an end-of-sequence token after the text",
    "  --beta X          DPO beta of the reward, default 0.1",
    "  --html FILE       write a self-contained HTML heatmap (token tooltips, step sums, legend)",
    "  --color WHEN      auto (default), always, never",
    '  --json            print {"prompt", "completion", "beta", "tokens": [{"id", "text", "start", "end", "logprob",',
    '                    "ref_logprob", "reward", "step"}], "steps": [{"index", "text", "start", "end", "tokens",',
    '                    "reward", "logprob", "ref_logprob"}], "total_reward", "max_abs_reward", "html"?}',
    "measurement (--corrupt-eval): each problem's reference solution gets one step's result changed (the number",
    'after "=" and after ">>" of one <<expr=N>> annotation, chosen by --seed). Reports how often the step with the',
    "lowest summed implicit reward is the corrupted one, against the reference model's lowest mean log-prob step and",
    "chance (mean of 1 / steps with an annotation):",
    "  --corrupt-mode M  keep (default): later steps stay as they were (the final answer stays right; the next step",
    "                    disagrees with the changed value); recompute: the wrong value is carried into later steps",
    "                    and their results recomputed (consistent after the error; the final answer changes)",
    '  --problems FILE   {"id", "question", "answer"} with full solutions (as `stepwise task` writes)',
    "  --seed N          default 0",
    "  --limit N         the first N problems",
    "  --out FILE        per-problem records (corrupted step, each predictor's pick, step rewards), JSONL",
    '  --json            print {"n", "implicit_reward_hit_rate", "ref_logprob_hit_rate", "chance",',
    '                    "implicit_reward_mean_hit_rate", "ref_logprob_sum_hit_rate", "policy_logprob_hit_rate",',
    '                    "skipped", "beta", "seed", "mode"}',
    "  --backend B       native (default when built) or reference",
    "  --threads N       worker threads of the native backend",
  ].join("\n"),
  async run(values) {
    return values["corrupt-eval"] ? runCorruptEval(values) : runCredit(values);
  },
};
