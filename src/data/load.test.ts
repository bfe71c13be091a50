// Loaders and JSONL helpers: formats, bad lines named by file and line, --skip-bad counting, atomic writes.

import { AtomicJsonlWriter, writeFileAtomic, writeJsonlAtomic } from "../core/atomic.js";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { InputError } from "../core/errors.js";
import { readJsonl } from "./jsonl.js";
import { collect, loadCode, loadGsm8k, loadMapped, loadMath, newStats, parseMapping } from "./load.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "stepwise-load-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: unknown[]): string {
  const p = path.join(dir, name);
  writeFileSync(p, lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n");
  return p;
}

test("GSM8K: question/answer with the #### final answer; ids default to file:line", async () => {
  const f = file("gsm.jsonl", [
    { question: "Q1?", answer: "1 + 1 = <<1+1=2>>2\n#### 2" },
    "",
    { id: 9, question: "Q2?", answer: "#### 1,000", extra: true },
  ]);
  const rows = await collect(loadGsm8k(f));
  assert.deepEqual(
    rows.map((r) => [r.id, r.final]),
    [
      ["gsm.jsonl:1", "2"],
      ["9", "1,000"],
    ],
  );
  assert.equal(rows[1].extra, true);
});

test("MATH: problem/solution with \\boxed{}", async () => {
  const f = file("math.jsonl", [{ problem: "P", solution: "so $\\boxed{\\frac{1}{2}}$", level: "Level 2" }]);
  const [r] = await collect(loadMath(f));
  assert.equal(r.question, "P");
  assert.equal(r.final, "\\frac{1}{2}");
  assert.equal(r.level, "Level 2");
});

test("generic JSONL with a field mapping", async () => {
  const f = file("gen.jsonl", [{ uid: "u1", input: { text: "What?" }, target: "42" }]);
  const [r] = await collect(loadMapped(f, { mapping: parseMapping("id=uid,question=input.text,answer=target") }));
  assert.deepEqual([r.id, r.question, r.answer, r.final], ["u1", "What?", "42", "42"]);
  assert.throws(() => parseMapping("prompt=q"), InputError);
});

test("code problems: language js|python, entry point checked", async () => {
  const f = file("code.jsonl", [
    { prompt: "function add(a, b) {", tests: "assert.equal(add(1, 2), 3)", entry_point: "add", language: "javascript" },
    { prompt: "def f(x):", tests: "assert f(1) == 1", entry_point: "f", language: "py" },
  ]);
  const rows = await collect(loadCode(f));
  assert.deepEqual(
    rows.map((r) => r.language),
    ["js", "python"],
  );
});

test("a malformed line is an InputError naming the file and line; skipBad counts and skips", async () => {
  const f = file("bad.jsonl", [
    { question: "ok?", answer: "#### 1" },
    "{not json",
    "[1, 2]",
    { question: "no answer" },
    { question: "no final", answer: "just text" },
    { question: "ok2?", answer: "#### 2" },
  ]);
  await assert.rejects(
    collect(loadGsm8k(f)),
    (e: unknown) => e instanceof InputError && e.message.includes(`${f}:2: invalid JSON`),
  );
  for (const [i, expect] of [
    [3, "expected a JSON object"],
    [4, 'missing field "answer"'],
    [5, 'the answer has no "#### <final answer>" line'],
  ] as const) {
    const only = file(`bad${i}.jsonl`, [readFileSync(f, "utf8").split("\n")[i - 1]]);
    await assert.rejects(
      collect(loadGsm8k(only)),
      (e: unknown) => e instanceof InputError && e.message.includes(`${only}:1: ${expect}`),
    );
  }
  const stats = newStats();
  const rows = await collect(loadGsm8k(f, { skipBad: true, stats }));
  assert.deepEqual(
    rows.map((r) => r.question),
    ["ok?", "ok2?"],
  );
  assert.equal(stats.bad, 4);
  assert.deepEqual(
    stats.errors.map((e) => (e.message.match(/:(\d+):/) ?? [])[1]),
    ["2", "3", "4", "5"],
  );
  const code = file("badcode.jsonl", [
    { prompt: "", tests: "", entry_point: "a b", language: "js" },
    { prompt: "", tests: "", entry_point: "f", language: "ruby" },
  ]);
  await assert.rejects(collect(loadCode(code)), /:1: entry_point "a b"/);
  const s2 = newStats();
  assert.deepEqual(await collect(loadCode(code, { skipBad: true, stats: s2 })), []);
  assert.equal(s2.bad, 2);
  await assert.rejects(
    collect(loadMath(file("nobox.jsonl", [{ problem: "p", solution: "no box" }]))),
    /:1: the solution has no \\boxed/,
  );
  await assert.rejects(collect(readJsonl(path.join(dir, "missing.jsonl"))), /no such file/);
});

test("readJsonl streams line numbers through blank lines and CRLF", async () => {
  const p = path.join(dir, "crlf.jsonl");
  writeFileSync(p, '{"a":1}\r\n\r\n{"a":2}\r\n');
  assert.deepEqual(
    (await collect(readJsonl(p))).map((r) => [r.line, r.value.a]),
    [
      [1, 1],
      [3, 2],
    ],
  );
});

test("atomic writes: the target appears whole or not at all", async () => {
  const target = path.join(dir, "out.jsonl");
  assert.equal(await writeJsonlAtomic(target, [{ a: 1 }, { b: 2 }]), 2);
  assert.equal(readFileSync(target, "utf8"), '{"a":1}\n{"b":2}\n');
  // a failing producer leaves the old file intact and no temp file behind
  async function* failing() {
    yield { c: 3 };
    throw new Error("producer failed");
  }
  await assert.rejects(writeJsonlAtomic(target, failing()), /producer failed/);
  assert.equal(readFileSync(target, "utf8"), '{"a":1}\n{"b":2}\n');
  const w = new AtomicJsonlWriter(target);
  for (let i = 0; i < 20000; i++) await w.write({ i, pad: "x".repeat(50) }); // past the stream's buffer: backpressure
  assert.equal(readFileSync(target, "utf8"), '{"a":1}\n{"b":2}\n', "untouched until commit");
  await w.commit();
  assert.equal(readFileSync(target, "utf8").split("\n").length, 20001);
  await writeFileAtomic(path.join(dir, "x.txt"), "hello");
  assert.equal(readFileSync(path.join(dir, "x.txt"), "utf8"), "hello");
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith(".tmp")),
    [],
  );
});
