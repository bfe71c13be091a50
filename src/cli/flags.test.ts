// Range checks on numeric flags (issue #15, item 5): blank text is not 0, out-of-range values are refused naming
// the flag, before any work; verify refuses code limits under which the interpreter itself cannot run.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { BIN, microModelDir } from "./testkit.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-flags-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: root, timeout: 60_000 });

fs.writeFileSync(
  path.join(root, "d.jsonl"),
  JSON.stringify({ id: "a", question: "1+1?", answer: "1 + 1 = <<1+1=2>>2\n#### 2" }) + "\n",
);
fs.writeFileSync(
  path.join(root, "c.jsonl"),
  JSON.stringify({
    id: "a",
    completion: "```js\nfunction f(){return 1}\n```",
    tests: "assert.equal(f(), 1)",
    entry_point: "f",
    language: "js",
  }) + "\n",
);

test("bad numbers are refused naming the flag: blank is not 0, ranges are checked", () => {
  microModelDir(root, "m", 1);
  const sft = ["sft", "--data", "d.jsonl", "--init", "tiny", "--out", "o"];
  const cases: [string[], RegExp][] = [
    [[...sft, "--lr", ""], /--lr must be a number > 0, got ""/],
    [[...sft, "--lr", "0"], /--lr must be a number > 0, got "0"/],
    [[...sft, "--warmup-ratio", "2"], /--warmup-ratio must be a number in \[0, 1\], got "2"/],
    [[...sft, "--weight-decay", " "], /--weight-decay must be a number >= 0, got " "/],
    [[...sft, "--seed", ""], /--seed must be an integer >= 0, got ""/],
    [[...sft, "--batch-size", "0"], /--batch-size must be an integer >= 1, got "0"/],
    [["dpo", "--model", "m", "--pairs", "d.jsonl", "--out", "o", "--beta", ""], /--beta must be a number > 0, got ""/],
    [
      ["sample", "--model", "m", "--problems", "d.jsonl", "--out", "s.jsonl", "--temperature", ""],
      /--temperature must be a number >= 0, got ""/,
    ],
    [
      ["sample", "--model", "m", "--problems", "d.jsonl", "--out", "s.jsonl", "--n", ""],
      /--n must be an integer >= 1, got ""/,
    ],
    [
      ["eval", "--model", "m", "--problems", "d.jsonl", "--temperature", ""],
      /--temperature must be a number >= 0, got ""/,
    ],
    [
      ["verify", "--task", "code", "--in", "c.jsonl", "--out", "v.jsonl", "--time-limit", ""],
      /--time-limit must be an integer in \[1, 3600000\], got ""/,
    ],
    [["serve", "--model", "m", "--port", ""], /--port must be an integer >= 0, got ""/],
  ];
  for (const [args, want] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want, args.join(" "));
  }
  assert.ok(!fs.existsSync(path.join(root, "o")), "nothing was created");
});

test("verify --task code refuses limits under which a trivial program fails (it would mark every program wrong)", () => {
  let r = cli("verify", "--task", "code", "--in", "c.jsonl", "--out", "v.jsonl", "--memory-limit", "1");
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /--memory-limit 1 \(MB\) \/ --time-limit 5000 \(ms\): a trivial JavaScript program fails under these limits/,
  );
  assert.ok(!fs.existsSync(path.join(root, "v.jsonl")));
  r = cli("verify", "--task", "code", "--in", "c.jsonl", "--out", "v.jsonl", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).correct, 1, "the default limits run it");
});
