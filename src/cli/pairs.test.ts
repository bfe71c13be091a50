// `stepwise pairs` through the real binary: the JSON summary, both formats, rollouts with a local model, and clear
// errors (exit code 2) on bad flags and on samples that were never verified.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { saveModel } from "../model/hub.js";
import { initModel } from "../model/presets.js";
import { verifyMathRecord } from "../verify/index.js";

const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-pairs-cli-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const Q = "Ann has 3 pens and buys 4. She gives 2 away. How many now?";
const REF = "3 + 4 = <<3+4=7>>7\n7 - 2 = <<7-2=5>>5\n#### 5";
const SAMPLES = [
  REF,
  "3 + 4 = <<3+4=7>>7\n7 - 2 = <<7-2=6>>6\n#### 6", // calculator: step 1
  "3 + 4 = <<3+4=7>>7\n7 + 2 = <<7+2=9>>9\n#### 9", // only the answer is wrong
];

function stepwise(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "pairs", ...args], { encoding: "utf8", cwd: dir, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function write(file: string, records: object[]): void {
  fs.writeFileSync(path.join(dir, file), records.map((r) => JSON.stringify(r)).join("\n") + "\n");
}

const verified = SAMPLES.map((completion, sample) =>
  verifyMathRecord({ id: "p", sample, question: Q, answer: REF, completion, finish_reason: "eos" }, "gsm8k"),
);

test("stepwise pairs --json: counts, skips and both formats", () => {
  write("v.jsonl", verified);
  const r = stepwise("--kind", "outcome", "--in", "v.jsonl", "--out", "o.jsonl", "--json");
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), {
    kind: "outcome",
    format: "trl",
    records: 3,
    problems: 1,
    pairs: 2,
    problems_with_pairs: 1,
    pairs_per_problem: { mean: 2, max: 2, histogram: { 2: 1 } },
    skipped: {},
    out: "o.jsonl",
  });
  const rows = fs
    .readFileSync(path.join(dir, "o.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(rows[0], { prompt: `${Q}\n`, chosen: REF, rejected: SAMPLES[1], id: "p", kind: "outcome" });

  const s = stepwise("--kind", "stepdpo", "--format", "stepdpo", "--in", "v.jsonl", "--out", "s.jsonl", "--json");
  assert.equal(s.code, 0, s.err);
  const summary = JSON.parse(s.out);
  assert.equal(summary.pairs, 1);
  assert.deepEqual(summary.located, { calculator: 1, rollouts: 0 });
  const [pair] = fs
    .readFileSync(path.join(dir, "s.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(pair, {
    prompt: Q,
    initial_reason_steps: "3 + 4 = <<3+4=7>>7\n",
    chosen: "7 - 2 = <<7-2=5>>5\n",
    rejected: "7 - 2 = <<7-2=6>>6\n",
    full_chosen: REF,
    full_rejected: SAMPLES[1],
    answer: "5",
    id: "p",
    kind: "stepdpo",
  });
});

test("stepwise pairs --kind stepdpo --model: rollouts locate the step the calculator cannot", () => {
  const model = path.join(dir, "tiny");
  const { model: m, tokenizer } = initModel("tiny", { seed: 2 });
  saveModel(m, model);
  tokenizer!.save(model);
  m.dispose();
  write("v.jsonl", verified);
  const r = stepwise(
    "--kind",
    "stepdpo",
    "--in",
    "v.jsonl",
    "--out",
    "r.jsonl",
    "--model",
    model,
    "--rollouts",
    "2",
    "--max-tokens",
    "24",
    "--json",
  );
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  // A random model's rollouts reach nothing: the logic error stays unlocated, and says why.
  assert.deepEqual(s.located, { calculator: 1, rollouts: 0 });
  assert.equal(s.skipped["incorrect samples from whose question no rollout reaches the answer"], 1);
  assert.equal(s.pairs, 1);
});

test("stepwise pairs: bad flags and unverified input exit 2 with a clear message", () => {
  write("raw.jsonl", [{ id: "p", question: Q, answer: REF, completion: REF }]);
  const cases: [string[], RegExp][] = [
    [["--in", "v.jsonl", "--out", "x.jsonl"], /--kind outcome\|scdpo\|stepdpo is required/],
    [["--kind", "best", "--in", "v.jsonl", "--out", "x.jsonl"], /--kind must be one of outcome, scdpo, stepdpo/],
    [
      ["--kind", "outcome", "--format", "dpo", "--in", "v.jsonl", "--out", "x.jsonl"],
      /--format must be one of trl, stepdpo/,
    ],
    [
      ["--kind", "outcome", "--in", "raw.jsonl", "--out", "x.jsonl"],
      /raw\.jsonl:1: no "correct" field[\s\S]*stepwise verify/,
    ],
    [["--kind", "outcome", "--in", "v.jsonl", "--out", "x.jsonl", "--template", "chat"], /--template chat needs/],
    [["--kind", "outcome", "--in", "missing.jsonl", "--out", "x.jsonl"], /missing\.jsonl: cannot read/],
  ];
  for (const [args, msg] of cases) {
    const r = stepwise(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, msg);
  }
  assert.ok(!fs.existsSync(path.join(dir, "x.jsonl")));
  assert.match(stepwise("--help").out, /usage: stepwise pairs/);
});
