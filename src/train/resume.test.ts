// A DPO run killed with SIGKILL at several points and resumed each time ends with weights bit-identical to an
// uninterrupted run (on the same backend), and its metrics.jsonl holds each step exactly once.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

const child = new URL("./fixtures/resume-child.js", import.meta.url).pathname;

function runToEnd(out: string, resume: boolean, variant = "full"): void {
  const r = spawnSync(process.execPath, [child, out, resume ? "resume" : "fresh", variant], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

/** Starts a run and SIGKILLs it once `ready` holds (polled every 2 ms). */
async function runAndKill(out: string, resume: boolean, ready: () => boolean, variant = "full"): Promise<void> {
  const p = spawn(process.execPath, [child, out, resume ? "resume" : "fresh", variant], { stdio: "ignore" });
  const exited = new Promise<number | null>((res) => p.on("exit", (code) => res(code)));
  while (p.exitCode === null && !ready()) await new Promise((r) => setTimeout(r, 2));
  p.kill("SIGKILL");
  await exited;
}

function steps(out: string): number[] {
  const f = path.join(out, "metrics.jsonl");
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l).step as number);
}

test("resume after SIGKILL is bit-identical to an uninterrupted run", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-resume-"));
  try {
    const whole = path.join(root, "whole");
    runToEnd(whole, false);
    const cut = path.join(root, "cut");
    await runAndKill(cut, false, () => steps(cut).length >= 3); // mid-run
    await runAndKill(cut, true, () => steps(cut).length >= 9); // again, after resuming
    await runAndKill(cut, true, () => fs.existsSync(path.join(cut, "checkpoints")) && steps(cut).length >= 10);
    runToEnd(cut, true);
    const a = fs.readFileSync(path.join(whole, "final.bin"));
    const b = fs.readFileSync(path.join(cut, "final.bin"));
    assert.equal(a.length, b.length);
    assert.ok(a.equals(b), "final weights differ");
    const s = steps(cut);
    assert.deepEqual(
      s,
      Array.from({ length: s.length }, (_, i) => i + 1),
      "metrics.jsonl has each step once, in order",
    );
    assert.deepEqual(s, steps(whole));
    const kept = fs.readdirSync(path.join(cut, "checkpoints"));
    assert.equal(kept.length, 2, `the last 2 checkpoints are kept: ${kept}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("resume after SIGKILL is bit-identical with LoRA dropout (the dropout stream is checkpointed)", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-resume-lora-"));
  try {
    const whole = path.join(root, "whole");
    runToEnd(whole, false, "lora");
    const cut = path.join(root, "cut");
    await runAndKill(cut, false, () => steps(cut).length >= 4, "lora");
    runToEnd(cut, true, "lora");
    assert.ok(
      fs.readFileSync(path.join(whole, "final.bin")).equals(fs.readFileSync(path.join(cut, "final.bin"))),
      "final weights differ",
    );
    assert.deepEqual(steps(cut), steps(whole));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
