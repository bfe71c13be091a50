// `stepwise run` end to end on a micro config: every stage runs, an interrupted run resumes without redoing
// finished stages, a changed config reruns only what it changes, and the report has the contract's fields.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { resolveConfig } from "../run/config.js";
import { Pipeline } from "../run/pipeline.js";
import { writeReport } from "../run/write-report.js";
import { main } from "./main.js";
import { MICRO_CONFIG, microModelDir } from "./testkit.js";

const MICRO = {
  threads: 1,
  task: { train: 48, test: 6 },
  model: { vocab_size: 400 },
  sft: { epochs: 1, batch_size: 16 },
  eval: { max_tokens: 40 },
  sample: { problems: 6, n: 2, max_tokens: 40 },
  pairs: { scdpo_n: 2, stepdpo_rollouts: 2 },
  dpo: { batch_size: 4 },
};

function quietLog(lines: string[]) {
  return (m: string) => lines.push(m);
}

test("run: all stages, resume after an interruption, cache, config change, report", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-e2e-"));
  const config = resolveConfig(MICRO);
  const origErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write; // the stages' progress bars
  try {
    // interrupted after 4 stages (data, split, sft, eval-sft)
    const first: string[] = [];
    await new Pipeline(dir, config, { log: quietLog(first), stopAfter: 4 }).run();
    assert.ok(
      first.some((l) => /stopped before/.test(l)),
      first.join("\n"),
    );
    assert.ok(fs.existsSync(path.join(dir, "seed-1", "sft", "model.safetensors")));
    assert.ok(!fs.existsSync(path.join(dir, "seed-1", "samples.jsonl")));

    // the same run again: finished stages are skipped, the rest runs
    const second: string[] = [];
    const r = await new Pipeline(dir, config, { log: quietLog(second) }).run();
    for (const s of ["data", "split", "seed-1/sft", "seed-1/eval-sft"])
      assert.ok(second.includes(`stepwise run: ${s}: done (cached)`), s);
    assert.ok(second.includes("stepwise run: seed-1/sample"));
    assert.equal(r.evals[0].name, "sft");
    const trained = r.evals.map((e) => e.name);
    const skipped = r.skipped.map((s) => s.name);
    assert.deepEqual([...trained.slice(1), ...skipped].sort(), ["dpo", "scdpo", "sft-more", "step-dpo"]);
    for (const name of trained.slice(1)) {
      assert.ok(fs.existsSync(path.join(dir, "seed-1", name, "metrics.jsonl")), name);
      assert.ok(fs.existsSync(path.join(dir, "seed-1", "eval", `${name}.json`)), name);
    }

    // a third run does nothing; a changed beta reruns the DPO variants and their evals only
    const third: string[] = [];
    await new Pipeline(dir, config, { log: quietLog(third) }).run();
    assert.ok(
      third.every((l) => /done \(cached\)/.test(l)),
      third.join("\n"),
    );
    const changed = resolveConfig({ ...MICRO, dpo: { ...MICRO.dpo, beta: 0.3 } });
    const fourth: string[] = [];
    await new Pipeline(dir, changed, { log: quietLog(fourth) }).run();
    const ran = fourth.filter((l) => !/cached|accuracy|skipped/.test(l)).map((l) => l.replace("stepwise run: ", ""));
    assert.deepEqual(
      ran,
      [
        "seed-1/dpo",
        "seed-1/dpo/eval",
        "seed-1/scdpo",
        "seed-1/scdpo/eval",
        "seed-1/step-dpo",
        "seed-1/step-dpo/eval",
        "seed-1/sft-more",
        "seed-1/sft-more/eval",
      ].filter((s) => !skipped.some((k) => s.startsWith(`seed-1/${k}/`))),
    );

    const report = await writeReport(dir, changed, r.evals, r.skipped);
    const json = JSON.parse(fs.readFileSync(path.join(dir, "report.json"), "utf8"));
    assert.deepEqual(
      Object.keys(json.variants[0])
        .filter((k) => ["name", "accuracy", "ci95", "maj_accuracy", "step_error_rate"].includes(k))
        .sort(),
      ["accuracy", "ci95", "maj_accuracy", "name", "step_error_rate"],
    );
    assert.equal(json.seeds, 1);
    assert.ok(json.seconds > 0);
    assert.equal(json.config.dpo.beta, 0.3);
    assert.equal(report.variants[0].name, "sft");
    // the default task mixes easy and medium problems: accuracy by level, the 6 test problems split 3 + 3
    assert.deepEqual(
      json.variants[0].by_level.map((l: { level: string; n: number }) => [l.level, l.n]),
      [
        ["easy", 3],
        ["medium", 3],
      ],
    );
    const html = fs.readFileSync(path.join(dir, "report.html"), "utf8");
    assert.match(html, /<table id="comparison">/);
    assert.match(html, /<table id="by-level">/);
    assert.match(html, /SFT loss/);
  } finally {
    process.stderr.write = origErr;
  }
});

test("run: two seeds and two rounds: round 2 samples with, and is referenced to, the round-1 model", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-rounds-"));
  const config = resolveConfig({ ...MICRO, seeds: 2, rounds: 2, variants: [{ name: "sc", pairs: ["scdpo"] }] });
  const origErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const r = await new Pipeline(dir, config, { log: () => {} }).run();
    assert.deepEqual(
      r.evals.map((e) => `${e.name}/${e.seed}`),
      ["sft/1", "sc/1", "sc-round2/1", "sft/2", "sc/2", "sc-round2/2"],
    );
    const round2 = path.join(dir, "seed-1", "round-2", "sc");
    const samples = JSON.parse(fs.readFileSync(path.join(round2, "sc-samples.jsonl.config.json"), "utf8"));
    assert.equal(
      path.resolve(samples.model ?? samples.options?.model ?? ""),
      path.join(dir, "seed-1", "sc"),
      JSON.stringify(samples),
    );
    const train = JSON.parse(fs.readFileSync(path.join(round2, "sc", "train_config.json"), "utf8"));
    assert.equal(path.resolve(train.model), path.join(dir, "seed-1", "sc"));
    const report = await writeReport(dir, config, r.evals, r.skipped);
    assert.equal(report.seeds, 2);
    assert.deepEqual(
      report.variants.map((v) => v.name),
      ["sft", "sc", "sc-round2"],
    );
    assert.equal(report.variants[0].per_seed.length, 2);
    assert.notEqual(report.variants[0].spread, undefined);
  } finally {
    process.stderr.write = origErr;
  }
});

test("run: --print-default-config, bad config keys and bad flags exit 2 with the key named", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-cli-"));
  const out: string[] = [];
  const origLog = console.log;
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = console.error;
  process.stdout.write = ((s: string) => {
    out.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    assert.equal(await main(["run", "--print-default-config"]), 0);
    assert.match(out.join(""), /variants:/);
    fs.writeFileSync(path.join(dir, "bad.yaml"), "sft:\n  lr: fast\n");
    out.length = 0;
    assert.equal(await main(["run", path.join(dir, "bad.yaml"), "--out", path.join(dir, "r")]), 2);
    assert.match(out.join("\n"), /sft\.lr: expected a number/);
    assert.match(out.join("\n"), /bad\.yaml/);
    out.length = 0;
    assert.equal(await main(["run", "--seeds", "0", "--out", path.join(dir, "r")]), 2);
    assert.match(out.join("\n"), /--seeds must be an integer >= 1/);
  } finally {
    console.log = origLog;
    console.error = origErr;
    process.stdout.write = origOut;
  }
});

test("run: a variant that had nothing to train on is skipped, the report is written, and run exits 3", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-skipped-"));
  // one sample per problem: no problem has both a right and a wrong sample, so there are no outcome pairs
  const config = { ...MICRO, sample: { ...MICRO.sample, n: 1 }, variants: [{ name: "dpo", pairs: ["outcome"] }] };
  fs.writeFileSync(path.join(dir, "c.json"), JSON.stringify(config));
  const err: string[] = [];
  const origErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((m: string) => err.push(String(m)) > 0) as typeof process.stderr.write;
  try {
    assert.equal(await main(["run", path.join(dir, "c.json"), "--out", path.join(dir, "r")]), 3);
  } finally {
    process.stderr.write = origErr;
  }
  assert.match(err.join(""), /1 variant run\(s\) skipped: dpo \(seed 1, round 1: no outcome pairs\)/);
  const report = JSON.parse(fs.readFileSync(path.join(dir, "r", "report.json"), "utf8"));
  assert.ok(JSON.stringify(report).includes("no outcome pairs"), "the report lists the skipped variant");
});

test("run: model.pretrained starts SFT from a model folder (LoRA, merged) and every stage uses model.template", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-pretrained-"));
  const base = microModelDir(dir, "base", 5);
  const config = resolveConfig({
    ...MICRO,
    model: { pretrained: base, template: "chat" },
    sft: { ...MICRO.sft, lora: 2, lr: 1e-2, max_length: 2048 }, // the built-in tokenizer spells characters
    variants: [{ name: "step", pairs: ["stepdpo"] }],
  });
  const origErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const r = await new Pipeline(dir, config, { log: () => {} }).run();
    // a random micro model rarely solves a problem, so its variant may have no pairs; the stages still ran
    assert.deepEqual(
      [...r.evals.map((e) => e.name), ...r.skipped.map((s) => `${s.name}: ${s.reason}`)].slice(0, 2)[0],
      "sft",
    );
    assert.equal(r.evals.length + r.skipped.length, 2, JSON.stringify(r.skipped));
    const sft = path.join(dir, "seed-1", "sft");
    const train = JSON.parse(fs.readFileSync(path.join(sft, "train_config.json"), "utf8"));
    assert.equal(path.resolve(train.model), base);
    assert.equal(Number(train.lora.r), 2);
    assert.equal(train.template, "chat");
    // merged: a plain folder with the base's shape and no adapter files; the weights moved
    assert.ok(!fs.existsSync(path.join(sft, "adapter_config.json")));
    assert.equal(
      JSON.parse(fs.readFileSync(path.join(sft, "config.json"), "utf8")).hidden_size,
      MICRO_CONFIG.hidden_size,
    );
    assert.notDeepEqual(
      fs.readFileSync(path.join(sft, "model.safetensors")),
      fs.readFileSync(path.join(base, "model.safetensors")),
    );
    const samples = JSON.parse(fs.readFileSync(path.join(dir, "seed-1", "samples.jsonl.config.json"), "utf8"));
    assert.equal(samples.template ?? samples.options?.template, "chat", JSON.stringify(samples));
    assert.ok(fs.existsSync(path.join(dir, "seed-1", "pairs", "stepdpo.jsonl")));
    if (r.evals.length === 2) {
      const dpo = JSON.parse(fs.readFileSync(path.join(dir, "seed-1", "step", "train_config.json"), "utf8"));
      assert.equal(dpo.template, "chat");
    } else assert.equal(r.skipped[0].reason, "no stepdpo pairs");
  } finally {
    process.stderr.write = origErr;
  }
});

test("run: model.template chat without model.pretrained, and a bad sft.lora, are config errors", () => {
  assert.throws(() => resolveConfig({ model: { template: "chat" } }), /model\.template chat needs model\.pretrained/);
  assert.throws(() => resolveConfig({ model: { template: "fancy" } }), /model\.template/);
  assert.throws(() => resolveConfig({ sft: { lora: 0 } }), /sft\.lora: expected an integer >= 1/);
  assert.throws(() => resolveConfig({ sft: { lora: 1.5 } }), /sft\.lora/);
  assert.equal(resolveConfig({ model: { pretrained: "owner/name" }, sft: { lora: 8 } }).sft.lora, 8);
});

test("run: task.source gsm8k runs the recipe on GSM8K-format files; bad file knobs are config errors", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-gsm8k-"));
  // GSM8K's own format ({question, answer} with <<expr=value>> steps and "#### n"), here from the built-in generator
  const { taskConfig, taskProblems } = await import("../data/task-stage.js");
  const write = (name: string, split: string, n: number) => {
    const file = path.join(dir, name);
    const rows = [...taskProblems(taskConfig({ preset: "easy", n, seed: 5, split }))].map((p) => ({
      question: p.question,
      answer: p.answer,
    }));
    fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    return { file, rows };
  };
  const train = write("gsm8k-train.jsonl", "train", 60);
  const test = write("gsm8k-test.jsonl", "test", 10);
  const base = {
    ...MICRO,
    task: { source: "gsm8k", train_file: train.file, test_file: test.file, train: 48, test: 6 },
  };
  const config = resolveConfig({ ...base, variants: [{ name: "dpo", pairs: ["outcome"] }] });
  const origErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const run = path.join(dir, "run");
    const r = await new Pipeline(run, config, { log: () => {} }).run();
    const rows = (f: string) =>
      fs
        .readFileSync(path.join(run, f), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    // the first task.train / task.test problems of the files, in order, with ids and final answers
    assert.deepEqual(
      rows("data/train.jsonl").map((p) => p.question),
      train.rows.slice(0, 48).map((p) => p.question),
    );
    assert.equal(rows("data/test.jsonl").length, 6);
    assert.ok(rows("data/test.jsonl").every((p) => typeof p.id === "string" && typeof p.final === "string"));
    assert.ok(r.evals.some((e) => e.name === "sft"));
    assert.equal(rows("seed-1/verified.jsonl").length, 12); // sample.problems 6 x sample.n 2
  } finally {
    process.stderr.write = origErr;
  }
  const bad = (raw: unknown, re: RegExp) =>
    assert.throws(
      () => resolveConfig(raw),
      (e: unknown) => re.test((e as Error).message),
      String(re),
    );
  bad({ task: { source: "gsm8k", train_file: train.file } }, /task\.test_file: task\.source gsm8k needs/);
  bad({ task: { source: "gsm8k", train_file: train.file, test_file: path.join(dir, "nope.jsonl") } }, /no such file/);
  bad({ task: { source: "math" } }, /task\.source: expected builtin or gsm8k/);
  bad({ task: { train_file: train.file } }, /are for task\.source gsm8k/);
  const short = resolveConfig({ ...base, task: { ...base.task, test: 11 } });
  await assert.rejects(
    new Pipeline(path.join(dir, "short"), short, { log: () => {} }).run(),
    /task\.test is 11, but the file has 10 problems/,
  );
});
