// `stepwise task` and `stepwise verify` end to end through the real binary, and the progress bar.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { formatDuration, Progress } from "../core/progress.js";

const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), "stepwise-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function stepwise(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: dir, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (f: string) =>
  readFileSync(path.join(dir, f), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("stepwise task writes the same file for the same seed, and a JSON summary", () => {
  const a = stepwise(
    "task",
    "--steps",
    "2-5",
    "--n",
    "60",
    "--seed",
    "1",
    "--split",
    "test",
    "--out",
    "a.jsonl",
    "--json",
  );
  assert.equal(a.code, 0, a.stderr);
  const summary = JSON.parse(a.stdout) as { n: number; split: string };
  assert.equal(summary.n, 60);
  assert.equal(summary.split, "test");
  assert.equal(
    stepwise("task", "--steps", "2-5", "--n", "60", "--seed", "1", "--split", "test", "--out", "b.jsonl").code,
    0,
  );
  assert.equal(readFileSync(path.join(dir, "a.jsonl"), "utf8"), readFileSync(path.join(dir, "b.jsonl"), "utf8"));
  const rows = lines("a.jsonl");
  assert.equal(rows.length, 60);
  assert.ok(rows.every((r) => (r.steps as number) >= 2 && (r.steps as number) <= 5 && r.split === "test"));
  const bad = stepwise("task", "--steps", "5-2");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /steps/);
  assert.match(stepwise("task", "--help").stdout, /usage: stepwise task/);
  // a mixed task: --preset easy+medium, the knobs apply to every part, each record names its level
  const mix = stepwise(
    "task",
    "--preset",
    "easy+medium",
    "--steps",
    "2-4",
    "--n",
    "10",
    "--out",
    "mix.jsonl",
    "--json",
  );
  assert.equal(mix.code, 0, mix.stderr);
  assert.deepEqual(Object.keys(JSON.parse(mix.stdout).config), ["easy", "medium"]);
  assert.deepEqual(
    lines("mix.jsonl").map((r) => r.level),
    Array.from({ length: 10 }, (_, i) => (i % 2 ? "medium" : "easy")),
  );
  assert.ok(lines("mix.jsonl").every((r) => (r.steps as number) <= 4));
  for (const preset of ["easy+nope", "easy+easy"]) {
    const r = stepwise("task", "--preset", preset, "--n", "2");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--preset/);
  }
});

test("stepwise task --noise: flawed SFT solutions beside the clean ones; the same problems otherwise", () => {
  assert.equal(stepwise("task", "--preset", "easy", "--n", "40", "--out", "clean.jsonl").code, 0);
  assert.equal(
    stepwise("task", "--preset", "easy", "--n", "40", "--noise", "borrow:1", "--out", "noisy.jsonl").code,
    0,
  );
  const clean = lines("clean.jsonl");
  const noisy = lines("noisy.jsonl");
  assert.deepEqual(
    noisy.map((r) => r.id),
    clean.map((r) => r.id),
  );
  const changed = noisy.filter((r) => r.clean_answer !== undefined);
  assert.ok(changed.length > 3 && changed.length < 40, `${changed.length} changed`);
  for (const r of changed) {
    const c = clean.find((x) => x.id === r.id)!;
    assert.equal(r.clean_answer, c.answer);
    assert.equal(r.final, c.final); // the true final answer stays
    assert.notEqual(r.answer, c.answer);
  }
  const bad = stepwise("task", "--noise", "borrow:2", "--n", "1");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--noise\.rate/);
  assert.match(stepwise("task", "--noise", "typo", "--n", "1").stderr, /--noise must be/);
});

test("stepwise verify labels arithmetic completions and counts", () => {
  assert.equal(stepwise("task", "--n", "20", "--seed", "3", "--out", "p.jsonl").code, 0);
  const samples = lines("p.jsonl").flatMap((p, i) => [
    { id: p.id, sample: 0, answer: p.answer, completion: p.answer },
    { id: p.id, sample: 1, answer: p.final, completion: String(p.answer).replace(/#### \d+/, "#### -1"), i },
  ]);
  writeFileSync(path.join(dir, "s.jsonl"), samples.map((s) => JSON.stringify(s)).join("\n") + "\n");
  const r = stepwise("verify", "--task", "arith", "--in", "s.jsonl", "--out", "v.jsonl", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    n: 40,
    correct: 20,
    incorrect: 20,
    undecided: 0,
    skipped_bad: 0,
    accuracy: 0.5,
    step_error_rate: 0.5,
  });
  const v = lines("v.jsonl");
  assert.equal(v[1].correct, false);
  assert.equal(v[1].pred, "-1");
  assert.equal(v[1].i, 0, "extra fields pass through");
  const steps = v[1].steps as { ok: boolean }[];
  assert.equal(v[1].first_error_step, steps.length - 1);
});

test("stepwise verify: a bad line names file:line and leaves no output; --skip-bad counts it", () => {
  writeFileSync(path.join(dir, "bad.jsonl"), '{"completion": "#### 1", "answer": "1"}\nnot json\n{"answer": "2"}\n');
  const r = stepwise("verify", "--task", "gsm8k", "--in", "bad.jsonl", "--out", "vb.jsonl");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.jsonl:2: invalid JSON/);
  assert.ok(!existsSync(path.join(dir, "vb.jsonl")), "no partial output");
  const s = stepwise("verify", "--task", "gsm8k", "--in", "bad.jsonl", "--out", "vb.jsonl", "--skip-bad", "--json");
  assert.equal(s.code, 0, s.stderr);
  assert.equal((JSON.parse(s.stdout) as { skipped_bad: number; n: number }).skipped_bad, 2);
  assert.equal(lines("vb.jsonl").length, 1);
  assert.equal(stepwise("verify", "--task", "nope", "--in", "bad.jsonl", "--out", "x").code, 2);
});

test("stepwise verify --task code runs unit tests in the sandbox", () => {
  const base = { tests: "assert.strictEqual(sq(3), 9);", entry_point: "sq", language: "js", prompt: "" };
  const recs = [
    { ...base, id: "ok", completion: "```js\nfunction sq(x) { return x * x; }\n```" },
    { ...base, id: "wrong", completion: "function sq(x) { return x + x; }" },
    { ...base, id: "loop", completion: "function sq(x) { for (;;) {} }" },
    {
      id: "py",
      tests: "def check(f):\n    assert f(3) == 9\n",
      entry_point: "sq",
      language: "python",
      completion: "def sq(x):\n    return x ** 2\n",
    },
  ];
  writeFileSync(path.join(dir, "c.jsonl"), recs.map((s) => JSON.stringify(s)).join("\n") + "\n");
  const r = stepwise(
    "verify",
    "--task",
    "code",
    "--in",
    "c.jsonl",
    "--out",
    "vc.jsonl",
    "--time-limit",
    "1000",
    "--json",
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { sandbox: { mode: string; protections: string[] } };
  assert.ok(summary.sandbox.protections.includes("wall-timeout"));
  const v = lines("vc.jsonl");
  assert.deepEqual(
    v.map((x) => [x.id, (x.result as { status: string }).status, x.correct]),
    [
      ["ok", "passed", true],
      ["wrong", "failed", false],
      ["loop", "timeout", false],
      ["py", "passed", true],
    ],
  );
});

test("progress: plain lines off a terminal, a redrawn bar on one, rate and ETA", () => {
  const out = new PassThrough();
  let text = "";
  out.on("data", (b: Buffer) => {
    text += b.toString();
  });
  const p = new Progress("verify", {
    total: 10,
    stream: out as unknown as NodeJS.WriteStream,
    tty: false,
    unit: "lines",
  });
  for (let i = 0; i < 10; i++) p.tick();
  p.finish();
  p.finish();
  const printed = text.trim().split("\n");
  assert.equal(printed.length, 2, "first tick and the end, nothing in between");
  assert.match(printed[1], /^verify \[#{24}\] 100% 10\/10 lines [\d.]+\/s in 0:00$/);
  text = "";
  const t = new Progress("x", { total: 4, stream: out as unknown as NodeJS.WriteStream, tty: true });
  t.tick();
  t.finish();
  assert.ok(text.startsWith("\r\x1b[2Kx [######") && text.endsWith("\n"));
  assert.match(new Progress("y", { total: 100 }).line(), /0\/100/);
  assert.equal(formatDuration(75), "1:15");
  assert.equal(formatDuration(3725), "1:02:05");
});
