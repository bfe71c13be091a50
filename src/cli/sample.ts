// `stepwise sample`: flags -> SampleConfig -> the sample stage (src/sample/stage.ts), which is resumable.

import { asFlags } from "../core/config.js";
import { INCOMPLETE_EXIT, missingSamplesText, sample, sampleConfig, sampleSummaryText } from "../sample/stage.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";
import { COMPLETER_HELP, completerFrom } from "./options.js";

export const sampleCommand: Command = {
  name: "sample",
  cooperative: true,
  summary: "N completions per problem, or step-controlled continuations (SCDPO); resumable",
  usage:
    "stepwise sample --model DIR|--endpoint URL --problems FILE --n 8 --out FILE [--temperature 1] [--top-p P] " +
    "[--top-k K] [--max-tokens 256] [--seed 0] [--logprobs] [--step-temperature SCHEDULE --cut random|K|A-B] " +
    "[--template plain|chat] [--batch-size 16] [--json]",
  options: {
    stop: { type: "string", multiple: true },
  },
  help: [
    'Writes one record a line: {"id", "sample", "question", "answer", "completion", "finish_reason", "logprobs"?}',
    '(+ "cut", "prefix" when step-controlled; other fields of the problem are kept). Rerunning the same command',
    "after an interruption resumes: samples already written are kept, the missing ones generated, none twice.",
    "OUT.config.json records the options that decide the samples; a rerun with other ones is refused.",
    "With --endpoint, a request that still fails after its retries is tried again after the other samples (2 more",
    "passes); samples still failing then are listed and the exit code is 3, every other sample being written.",
    "options:",
    COMPLETER_HELP,
    '  --problems FILE      problems: {"id", "question", "answer"} (the answer a reference solution or a final answer)',
    "  --format F           jsonl (default: id/question/answer), gsm8k, math (problem/solution), code (prompt/tests)",
    "  --n N                samples per problem (per cut point when step-controlled), default 8",
    "  --out FILE           output JSONL (appended batch by batch, fsynced)",
    "  --temperature X      sampling temperature, default 1 (0 = greedy)",
    "  --top-p P            nucleus sampling (default off)",
    "  --top-k K            keep the K most likely tokens (default off)",
    "  --max-tokens N       new tokens per completion, default 256",
    "  --stop STR           stop string (repeatable; \\n for a newline); the completion ends before it",
    "  --seed N             default 0; sample s of problem id always gets the same seed",
    "  --logprobs           add each sampled token's log-prob",
    "  --template T         plain (default: question, newline) or chat (the model's chat template; needs --model)",
    "  --batch-size N       samples per batch (generated together, then written and fsynced), default 16",
    "  --skip-bad           skip malformed problem lines (counted) instead of stopping",
    '  --json               print a JSON summary {"problems", "samples", "present", "written", "skipped",',
    '                       "finish_reasons", "out"}',
    'step-controlled sampling (SCDPO): needs a reference solution in "answer"; keeps its steps 1..k and generates',
    "the rest one step (line) at a time, each step's temperature from the schedule (--temperature is not used);",
    '"completion" is the prefix plus the continuation.',
    "  --step-temperature S temperature of generated step i (from 0): gsm8k = min(1.1+0.1*i, 1.4) (default),",
    '                       math = min(1.0+0.05*i, 1.2), blog = 1.05, 1.1, 1.15, ..., or "a+b*i<=c" (b, c optional)',
    '  --cut C              random (default: k in 1..R-1, R the steps before "####"), K, or every k in A-B',
    "                       (n samples each; sample = (k - A) * n + j)",
    "  --max-steps N        steps generated at most, default 32",
  ].join("\n"),
  async run(values) {
    const stop = (values.stop as unknown as string[] | undefined)?.map((s) => s.replace(/\\n/g, "\n"));
    const c = sampleConfig({ ...values, stop }, asFlags);
    // Opened by the stage once --out is checked (before the model loads), and closed by it.
    const open = async () => (await completerFrom(values, { batchSize: c.batch_size, seed: c.seed }))!;
    const summary = await sample(c, cliContext(), open);
    if (values.json) console.log(JSON.stringify(summary));
    else console.error(sampleSummaryText(summary));
    // The samples written are kept (fsynced); a rerun of the same command generates only the missing ones.
    const missing = missingSamplesText(summary, !values.json);
    if (missing === null) return 0;
    console.error(`stepwise sample: ${missing}`);
    return INCOMPLETE_EXIT;
  },
};
