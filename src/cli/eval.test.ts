// `stepwise eval` on a tiny random model: the --json fields, --limit, --out records (the same greedy text that
// `stepwise sample --temperature 0` writes), the table, and clear errors for bad input.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { saveModel } from "../model/hub.js";
import { initModel } from "../model/presets.js";

const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-eval-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const PROBLEMS = [
  { id: "a", question: "Ann has 3 pens and buys 4. How many now?", answer: "3 + 4 = <<3+4=7>>7\n#### 7" },
  {
    id: "b",
    question: "Bo has 6 cups and breaks 1, then buys 2. How many?",
    answer: "6 - 1 = <<6-1=5>>5\n5 + 2 = <<5+2=7>>7\n#### 7",
  },
  { id: "c", question: "Cy reads 2 books a day for 3 days. How many?", answer: "#### 6", steps: 1 },
];

function write(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, "eval", ...args], { encoding: "utf8", timeout: 60_000 });
}

function tinyModel(): string {
  const m = path.join(dir, "tiny");
  const { model, tokenizer } = initModel("tiny", { seed: 5 });
  saveModel(model, m);
  tokenizer!.save(m);
  model.dispose();
  return m;
}

test("stepwise eval on a tiny model: --json fields, --limit, --out records, the table", () => {
  const model = tinyModel();
  const problems = write("p.jsonl", PROBLEMS.map((p) => JSON.stringify(p)).join("\n") + "\n");
  const out = path.join(dir, "sub", "greedy.jsonl");
  const r = run([
    "--model",
    model,
    "--problems",
    problems,
    "--maj",
    "2",
    "--pass-k",
    "1,2",
    "--max-tokens",
    "12",
    "--seed",
    "1",
    "--out",
    out,
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(
    Object.keys(j)
      .filter((k) => k !== "step_error_rate")
      .sort(),
    ["accuracy", "by_steps", "ci95", "correct", "maj_accuracy", "n", "pass_at_k", "samples", "seconds", "undecided"],
  );
  assert.equal(j.n, 3);
  assert.equal(j.accuracy, j.correct / 3);
  assert.ok(Array.isArray(j.ci95) && j.ci95.length === 2 && j.ci95[0] <= j.accuracy && j.accuracy <= j.ci95[1]);
  assert.deepEqual(Object.keys(j.pass_at_k), ["1", "2"]);
  assert.ok(j.maj_accuracy >= 0 && j.maj_accuracy <= 1);
  assert.equal(j.samples, 2);
  assert.deepEqual(
    j.by_steps.map((g: { steps: number; n: number }) => [g.steps, g.n]),
    [
      [1, 2],
      [2, 1],
    ],
  ); // c's field, a's lines; b
  assert.ok(j.seconds >= 0);
  assert.match(r.stderr, /eval .*100% 9\/9 completions/); // 3 greedy + 3 x 2 samples

  const recs = fs
    .readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    recs.map((x) => [x.id, x.sample]),
    [
      ["a", 0],
      ["b", 0],
      ["c", 0],
    ],
  );
  for (const x of recs) {
    for (const k of [
      "question",
      "answer",
      "completion",
      "finish_reason",
      "correct",
      "pred",
      "steps",
      "first_error_step",
    ]) {
      assert.ok(k in x, `record ${x.id} has "${k}"`);
    }
    assert.ok(Array.isArray(x.steps));
  }
  assert.equal(recs.filter((x) => x.correct === true).length, j.correct);

  // The greedy text is what `stepwise sample` writes at temperature 0 from the same prompt.
  const sampled = path.join(dir, "greedy-sample.jsonl");
  const s = spawnSync(
    process.execPath,
    [
      BIN,
      "sample",
      "--model",
      model,
      "--problems",
      problems,
      "--n",
      "1",
      "--temperature",
      "0",
      "--max-tokens",
      "12",
      "--out",
      sampled,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(s.status, 0, s.stderr);
  const fromSample = fs
    .readFileSync(sampled, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).completion);
  assert.deepEqual(
    recs.map((x) => x.completion),
    fromSample,
  );

  const lim = run(["--model", model, "--problems", problems, "--limit", "2", "--max-tokens", "4", "--json"]);
  assert.equal(lim.status, 0, lim.stderr);
  const l = JSON.parse(lim.stdout);
  assert.equal(l.n, 2);
  assert.equal(l.maj_accuracy, undefined);
  assert.equal(l.pass_at_k, undefined);

  const table = run(["--model", model, "--problems", problems, "--max-tokens", "4", "--maj", "2"]);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /accuracy\s+\d+\.\d% +\(\d\/3 greedy\) +95% CI \[/);
  assert.match(table.stdout, /maj@2/);
  assert.match(table.stdout, /by reference steps/);
});

test("stepwise eval: bad input names the file and line, bad flags name the flag", () => {
  const bad = write("bad.jsonl", `${JSON.stringify(PROBLEMS[0])}\n{"id": "b", "question": "x",\n`);
  const r = run(["--model", path.join(dir, "nowhere"), "--problems", bad, "--json"]);
  assert.equal(r.status, 2);
  assert.ok(r.stderr.includes(`${bad}:2: invalid JSON`), r.stderr);
  assert.equal(r.stdout, "");

  const missing = write(
    "missing.jsonl",
    `${JSON.stringify(PROBLEMS[0])}\n\n${JSON.stringify({ id: "z", question: "q" })}\n`,
  );
  const m = run(["--model", path.join(dir, "nowhere"), "--problems", missing]);
  assert.equal(m.status, 2);
  assert.ok(m.stderr.includes(`${missing}:3: missing field "answer"`), m.stderr);

  const cases: [string[], RegExp][] = [
    [["--model", "m"], /--problems FILE is required/],
    [["--problems", bad, "--task", "code"], /--task must be one of arith, gsm8k, math, got "code"/],
    [["--problems", bad, "--pass-k", "1,x"], /--pass-k must be a comma-separated list of integers >= 1, got "1,x"/],
    [["--problems", bad, "--maj", "0"], /--maj must be an integer >= 1, got "0"/],
    [["--problems", bad, "--temperature=-1"], /--temperature must be a number >= 0/],
    [
      ["--problems", write("ok.jsonl", JSON.stringify(PROBLEMS[0]) + "\n")],
      /--model DIR or --endpoint URL is required/,
    ],
  ];
  for (const [args, re] of cases) {
    const x = run(args);
    assert.equal(x.status, 2, `${args.join(" ")}: ${x.stderr}`);
    assert.match(x.stderr, re);
  }
  const help = run(["--help"]);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /step_error_rate +of the greedy completions' steps that the calculator decided/);
  assert.match(help.stdout, /default 0\.7/);
});
