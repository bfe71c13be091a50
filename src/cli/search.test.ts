// `stepwise search` end to end on tiny random models: the JSON fields, K = 1 with the greedy candidate alone equal
// to greedy decoding (records), --score logprob without a reference, and clear errors with exit code 2.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { BIN, microModelDir } from "./testkit.js";
import type { SearchRecord } from "../inspect/search.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-search-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const modelDir = (name: string, seed: number) =>
  microModelDir(dir, name, seed, { max_position_embeddings: 256, initializer_range: 0.3 });
const POLICY = modelDir("policy", 11);
const REF = modelDir("ref", 12);
const PROBLEMS = path.join(dir, "problems.jsonl");
fs.writeFileSync(
  PROBLEMS,
  [
    { id: "a", question: "Ann has 3 pens and buys 4. How many?", answer: "3 + 4 = <<3+4=7>>7\n#### 7" },
    { id: "b", question: "Bo has 6 cups and breaks 1. How many?", answer: "#### 5" },
    { id: "c", question: "Cy has 2.", answer: "2" },
  ]
    .map((p) => JSON.stringify(p))
    .join("\n") + "\n",
);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "search", ...args], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_BACKEND: "reference" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const COMMON = ["--model", POLICY, "--problems", PROBLEMS, "--max-tokens", "30", "--max-steps", "4"];

test("stepwise search --json: accuracies of greedy decoding and beam search", () => {
  const r = cli(...COMMON, "--ref", REF, "--beams", "2", "--expand", "2", "--json");
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out) as Record<string, unknown>;
  for (const k of [
    "n",
    "greedy_accuracy",
    "beam_accuracy",
    "beams",
    "expand",
    "temperature",
    "score",
    "beta",
    "max_steps",
    "seconds",
  ]) {
    assert.ok(k in s, k);
  }
  assert.equal(s.n, 3);
  assert.equal(s.beams, 2);
  assert.equal(s.score, "reward");
  assert.ok(!("records" in s));
});

test("stepwise search --beams 1 --expand 0 is greedy decoding; --score logprob needs no reference", () => {
  const out = path.join(dir, "k1.jsonl");
  const r = cli(...COMMON, "--ref", REF, "--beams", "1", "--expand", "0", "--out", out, "--json");
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out) as { greedy_accuracy: number; beam_accuracy: number };
  assert.equal(s.beam_accuracy, s.greedy_accuracy);
  const recs = fs
    .readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as SearchRecord);
  assert.deepEqual(
    recs.map((x) => x.id),
    ["a", "b", "c"],
  );
  recs.forEach((x) => assert.equal(x.beam, x.greedy));
  const lp = cli(...COMMON, "--beams", "2", "--score", "logprob", "--expand", "1");
  assert.equal(lp.code, 0, lp.err);
  assert.match(lp.out, /problems 3: greedy \d+\.\d%, beam search \(K=2, expand 1, score logprob\)/);
});

test("stepwise search: missing flags, bad files and bad values exit 2 naming the problem", () => {
  const cases: [string[], RegExp][] = [
    [[...COMMON, "--ref", REF], /--beams K is required/],
    [[...COMMON, "--beams", "2"], /--ref DIR is required/],
    [["--model", POLICY, "--ref", REF, "--beams", "2"], /--problems FILE is required/],
    [[...COMMON, "--ref", REF, "--beams", "0"], /--beams must be an integer >= 1/],
    [[...COMMON, "--ref", REF, "--beams", "2", "--score", "best"], /--score must be reward or logprob/],
    [[...COMMON, "--ref", REF, "--beams", "2", "--temperature", "-1"], /--temperature/],
    [[...COMMON, "--ref", REF, "--beams", "2", "--task", "code"], /--task/],
    [
      ["--model", POLICY, "--ref", REF, "--beams", "2", "--problems", "/nonexistent.jsonl"],
      /\/nonexistent.jsonl: cannot read/,
    ],
    [["--model", "/nonexistent/model", "--ref", REF, "--beams", "2", "--problems", PROBLEMS], /\/nonexistent\/model/],
  ];
  for (const [args, msg] of cases) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, msg, args.join(" "));
  }
});
