// `stepwise verify`: flags -> VerifyConfig -> the verify stage (src/verify/stage.ts).

import { asFlags } from "../core/config.js";
import { verifyConfig, verifyFile } from "../verify/stage.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";

export const verifyCommand: Command = {
  name: "verify",
  summary: "label completions: answer correct, per-step verdicts, first wrong step",
  usage: "stepwise verify --task arith|gsm8k|math|code --in FILE --out FILE [--skip-bad] [--json]",
  help: [
    'Input: one record a line with "completion" and "answer" (math tasks) or "completion", "tests", "entry_point",',
    '"language" (code). Output: each record plus {"correct": true|false|null, "pred", "steps": [{"text", "ok"}],',
    '"first_error_step"} (null = undecided); code records also get "result": {"status", "message", "ms"}.',
    "options:",
    '  --task T           arith (built-in), gsm8k ("#### n" answers), math (\\boxed{} answers), code (unit tests)',
    "  --in FILE          input JSONL",
    "  --out FILE         output JSONL (written atomically)",
    "  --skip-bad         skip malformed lines (counted) instead of stopping at the first",
    '  --json             print a JSON summary {"n", "correct", "incorrect", "undecided", "skipped_bad", "accuracy",',
    '                     "step_error_rate", "sandbox"?} on stdout (accuracy = correct / n: undecided counts as not',
    "                     correct; step_error_rate = share of records with steps that have a wrong step)",
    "  --concurrency N    code: programs run at once (default: number of CPU cores)",
    "  --time-limit MS    code: wall-time limit per program (default 5000)",
    "  --memory-limit MB  code: memory per program (default 256)",
    "environment: STEPWISE_SANDBOX=root-ns|bwrap|userns|basic caps the sandbox mode (default: the strongest that works)",
  ].join("\n"),
  async run(values) {
    const summary = await verifyFile(verifyConfig(values, asFlags), cliContext("stepwise verify: "));
    if (values.json) {
      console.log(JSON.stringify(summary));
      return 0;
    }
    const pct = summary.accuracy === null ? "n/a" : `${(summary.accuracy * 100).toFixed(1)}%`;
    console.error(
      `verified ${summary.n}: ${summary.correct} correct (${pct}), ${summary.incorrect} wrong, ` +
        `${summary.undecided} undecided${summary.skipped_bad ? `, ${summary.skipped_bad} bad lines skipped` : ""}`,
    );
    if (summary.sandbox) console.error(`sandbox: ${summary.sandbox.mode} (${summary.sandbox.protections.join(", ")})`);
    return 0;
  },
};
