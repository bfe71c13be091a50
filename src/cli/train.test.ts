// `stepwise sft` and `stepwise dpo` end to end on a tiny model: outputs, resume, and bad pair files.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

const bin = new URL("../../bin/stepwise.js", import.meta.url).pathname;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-train-cli-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd: root });
}

function writeLines(name: string, rows: unknown[]): string {
  const file = path.join(root, name);
  fs.writeFileSync(file, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return file;
}

const problems = [
  {
    question: "Ann has 3 apples and buys 4 more. How many apples does she have?",
    answer: "3 + 4 = <<3+4=7>>7\n#### 7",
  },
  { question: "Bo has 9 pens and gives away 2. How many pens are left?", answer: "9 - 2 = <<9-2=7>>7\n#### 7" },
  { question: "A box holds 6 eggs. How many eggs are in 2 boxes?", answer: "2 * 6 = <<2*6=12>>12\n#### 12" },
];

test("sft from --init tiny writes a model folder with metrics; dpo trains on it; bad pairs are reported", () => {
  const data = writeLines("sft.jsonl", problems);
  let r = cli(
    "sft",
    "--data",
    data,
    "--init",
    "tiny",
    "--out",
    "sft",
    "--max-steps",
    "2",
    "--batch-size",
    "2",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.steps, 2);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "train_config.json"]) {
    assert.ok(fs.existsSync(path.join(root, "sft", f)), `sft/${f} exists`);
  }
  const metrics = fs
    .readFileSync(path.join(root, "sft", "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    metrics.map((m) => m.step),
    [1, 2],
  );
  assert.ok(["loss", "grad_norm", "learning_rate", "num_tokens"].every((k) => typeof metrics[0][k] === "number"));

  const good = problems.map((p) => ({
    prompt: `${p.question}\n`,
    chosen: p.answer,
    rejected: p.answer.replace(/\d+$/, "99"),
  }));
  const pairs = writeLines("pairs.jsonl", good);
  r = cli(
    "dpo",
    "--model",
    "sft",
    "--pairs",
    pairs,
    "--out",
    "dpo",
    "--max-steps",
    "1",
    "--batch-size",
    "3",
    "--loss",
    "sigmoid,sft",
    "--loss-weights",
    "1,0.2",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  const first = JSON.parse(fs.readFileSync(path.join(root, "dpo", "metrics.jsonl"), "utf8").split("\n")[0]);
  for (const k of [
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
    "grad_norm",
    "learning_rate",
    "num_tokens",
  ])
    assert.equal(typeof first[k], "number", k);
  assert.equal(first["rewards/chosen"], 0, "step 1 starts at the reference");

  const bad = writeLines("bad.jsonl", [good[0], good[1], { prompt: "x", chosen: "y" }, good[2]]);
  r = cli("dpo", "--model", "sft", "--pairs", bad, "--out", "dpo-bad", "--max-steps", "1");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.jsonl:3: missing or non-string field rejected/);
  r = cli("dpo", "--model", "sft", "--pairs", bad, "--out", "dpo-bad", "--max-steps", "1", "--skip-bad", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).skipped, 1);
  assert.match(r.stderr, /skipped 1 lines \(1 missing or non-string field rejected\)/);

  const empty = writeLines("empty.jsonl", [{ ...good[0], chosen: "  " }]);
  r = cli("dpo", "--model", "sft", "--pairs", empty, "--out", "dpo-empty");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /empty\.jsonl:1: empty chosen completion/);

  r = cli("dpo", "--model", "sft", "--pairs", pairs, "--out", "dpo-long", "--max-length", "20");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /pairs\.jsonl:1: longer than --max-length 20 tokens/);

  r = cli("dpo", "--model", "sft", "--pairs", pairs, "--out", "dpo-x", "--loss", "kto");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown loss "kto"/);
});

test("dpo --lora trains adapters only, with the frozen base (adapters off) as the reference; --merge saves a plain folder", () => {
  const data = writeLines("sft2.jsonl", problems);
  let r = cli("sft", "--data", data, "--init", "tiny", "--out", "base", "--max-steps", "1", "--batch-size", "3");
  assert.equal(r.status, 0, r.stderr);
  const good = problems.map((p) => ({
    prompt: `${p.question}\n`,
    chosen: p.answer,
    rejected: p.answer.replace(/\d+$/, "99"),
  }));
  const pairs = writeLines("pairs2.jsonl", good);
  r = cli(
    "dpo",
    "--model",
    "base",
    "--pairs",
    pairs,
    "--out",
    "lora",
    "--lora",
    "4",
    "--lora-dropout",
    "0.1",
    "--epochs",
    "2",
    "--batch-size",
    "3",
    "--lr",
    "1e-2",
    "--save-every",
    "1",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  const m = fs
    .readFileSync(path.join(root, "lora", "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(m[0]["rewards/chosen"], 0, "B starts at zero: the policy equals its reference");
  assert.notEqual(m[1]["rewards/margins"], 0, "the adapters moved");
  for (const f of ["adapter_config.json", "adapter_model.safetensors", "config.json", "model.safetensors"]) {
    assert.ok(fs.existsSync(path.join(root, "lora", f)), `lora/${f}`);
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(root, "lora", "adapter_config.json"), "utf8"));
  assert.equal(cfg.r, 4);
  assert.deepEqual(
    fs.readFileSync(path.join(root, "lora", "model.safetensors")),
    fs.readFileSync(path.join(root, "base", "model.safetensors")),
    "the base weights are unchanged",
  );
  r = cli(
    "dpo",
    "--model",
    "base",
    "--pairs",
    pairs,
    "--out",
    "merged",
    "--lora",
    "4",
    "--max-steps",
    "1",
    "--batch-size",
    "3",
    "--merge",
  );
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!fs.existsSync(path.join(root, "merged", "adapter_config.json")), "merged: no adapter files");
  r = cli("score", "--model", "lora", "--text", "2 + 3 = 5", "--json");
  assert.equal(r.status, 0, r.stderr);
});

test("sft and dpo read TRL's conversational formats from parquet (issue #17): a row at fault is named", () => {
  const fix = new URL("../../src/data/fixtures/", import.meta.url).pathname;
  let r = cli(
    "sft",
    "--data",
    path.join(fix, "sft-messages.snappy.parquet"),
    "--init",
    "tiny",
    "--out",
    "sft-pq",
    "--max-steps",
    "1",
    "--batch-size",
    "3",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).examples, 3);
  r = cli(
    "dpo",
    "--model",
    "sft-pq",
    "--pairs",
    path.join(fix, "pairs-implicit.zstd.parquet"),
    "--out",
    "dpo-pq",
    "--max-steps",
    "1",
    "--batch-size",
    "2",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).steps, 1);
  r = cli(
    "dpo",
    "--model",
    "sft-pq",
    "--pairs",
    path.join(fix, "pairs-standard.gzip.parquet"),
    "--out",
    "dpo-pq-bad",
    "--max-steps",
    "1",
  );
  assert.equal(r.status, 2);
  assert.match(r.stderr, /pairs-standard\.gzip\.parquet row 2: missing or non-string field rejected/);
});
