// The run's report files: report.json and report.html from what the pipeline left in a run directory (evals,
// stage records, pair counts, training curves, credit heatmaps, diagnostics); and runPipeline, a run directory's
// whole life: checked, made, locked, the pipeline run in it and its report written.

import fs from "node:fs";
import path from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { checkOutputDir, lockOutput } from "../core/outputs.js";
import { METRICS } from "../train/metrics.js";
import type { RunConfig } from "./config.js";
import { creditExamples } from "./credit-examples.js";
import { diagnose } from "./diagnostics.js";
import { Pipeline, type PipelineOptions, type SkippedVariant } from "./pipeline.js";
import { reportHtml, smooth, summarize, type Curve, type Report } from "./report.js";
import { StageCache } from "./stages.js";

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
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "").length
    : 0;
}

/** Builds report.json and report.html from what the pipeline left in `dir`. */
export async function writeReport(
  dir: string,
  config: RunConfig,
  evals: Parameters<typeof summarize>[0],
  skipped: SkippedVariant[] = [],
): Promise<Report> {
  const seed1 = path.join(dir, "seed-1");
  // Time is the stages' own (cached stages count what they took when they ran), so an interrupted and resumed
  // run reports the compute it needed, not the wall time of the last invocation.
  const stages = new StageCache(dir).all().map((r) => ({ name: r.name, seconds: Math.round(r.seconds * 10) / 10 }));
  const seconds = stages.reduce((a, s) => a + s.seconds, 0);
  const report: Report = {
    format: 1,
    variants: summarize(evals),
    seeds: config.seeds,
    seconds,
    config,
    stages,
    skipped,
    pairs: Object.fromEntries(
      ["outcome", "scdpo", "stepdpo"].map((k) => [k, countLines(path.join(seed1, "pairs", `${k}.jsonl`))]),
    ),
    diagnostics: diagnose(dir, config.seeds, config.task.noise.kind === "borrow"),
  };
  const dpoCurve = (metric: string): Curve[] =>
    config.variants.map((v) => ({
      name: v.name,
      points: smooth(readCurve(path.join(seed1, v.name, "metrics.jsonl"), metric)),
    }));
  const curves = [
    {
      metric: "SFT loss",
      series: [{ name: "sft", points: smooth(readCurve(path.join(seed1, "sft", "metrics.jsonl"), METRICS.loss)) }],
    },
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

/**
 * Runs the whole recipe of `config` in `dir` (made when missing; one run per directory at a time) and writes its
 * report. Finished stages of an earlier run there are skipped, an interrupted one resumes (src/run/pipeline.ts).
 */
export async function runPipeline(dir: string, config: RunConfig, opts: PipelineOptions = {}): Promise<Report> {
  checkOutputDir(dir);
  fs.mkdirSync(dir, { recursive: true });
  const release = lockOutput(dir, "dir", "stepwise run");
  try {
    const { evals, skipped } = await new Pipeline(dir, config, opts).run();
    return await writeReport(dir, config, evals, skipped);
  } finally {
    release();
  }
}
