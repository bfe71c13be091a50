// Test fixture: a small pipeline run directory made with the real CLI (tiny sft and dpo models, a few steps each),
// plus the eval JSON, pair files and report.json that `stepwise run` writes beside them. Shared by the API and the
// browser tests; takes about a second.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const bin = new URL("../../bin/stepwise.js", import.meta.url).pathname;

const problems = [
  {
    question: "Ann has 3 apples and buys 4 more. How many apples does she have?",
    answer: "3 + 4 = <<3+4=7>>7\n#### 7",
  },
  { question: "Bo has 9 pens and gives away 2. How many pens are left?", answer: "9 - 2 = <<9-2=7>>7\n#### 7" },
  { question: "A box holds 6 eggs. How many eggs are in 2 boxes?", answer: "2 * 6 = <<2*6=12>>12\n#### 12" },
  {
    question: "Cy has 5 cards and gets 3 more, then doubles them. How many cards?",
    answer: "5 + 3 = <<5+3=8>>8\n8 * 2 = <<8*2=16>>16\n#### 16",
  },
];

export const PAIRS = [
  {
    id: "p1",
    kind: "outcome",
    prompt: `${problems[3].question}\n`,
    chosen: "5 + 3 = <<5+3=8>>8\n8 * 2 = <<8*2=16>>16\n#### 16",
    rejected: "5 + 3 = <<5+3=8>>8\n8 * 3 = <<8*3=24>>24\n#### 24",
  },
  {
    id: "p2",
    kind: "outcome",
    prompt: `${problems[0].question}\n`,
    chosen: problems[0].answer,
    rejected: "3 + 4 = <<3+4=8>>8\n#### 8",
  },
];

export const STEP_PAIR = {
  id: "s1",
  kind: "stepdpo",
  prompt: `${problems[3].question}\n`,
  initial_reason_steps: "5 + 3 = <<5+3=8>>8\n",
  chosen: "8 * 2 = <<8*2=16>>16\n",
  rejected: "8 * 3 = <<8*3=24>>24\n",
  full_chosen: "5 + 3 = <<5+3=8>>8\n8 * 2 = <<8*2=16>>16\n#### 16",
  full_rejected: "5 + 3 = <<5+3=8>>8\n8 * 3 = <<8*3=24>>24\n#### 24",
  answer: "16",
};

export const EVALS: Record<string, unknown> = {
  sft: {
    accuracy: 0.25,
    n: 4,
    ci95: [0.046, 0.699],
    maj_accuracy: 0.5,
    step_error_rate: 0.4,
    by_steps: [
      { steps: 1, n: 3, accuracy: 0.3333 },
      { steps: 2, n: 1, accuracy: 0 },
    ],
    by_level: [
      { level: "easy", n: 2, accuracy: 0.5 },
      { level: "medium", n: 2, accuracy: 0 },
    ],
  },
  dpo: {
    accuracy: 0.75,
    n: 4,
    ci95: [0.301, 0.954],
    by_steps: [
      { steps: 1, n: 3, accuracy: 1 },
      { steps: 2, n: 1, accuracy: 0 },
    ],
  },
};

function cli(cwd: string, ...args: string[]): void {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd });
  if (r.status !== 0) throw new Error(`stepwise ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

/** Writes root/pipe (a pipeline run with seed-1/sft and seed-1/dpo); returns the pipeline's directory. */
export function makePipelineRun(root: string): string {
  const pipe = path.join(root, "pipe");
  const seed = path.join(pipe, "seed-1");
  fs.mkdirSync(path.join(seed, "eval"), { recursive: true });
  fs.mkdirSync(path.join(seed, "pairs"), { recursive: true });
  fs.writeFileSync(path.join(root, "problems.jsonl"), jsonl(problems));
  cli(
    seed,
    "sft",
    "--data",
    path.join(root, "problems.jsonl"),
    "--eval-data",
    path.join(root, "problems.jsonl"),
    "--eval-every",
    "2",
    "--init",
    "tiny",
    "--out",
    "sft",
    "--max-steps",
    "4",
    "--batch-size",
    "1",
    "--lr",
    "0.003",
  );
  fs.writeFileSync(path.join(seed, "pairs", "outcome.jsonl"), jsonl(PAIRS));
  fs.writeFileSync(path.join(seed, "pairs", "stepdpo.jsonl"), jsonl([STEP_PAIR]));
  cli(
    seed,
    "dpo",
    "--model",
    "sft",
    "--pairs",
    path.join("pairs", "outcome.jsonl"),
    "--out",
    "dpo",
    "--max-steps",
    "3",
    "--batch-size",
    "1",
    "--lr",
    "0.001",
    "--beta",
    "0.1",
  );
  for (const [name, e] of Object.entries(EVALS))
    fs.writeFileSync(path.join(seed, "eval", `${name}.json`), JSON.stringify(e));
  fs.mkdirSync(path.join(seed, "step-dpo"));
  fs.writeFileSync(
    path.join(seed, "step-dpo", "SKIPPED.json"),
    JSON.stringify({ reason: "no stepdpo pairs", pairs: "seed-1/pairs/stepdpo.jsonl" }),
  );
  fs.writeFileSync(path.join(pipe, "config.json"), JSON.stringify({ seeds: 1, task: "builtin" }));
  fs.writeFileSync(
    path.join(pipe, "report.json"),
    JSON.stringify({
      variants: [
        { name: "sft", accuracy: 0.25, ci95: [0.046, 0.699], maj_accuracy: 0.5, step_error_rate: 0.4 },
        { name: "dpo", accuracy: 0.75, ci95: [0.301, 0.954], maj_accuracy: null, step_error_rate: null },
      ],
      seeds: [1],
      seconds: 1.5,
      config: { seeds: 1 },
    }),
  );
  return pipe;
}
