// Ctrl-C and SIGTERM during training (issue #15, item 1): the run stops within a step or two, the step it stopped
// at is checkpointed, the message says how to resume, the exit code is 128 + the signal; a resume continues.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { BIN } from "./testkit.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-interrupt-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

const problems = [
  {
    question: "Ann has 3 apples and buys 4 more. How many apples does she have?",
    answer: "3 + 4 = <<3+4=7>>7\n#### 7",
  },
  { question: "Bo has 9 pens and gives away 2. How many pens are left?", answer: "9 - 2 = <<9-2=7>>7\n#### 7" },
];

const metricSteps = (dir: string): number[] =>
  fs.existsSync(path.join(dir, "metrics.jsonl"))
    ? fs
        .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
        .split("\n")
        .filter((l) => l.endsWith("}"))
        .map((l) => JSON.parse(l).step)
    : [];

/** Starts the CLI, sends `signal` once metrics.jsonl holds more than `after` steps, and waits for the exit. */
async function interruptAfter(args: string[], out: string, after: number, signal: NodeJS.Signals) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (metricSteps(out).length <= after && Date.now() < deadline && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill(signal);
  // Without a working handler the run would go on for 100,000 epochs: the bound turns that into a failure.
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await exited;
  clearTimeout(timer);
  return { code, stderr };
}

test("SIGINT stops sft after the current step with a checkpoint of it; --resume continues; SIGTERM exits 143", async () => {
  fs.writeFileSync(path.join(root, "d.jsonl"), problems.map((p) => JSON.stringify(p)).join("\n") + "\n");
  const out = path.join(root, "int");
  const args = [
    "sft",
    "--data",
    "d.jsonl",
    "--init",
    "tiny",
    "--out",
    "int",
    "--epochs",
    "100000",
    "--batch-size",
    "2",
    "--save-every",
    "1000",
  ];
  const first = await interruptAfter(args, out, 2, "SIGINT");
  assert.equal(first.code, 130, first.stderr);
  const m = /interrupted by SIGINT: sft stopped after step (\d+) of 100000; checkpoint (\S+) holds it/.exec(
    first.stderr,
  );
  assert.ok(m, first.stderr);
  const step = Number(m[1]);
  assert.match(first.stderr, /to resume: stepwise sft --data d\.jsonl .* --save-every 1000 --resume\n/);
  assert.equal(path.basename(m[2]), `step-${String(step).padStart(7, "0")}`);
  assert.ok(fs.existsSync(path.join(root, m[2], "weights.safetensors")));
  assert.equal(metricSteps(out).at(-1), step, "the checkpoint holds the last step logged");
  assert.ok(!fs.existsSync(path.join(out, "model.safetensors")), "an interrupted run writes no final model");

  const second = await interruptAfter([...args, "--resume"], out, step + 2, "SIGTERM");
  assert.equal(second.code, 143, second.stderr);
  const later = Number(/stopped after step (\d+) of 100000/.exec(second.stderr)?.[1]);
  assert.ok(later > step + 1, second.stderr);
  assert.deepEqual(
    metricSteps(out),
    Array.from({ length: later }, (_, i) => i + 1),
    "metrics run on from the checkpoint",
  );
});

test("sample --n 1e9 streams to disk in bounded memory (a 100 MB heap) and stops on SIGINT with what it wrote", async () => {
  const { microModelDir } = await import("./testkit.js");
  const model = microModelDir(root, "micro", 1);
  fs.writeFileSync(
    path.join(root, "p.jsonl"),
    problems.map((p, i) => JSON.stringify({ id: `p${i}`, ...p })).join("\n") + "\n",
  );
  const out = path.join(root, "big.jsonl");
  const child = spawn(
    process.execPath,
    [
      "--max-old-space-size=100",
      BIN,
      "sample",
      "--model",
      model,
      "--problems",
      "p.jsonl",
      "--n",
      "1000000000",
      "--max-tokens",
      "2",
      "--batch-size",
      "4",
      "--out",
      "big.jsonl",
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = () => (fs.existsSync(out) ? fs.readFileSync(out, "utf8").split("\n").length - 1 : 0);
  const deadline = Date.now() + 60_000;
  while (lines() < 8 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await exited;
  clearTimeout(timer);
  assert.equal(code, 130, stderr);
  const m = /interrupted by SIGINT: (\d+) of 2000000000 samples are in big\.jsonl/.exec(stderr);
  assert.ok(m, stderr);
  assert.equal(Number(m[1]), lines(), "every sample it counts is on disk");
  assert.match(stderr, /to resume: stepwise sample .* --out big\.jsonl\n/);
});
