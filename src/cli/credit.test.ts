// `stepwise credit` end to end on tiny random models: the JSON fields, an HTML file, terminal colours only when
// asked (a table through a pipe or with NO_COLOR), zeros when the model is its own reference, --corrupt-eval's
// summary and records, and clear errors with exit code 2.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { generateProblems, PRESETS } from "../data/task.js";
import { BIN, microModelDir } from "./testkit.js";
import type { Credit } from "../inspect/credit.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-credit-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const modelDir = (name: string, seed: number) => microModelDir(dir, name, seed);
const POLICY = modelDir("policy", 1);
const REF = modelDir("ref", 2);
const TEXT = "3 + 4 = <<3+4=7>>7 <pens>\n7 * 2 = <<7*2=14>>14\n#### 14";

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, "credit", ...args], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_BACKEND: "reference", ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("stepwise credit --json --html: tokens, step sums adding up to the total, an HTML heatmap", () => {
  const html = path.join(dir, "credit.html");
  const r = cli([
    "--model",
    POLICY,
    "--ref",
    REF,
    "--text",
    TEXT,
    "--question",
    "Ann has 3 pens.",
    "--beta",
    "0.2",
    "--html",
    html,
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const c = JSON.parse(r.out) as Credit & { html: string };
  assert.equal(c.prompt, "Ann has 3 pens.\n");
  assert.equal(c.completion, TEXT);
  assert.equal(c.beta, 0.2);
  assert.equal(c.tokens.length, TEXT.length);
  for (const k of ["id", "text", "start", "end", "logprob", "ref_logprob", "reward", "step"])
    assert.ok(k in c.tokens[0], k);
  assert.deepEqual(
    c.steps.map((s) => s.text),
    TEXT.split("\n"),
  );
  assert.ok(Math.abs(c.steps.reduce((a, s) => a + s.reward, 0) - c.total_reward) < 1e-9);
  assert.equal(c.html, html);
  const page = fs.readFileSync(html, "utf8");
  assert.match(page, /^<!DOCTYPE html>/);
  assert.ok(page.includes(">&lt;</span>") && !page.includes("<pens>"));
  assert.equal((page.match(/title="reward /g) ?? []).length, c.tokens.length);
});

test("stepwise credit: a table through a pipe or with NO_COLOR, colours with --color always; model == ref is all zeros", () => {
  const piped = cli(["--model", POLICY, "--ref", REF, "--text", TEXT]);
  assert.equal(piped.code, 0, piped.err);
  assert.ok(!piped.out.includes("\x1b["), "no ANSI escapes when piped");
  assert.match(piped.out, /step +reward +tokens +text/);
  const colored = cli(["--model", POLICY, "--ref", REF, "--text", TEXT, "--color", "always"], {
    COLORTERM: "truecolor",
  });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matches the ANSI escape the renderer writes
  assert.match(colored.out, /\x1b\[30;48;2;/);
  assert.equal(colored.out.split("\n").filter((l) => l.includes("[step ")).length, 3);
  const c256 = cli(["--model", POLICY, "--ref", REF, "--text", TEXT, "--color", "always"], { COLORTERM: "" });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matches the ANSI escape the renderer writes
  assert.match(c256.out, /\x1b\[30;48;5;/);
  const self = JSON.parse(cli(["--model", POLICY, "--ref", POLICY, "--text", TEXT, "--json"]).out) as Credit;
  assert.ok(self.tokens.every((t) => t.reward === 0));
  assert.equal(self.total_reward, 0);
});

test("stepwise credit --corrupt-eval: hit rates against chance, per-problem records", () => {
  const problems = path.join(dir, "problems.jsonl");
  fs.writeFileSync(
    problems,
    generateProblems(PRESETS.easy, { n: 5, seed: 2, split: "test" })
      .map((p) => JSON.stringify(p))
      .join("\n") + "\n",
  );
  const out = path.join(dir, "corrupt.jsonl");
  const r = cli([
    "--corrupt-eval",
    "--model",
    POLICY,
    "--ref",
    REF,
    "--problems",
    problems,
    "--seed",
    "3",
    "--out",
    out,
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out) as Record<string, number>;
  assert.equal(s.n, 5);
  for (const k of ["implicit_reward_hit_rate", "ref_logprob_hit_rate", "chance"]) assert.ok(s[k] >= 0 && s[k] <= 1, k);
  assert.ok(!("records" in s));
  const recs = fs
    .readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; reward_pick: number });
  assert.equal(recs.length, 5);
  assert.equal(s.implicit_reward_hit_rate, recs.filter((x) => x.reward_pick === x.step).length / 5);
  const rec = cli([
    "--corrupt-eval",
    "--model",
    POLICY,
    "--ref",
    REF,
    "--problems",
    problems,
    "--corrupt-mode",
    "recompute",
    "--json",
  ]);
  assert.equal(JSON.parse(rec.out).mode, "recompute");
  const text = cli(["--corrupt-eval", "--model", POLICY, "--ref", REF, "--problems", problems, "--limit", "2"]);
  assert.match(text.out, /corrupted solutions: 2/);
});

test("stepwise credit: missing flags, bad files and bad values exit 2 naming the problem", () => {
  const cases: [string[], RegExp][] = [
    [["--model", POLICY, "--text", "a"], /--ref DIR is required/],
    [["--model", POLICY, "--ref", REF], /--text STR is required/],
    [["--ref", REF, "--text", "a"], /--model DIR is required/],
    [["--model", POLICY, "--ref", "/nonexistent/ref", "--text", "a"], /\/nonexistent\/ref/],
    [["--model", POLICY, "--ref", REF, "--text", "a", "--beta", "0"], /--beta/],
    [["--model", POLICY, "--ref", REF, "--text", "a", "--color", "sometimes"], /--color/],
    [
      ["--model", POLICY, "--ref", REF, "--text", "a", "--html", "/nonexistent/dir/x.html"],
      /\/nonexistent\/dir\/x.html: cannot write/,
    ],
    [["--corrupt-eval", "--model", POLICY, "--ref", REF], /--problems FILE/],
    [
      ["--corrupt-eval", "--model", POLICY, "--ref", REF, "--problems", "x", "--corrupt-mode", "x"],
      /--corrupt-mode must be keep or recompute/,
    ],
    [
      ["--corrupt-eval", "--model", POLICY, "--ref", REF, "--problems", "/nonexistent.jsonl"],
      /\/nonexistent.jsonl: cannot read/,
    ],
  ];
  const bad = path.join(dir, "bad.jsonl");
  fs.writeFileSync(bad, '{"id": "a", "question": "q", "answer": "#### 1"}\nnot json\n');
  cases.push([["--corrupt-eval", "--model", POLICY, "--ref", REF, "--problems", bad], /bad.jsonl:2: invalid JSON/]);
  const none = path.join(dir, "none.jsonl");
  fs.writeFileSync(none, '{"id": "a", "question": "q", "answer": "#### 1"}\n');
  cases.push([
    ["--corrupt-eval", "--model", POLICY, "--ref", REF, "--problems", none],
    /no problem has a reference solution/,
  ]);
  for (const [args, msg] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, msg, args.join(" "));
  }
});
