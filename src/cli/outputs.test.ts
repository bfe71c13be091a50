// Output folders and files (issue #15, item 2): another run's outputs are refused unless --resume or --overwrite,
// one writer per output (a lock naming the holder's pid; a stale one is taken over), --out mistakes are clear
// errors before any work, and a damaged newest checkpoint makes --resume fall back to the newest intact one.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { BIN, microModelDir } from "./testkit.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-outputs-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: root, timeout: 120_000 });
const problems = [
  {
    id: "a",
    question: "Ann has 3 apples and buys 4 more. How many apples does she have?",
    answer: "3 + 4 = <<3+4=7>>7\n#### 7",
  },
  {
    id: "b",
    question: "Bo has 9 pens and gives away 2. How many pens are left?",
    answer: "9 - 2 = <<9-2=7>>7\n#### 7",
  },
];
fs.writeFileSync(path.join(root, "d.jsonl"), problems.map((p) => JSON.stringify(p)).join("\n") + "\n");
const sft = (out: string, ...extra: string[]) =>
  cli(
    "sft",
    "--data",
    "d.jsonl",
    "--init",
    "tiny",
    "--tokenizer",
    "chars",
    "--out",
    out,
    "--batch-size",
    "1",
    ...extra,
  );
const steps = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).step);

test("a folder holding an earlier run is refused without --resume or --overwrite; --overwrite replaces it", () => {
  let r = sft("run1", "--max-steps", "2", "--epochs", "2", "--save-every", "1");
  assert.equal(r.status, 0, r.stderr);
  fs.renameSync(path.join(root, "run1/checkpoints/step-0000002"), path.join(root, "run1/checkpoints/step-0000100"));
  r = sft("run1", "--max-steps", "1");
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /--out run1 holds the outputs of an earlier run \(train_config\.json, metrics\.jsonl, checkpoints, model\.safetensors, trainer_state\.json\)/,
  );
  assert.match(r.stderr, /--resume continues that run, --overwrite replaces it/);
  assert.deepEqual(steps(path.join(root, "run1/metrics.jsonl")), [1, 2], "the earlier run's metrics are untouched");
  r = sft("run1", "--max-steps", "1", "--overwrite", "--resume");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /give one/);
  r = sft("run1", "--max-steps", "1", "--overwrite", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    fs.readdirSync(path.join(root, "run1/checkpoints")),
    ["step-0000001"],
    "the old run's checkpoints are gone, the new one kept",
  );
  assert.deepEqual(steps(path.join(root, "run1/metrics.jsonl")), [1]);
  assert.ok(!fs.existsSync(path.join(root, "run1/stepwise.lock")), "the lock is released");
});

test("one writer per output: a live holder's lock is refused naming its pid; a dead holder's is taken over", () => {
  const model = microModelDir(root, "micro", 3);
  const args = [
    "sample",
    "--model",
    model,
    "--problems",
    "d.jsonl",
    "--n",
    "2",
    "--max-tokens",
    "3",
    "--out",
    "s.jsonl",
  ];
  // This test's own process is a live process other than the CLI's.
  fs.writeFileSync(
    path.join(root, "s.jsonl.lock"),
    JSON.stringify({ pid: process.pid, host: os.hostname(), command: "stepwise sample", since: "then" }),
  );
  let r = cli(...args);
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`s\\.jsonl is being written by another process: pid ${process.pid} \\(stepwise sample, since then\\)`),
  );
  assert.ok(!fs.existsSync(path.join(root, "s.jsonl")), "nothing written");
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  fs.writeFileSync(
    path.join(root, "s.jsonl.lock"),
    JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), command: "stepwise sample", since: "then" }),
  );
  r = cli(...args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`a stale lock of pid ${dead.stdout} \\(no longer running\\) was taken over`));
  assert.equal(fs.readFileSync(path.join(root, "s.jsonl"), "utf8").trim().split("\n").length, 4);
  assert.ok(!fs.existsSync(path.join(root, "s.jsonl.lock")));
});

test("--out mistakes are clear errors before any work: missing folder, a folder for a file, a file for a folder, unwritable", () => {
  fs.writeFileSync(path.join(root, "afile"), "x");
  fs.mkdirSync(path.join(root, "adir"), { recursive: true });
  fs.writeFileSync(
    path.join(root, "v.jsonl"),
    JSON.stringify({ id: "a", sample: 0, completion: "#### 7", answer: "#### 7" }) + "\n",
  );
  const cases: [string[], RegExp][] = [
    [
      ["verify", "--task", "gsm8k", "--in", "v.jsonl", "--out", "nowhere/v.jsonl"],
      /--out nowhere\/v\.jsonl: the folder .*nowhere does not exist/,
    ],
    [
      ["pairs", "--kind", "outcome", "--in", "v.jsonl", "--out", "nowhere/p.jsonl"],
      /the folder .*nowhere does not exist/,
    ],
    [["export", "gguf", "--model", "micro", "--out", "nowhere/m.gguf"], /the folder .*nowhere does not exist/],
    [
      ["verify", "--task", "gsm8k", "--in", "v.jsonl", "--out", "adir"],
      /--out adir is a folder, but a file is expected/,
    ],
    [["verify", "--task", "gsm8k", "--in", "v.jsonl", "--out", "afile/v.jsonl"], /afile is a file, not a folder/],
    [
      ["sft", "--data", "d.jsonl", "--init", "tiny", "--out", "afile"],
      /--out afile is a file, but a folder is expected/,
    ],
    [
      ["dpo", "--model", "micro", "--pairs", "v.jsonl", "--out", "micro"],
      /--out micro is also --model: the input would be overwritten/,
    ],
  ];
  for (const [args, want] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
  let sysWritable = true;
  try {
    fs.writeFileSync("/sys/.stepwise-probe", "");
    fs.rmSync("/sys/.stepwise-probe");
  } catch {
    sysWritable = false;
  }
  if (!sysWritable) {
    // /sys refuses new files even to root: an unwritable place on any Linux we run on
    const r = cli("verify", "--task", "gsm8k", "--in", "v.jsonl", "--out", "/sys/v.jsonl");
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--out \/sys\/v\.jsonl: cannot write in \/sys \(E[A-Z]+\)/);
  }
});

test("a truncated newest checkpoint: --resume falls back to the newest intact one, says so, and finishes", () => {
  const args = ["--max-steps", "4", "--epochs", "4", "--save-every", "1", "--keep-checkpoints", "3"];
  let r = sft("trunc", ...args);
  assert.equal(r.status, 0, r.stderr);
  const newest = path.join(root, "trunc/checkpoints/step-0000004");
  // As an interrupted run would have it: the newest checkpoint cut short, the metrics beyond it.
  fs.rmSync(path.join(root, "trunc/model.safetensors"));
  const w = path.join(newest, "weights.safetensors");
  fs.truncateSync(w, Math.floor(fs.statSync(w).size / 2));
  r = sft("trunc", ...args, "--resume", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /checkpoint .*step-0000004 is damaged \(.*run past the end.*\); moved aside to .*step-0000004\.damaged/,
  );
  assert.match(r.stderr, /resuming from the newest intact checkpoint instead: .*step-0000003 \(step 3\)/);
  assert.equal(JSON.parse(r.stdout).resumed_from, 3);
  assert.deepEqual(steps(path.join(root, "trunc/metrics.jsonl")), [1, 2, 3, 4]);
  assert.ok(fs.existsSync(path.join(root, "trunc/model.safetensors")));
});
