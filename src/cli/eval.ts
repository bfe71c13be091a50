// `stepwise eval`: flags -> EvalConfig -> the eval stage (src/eval/stage.ts), printed as a table or JSON.

import { asFlags } from "../core/config.js";
import { DEFAULT_TEMPERATURE, defaultMaxTokens } from "../eval/eval.js";
import { evalConfig, evaluateFile, formatTable } from "../eval/stage.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";
import { COMPLETER_HELP, completerFrom } from "./options.js";

export const evalCommand: Command = {
  name: "eval",
  summary: "accuracy (Wilson 95% CI), majority vote, pass@k, step error rate and accuracy by steps",
  usage:
    "stepwise eval --model DIR|--endpoint URL --problems FILE [--task arith|gsm8k|math] [--maj K] [--pass-k 1,4] " +
    "[--temperature 0.7] [--max-tokens N] [--limit N] [--seed 0] [--template plain|chat] [--out FILE] [--json]",
  options: {
    "problems-format": { type: "string" },
  },
  help: [
    "Generates one greedy (temperature 0) completion per problem, ending at EOS or --max-tokens, from the prompt SFT",
    "trains on, and verifies it. With --maj / --pass-k it also samples completions at --temperature.",
    'metrics (--json prints {"accuracy", "n", "correct", "ci95": [lo, hi], "maj_accuracy"?, "pass_at_k"?,',
    '"step_error_rate"?, "by_steps": [{"steps", "n", "accuracy"}], "by_level"?, "seconds", "undecided",',
    '"samples"?}):',
    "  accuracy         greedy completions correct / n; an undecided verdict (an answer the verifier cannot",
    "                   compare) counts as not correct; ci95 is the Wilson score interval",
    "  maj_accuracy     the majority answer of K samples is correct: answers are grouped by the verifier's",
    '                   equivalence ("1,000" = "1000"), samples without an answer do not vote, and a tie goes to the',
    "                   answer whose first sample came first (sample order is fixed by the seed)",
    "  pass_at_k        mean over problems of the unbiased 1 - C(s-c,k)/C(s,k), s = max(K, largest k) samples, c correct",
    "  step_error_rate  of the greedy completions' steps that the calculator decided (ok true or false), the share",
    '                   that are false (the "####" step is false when the answer is wrong); absent if none decided',
    '  by_steps         greedy accuracy grouped by the problem\'s "steps" field, else by the number of lines of',
    '                   the reference solution before "####"',
    '  by_level         greedy accuracy grouped by the problems\' "level" field, when they have one (the parts of a',
    "                   mixed built-in task, stepwise task --preset easy+medium)",
    "options:",
    COMPLETER_HELP,
    '  --problems FILE      problems: {"id", "question", "answer"} (a reference solution or just the final answer)',
    "  --format F           jsonl (default: id/question/answer), gsm8k, math (problem/solution); --problems-format too",
    '  --task T             the verifier: arith (default), gsm8k ("#### n" answers), math (\\boxed{}; the default',
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
    const c = evalConfig(values, asFlags);
    const open = async () => (await completerFrom(values, { batchSize: c.batch_size, seed: c.seed }))!;
    const { result, completer } = await evaluateFile(c, cliContext(), open);
    if (values.json) console.log(JSON.stringify(result));
    else console.log(formatTable(result, `eval of ${completer} on ${c.problems} (task ${c.task})`, c.maj ?? undefined));
    return 0;
  },
};
