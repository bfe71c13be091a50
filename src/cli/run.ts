// `stepwise run`: the whole recipe from one config (or none: the built-in default), cached stage by stage, and
// its report (report.json, report.html, a table in the terminal).

import path from "node:path";
import { stringify as toYaml } from "yaml";
import { asFlags, KnobReader } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { DEFAULT_CONFIG, loadConfig, resolveConfig, type RunConfig } from "../run/config.js";
import { summaryTable } from "../run/report.js";
import { runPipeline } from "../run/write-report.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";
import { SHOW_DOWNLOADS } from "./options.js";

type Values = Record<string, string | boolean | undefined>;

const DEFAULT_OUT = "stepwise-run";

function configFrom(values: Values, positionals: string[]): RunConfig {
  if (positionals.length > 1)
    throw new InputError(`one config file at most, got ${positionals.length}: ${positionals.join(" ")}`);
  const config = positionals.length === 1 ? loadConfig(positionals[0]) : resolveConfig({});
  const r = new KnobReader(values, asFlags); // the flags override the config's seeds and threads
  config.seeds = r.int("seeds", config.seeds);
  config.threads = r.int("threads", config.threads);
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
    "Exit codes: 0 done; 1 a stage failed (a diverging loss); 2 bad input (checked before the first stage); 3 the",
    "report is written but a variant had no pairs to train on (skipped); 130 / 143 interrupted (rerun to resume).",
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
    const report = await runPipeline(dir, config, { ...cliContext(), log: undefined, resolve: SHOW_DOWNLOADS });
    process.stderr.write(`\n${summaryTable(report)}\n\nreport: ${path.join(dir, "report.html")}\n`);
    if (values.json) console.log(JSON.stringify(report));
    const skipped = report.skipped ?? [];
    if (skipped.length === 0) return 0;
    // the report is written, but not every variant was trained: exit 3, as an incomplete sample does
    const which = skipped.map((s) => `${s.name} (seed ${s.seed}, round ${s.round}: ${s.reason})`).join(", ");
    process.stderr.write(`stepwise run: ${skipped.length} variant run(s) skipped: ${which}\n`);
    return 3;
  },
};
