// `stepwise run`: the whole recipe from one config (or none: the built-in default), cached stage by stage, and
// its report (report.json, report.html, a table in the terminal).

import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { stringify as toYaml } from "yaml";
import { InputError } from "../core/errors.js";
import { DEFAULT_CONFIG, loadConfig, resolveConfig, type RunConfig } from "../run/config.js";
import { diagnose } from "../run/diagnostics.js";
import { StageCache } from "../run/stages.js";
import { reportHtml, smooth, summarize, summaryTable, type Curve, type Report } from "../run/report.js";
import { METRICS } from "../train/metrics.js";
import type { Command } from "./main.js";
import { cliContext } from "./context.js";
import { flagNumber, SHOW_DOWNLOADS } from "./options.js";
import { Pipeline, type SkippedVariant } from "../run/pipeline.js";
import { checkOutputDir, lockOutput } from "../core/outputs.js";
import { creditExamples } from "./run-credit.js";

type Values = Record<string, string | boolean | undefined>;

const DEFAULT_OUT = "stepwise-run";

function configFrom(values: Values, positionals: string[]): RunConfig {
  if (positionals.length > 1) throw new InputError(`one config file at most, got ${positionals.length}: ${positionals.join(" ")}`);
  const config = positionals.length === 1 ? loadConfig(positionals[0]) : resolveConfig({});
  if (values.seeds !== undefined) {
    const n = flagNumber(values.seeds);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`--seeds must be an integer >= 1, got "${values.seeds}"`);
    config.seeds = n;
  }
  if (values.threads !== undefined) {
    const n = flagNumber(values.threads);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`--threads must be an integer >= 1, got "${values.threads}"`);
    config.threads = n;
  }
  return config;
}

/** (step, value) of one metric in a metrics.jsonl (a torn last line is ignored). */
export function readCurve(file: string, metric: string): [number, number][] {
  if (!fs.existsSync(file)) return [];
  const points: [number, number][] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      const r = JSON.parse(line) as Record<string, unknown>;
      if (typeof r[metric] === "number" && typeof r.step === "number") points.push([r.step, r[metric] as number]);
    } catch {
      // a line being written
    }
  }
  return points;
}

function countLines(file: string): number {
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").length : 0;
}

/** Builds report.json and report.html from what the pipeline left in `dir`. */
export async function writeReport(dir: string, config: RunConfig, evals: Parameters<typeof summarize>[0], skipped: SkippedVariant[] = []): Promise<Report> {
  const seed1 = path.join(dir, "seed-1");
  // Time is the stages' own (cached stages count what they took when they ran), so an interrupted and resumed
  // run reports the compute it needed, not the wall time of the last invocation.
  const stages = new StageCache(dir).all().map((r) => ({ name: r.name, seconds: Math.round(r.seconds * 10) / 10 }));
  const seconds = stages.reduce((a, s) => a + s.seconds, 0);
  const report: Report = {
    format: 1, variants: summarize(evals), seeds: config.seeds, seconds, config, stages, skipped,
    pairs: Object.fromEntries(["outcome", "scdpo", "stepdpo"].map((k) => [k, countLines(path.join(seed1, "pairs", `${k}.jsonl`))])),
    diagnostics: diagnose(dir, config.seeds, config.task.noise.kind === "borrow"),
  };
  const dpoCurve = (metric: string): Curve[] => config.variants.map((v) => ({ name: v.name, points: smooth(readCurve(path.join(seed1, v.name, "metrics.jsonl"), metric)) }));
  const curves = [
    { metric: "SFT loss", series: [{ name: "sft", points: smooth(readCurve(path.join(seed1, "sft", "metrics.jsonl"), METRICS.loss)) }] },
    { metric: "DPO loss (moving average)", series: dpoCurve(METRICS.loss) },
    { metric: "rewards/accuracies (moving average)", series: dpoCurve(METRICS.rewardsAccuracies) },
    { metric: "rewards/margins (moving average)", series: dpoCurve(METRICS.rewardsMargins) },
    { metric: "rewards/chosen (moving average)", series: dpoCurve(METRICS.rewardsChosen) },
    // likelihood displacement: a chosen log-prob that falls while the margin grows
    { metric: "logps/chosen (moving average)", series: dpoCurve(METRICS.logpsChosen) },
    { metric: "logps/rejected (moving average)", series: dpoCurve(METRICS.logpsRejected) },
  ];
  const credit = await creditExamples(dir, config);
  writeJsonAtomic(path.join(dir, "report.json"), report);
  await writeFileAtomic(path.join(dir, "report.html"), reportHtml(report, { curves, credit }));
  return report;
}

export const runCommand: Command = {
  name: "run",
  cooperative: true,
  summary: "the whole recipe: task, SFT, sampling, pairs, DPO / SCDPO / Step-DPO, evals and a report",
  usage: "stepwise run [config.yaml] [--out DIR] [--seeds N] [--threads N] [--json] [--print-default-config]",
  options: {
    out: { type: "string" },
    seeds: { type: "string" },
    threads: { type: "string" },
    json: { type: "boolean" },
    "print-default-config": { type: "boolean" },
  },
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
    try {
      const { evals, skipped } = await new Pipeline(dir, config, { ...cliContext(), log: undefined, resolve: SHOW_DOWNLOADS }).run();
      report = await writeReport(dir, config, evals, skipped);
    } finally {
      release();
    }
    process.stderr.write(`\n${summaryTable(report)}\n\nreport: ${path.join(dir, "report.html")}\n`);
    if (values.json) console.log(JSON.stringify(report));
    return 0;
  },
};
