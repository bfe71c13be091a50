// `stepwise run`: the whole recipe from one config (or none: the built-in default), cached stage by stage, and
// its report (report.json, report.html, a table in the terminal).

import fs from "node:fs";
import path from "node:path";
import { stringify as toYaml } from "yaml";
import { InputError } from "../core/errors.js";
import { checkOutputDir, lockOutput } from "../core/outputs.js";
import { DEFAULT_CONFIG, loadConfig, resolveConfig, type RunConfig } from "../run/config.js";
import { Pipeline, type SkippedVariant } from "../run/pipeline.js";
import { summaryTable, type Report } from "../run/report.js";
import { writeReport } from "../run/write-report.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";
import { flagNumber, SHOW_DOWNLOADS } from "./options.js";

type Values = Record<string, string | boolean | undefined>;

const DEFAULT_OUT = "stepwise-run";

function configFrom(values: Values, positionals: string[]): RunConfig {
  if (positionals.length > 1)
    throw new InputError(`one config file at most, got ${positionals.length}: ${positionals.join(" ")}`);
  const config = positionals.length === 1 ? loadConfig(positionals[0]) : resolveConfig({});
  if (values.seeds !== undefined) {
    const n = flagNumber(values.seeds);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`--seeds must be an integer >= 1, got "${values.seeds}"`);
    config.seeds = n;
  }
  if (values.threads !== undefined) {
    const n = flagNumber(values.threads);
    if (!Number.isInteger(n) || n < 1)
      throw new InputError(`--threads must be an integer >= 1, got "${values.threads}"`);
    config.threads = n;
  }
  return config;
}

export const runCommand: Command = {
  name: "run",
  cooperative: true,
  summary: "the whole recipe: task, SFT, sampling, pairs, DPO / SCDPO / Step-DPO, evals and a report",
  usage: "stepwise run [config.yaml] [--out DIR] [--seeds N] [--threads N] [--json] [--print-default-config]",
  help: [
    "With no config, runs the built-in default: a tiny model trained from scratch on the built-in arithmetic task",
    "(easy and medium problems, half each; the SFT data forgets the borrow in 70% of the subtractions that need one),",
    "then SFT, eval, sampling, verification, outcome / SCDPO / Step-DPO pairs, one DPO run per variant from the",
    "same SFT model (dpo, scdpo, step-dpo, and the sft-more control: SFT on the chosen sides) and an eval of each",
    "on held-out problems.",
    "A config (YAML or JSON) overrides any part of the default; print it with --print-default-config. Unknown",
    "keys and wrong types are errors naming the key. The resolved config is saved as DIR/config.json.",
    "Stages are cached under a hash of their config and inputs: rerunning the same command skips finished",
    "stages and resumes an interrupted one (after Ctrl-C or a kill); a changed config reruns what it changes.",
    "options:",
    "  --out DIR               run directory (default ./stepwise-run): report.json, report.html, every stage's files",
    "  --seeds N               run every seeded stage N times (overrides the config's seeds); the report gives",
    "                          the mean, the spread and a pooled 95% interval",
    "  --threads N             native backend threads (default: all cores)",
    "  --json                  print report.json on stdout at the end",
    "  --print-default-config  print the default config as YAML and exit",
  ].join("\n"),
  async run(values, positionals) {
    if (values["print-default-config"]) {
      process.stdout.write(toYaml(DEFAULT_CONFIG));
      return 0;
    }
    const config = configFrom(values, positionals);
    const dir = path.resolve(typeof values.out === "string" ? values.out : DEFAULT_OUT);
    checkOutputDir(dir);
    fs.mkdirSync(dir, { recursive: true });
    const release = lockOutput(dir, "dir", "stepwise run"); // one run per directory at a time
    let report: Report;
    let skipped: SkippedVariant[];
    try {
      const result = await new Pipeline(dir, config, {
        ...cliContext(),
        log: undefined,
        resolve: SHOW_DOWNLOADS,
      }).run();
      skipped = result.skipped;
      report = await writeReport(dir, config, result.evals, skipped);
    } finally {
      release();
    }
    process.stderr.write(`\n${summaryTable(report)}\n\nreport: ${path.join(dir, "report.html")}\n`);
    if (values.json) console.log(JSON.stringify(report));
    if (skipped.length === 0) return 0;
    // the report is written, but not every variant was trained: exit 3, as an incomplete sample does
    const which = skipped.map((s) => `${s.name} (seed ${s.seed}, round ${s.round}: ${s.reason})`).join(", ");
    process.stderr.write(`stepwise run: ${skipped.length} variant run(s) skipped: ${which}\n`);
    return 3;
  },
};
