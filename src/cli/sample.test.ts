// `stepwise sample`: the stage on a scripted Completer (seeds by (seed, id, sample), step-controlled records keep
// their prefix, a torn last line is dropped, other options refuse to resume), and the real binary on a tiny random
// model killed with SIGKILL mid-run and run again: nothing lost, nothing duplicated, byte-equal to an uninterrupted
// run.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { InputError } from "../core/errors.js";
import { saveModel } from "../model/hub.js";
import { initModel } from "../model/presets.js";
import type { Completer, Completion, CompletionRequest } from "../sample/types.js";
import { sample, sampleConfig, sampleSeed, type SampleConfig } from "../sample/stage.js";

const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-sample-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const PROBLEMS = [
  {
    id: "a",
    question: "Ann has 3 pens and buys 4. She gives 2 away. How many now?",
    answer: "3 + 4 = <<3+4=7>>7\n7 - 2 = <<7-2=5>>5\n#### 5",
  },
  { id: "b", question: "Bo has 6 cups and breaks 1. How many?", answer: "6 - 1 = <<6-1=5>>5\n#### 5" },
  {
    id: "c",
    question: "Cy reads 2 books a day for 3 days, then 4 more. How many?",
    answer: "2 * 3 = <<2*3=6>>6\n6 + 4 = <<6+4=10>>10\n#### 10",
    level: 2,
  },
];

function writeProblems(file: string, problems: object[]): string {
  const p = path.join(dir, file);
  fs.writeFileSync(p, problems.map((x) => JSON.stringify(x)).join("\n") + "\n");
  return p;
}

const readLines = (f: string) =>
  fs
    .readFileSync(f, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Answers "step k" lines, then "#### 9"; logs every request. */
class FakeCompleter implements Completer {
  readonly name = "fake";
  readonly log: CompletionRequest[] = [];
  async complete(requests: CompletionRequest[]): Promise<Completion[][]> {
    return requests.map((r) => {
      this.log.push(r);
      const lines = r.prompt.split("\n").length;
      const text = r.params.stop ? (lines > 4 ? "#### 9" : `step ${lines}`) : `whole ${r.params.seed}`;
      return [{ text, finishReason: "stop", tokens: 3 }];
    });
  }
}

function options(out: string, extra: Partial<SampleConfig> = {}): SampleConfig {
  return sampleConfig({
    problems: writeProblems("p.jsonl", PROBLEMS),
    out,
    n: 2,
    max_tokens: 50,
    seed: 7,
    batch_size: 2,
    ...extra,
  });
}

test("sample stage: seeds from (seed, id, sample), records in order, extra fields kept, resume skips what is there", async () => {
  const out = path.join(dir, "plain.jsonl");
  const fake = new FakeCompleter();
  const s = await sample(options(out), {}, fake);
  assert.deepEqual(
    { ...s, out: undefined },
    {
      problems: 3,
      samples: 6,
      present: 0,
      written: 6,
      skipped: {},
      finish_reasons: { stop: 6, length: 0, eos: 0 },
      out: undefined,
      missing: [],
    },
  );
  const recs = readLines(out);
  assert.deepEqual(
    recs.map((r) => [r.id, r.sample]),
    [
      ["a", 0],
      ["a", 1],
      ["b", 0],
      ["b", 1],
      ["c", 0],
      ["c", 1],
    ],
  );
  assert.deepEqual(recs[4], {
    id: "c",
    sample: 0,
    question: PROBLEMS[2].question,
    answer: PROBLEMS[2].answer,
    completion: `whole ${sampleSeed(7, "c", 0)}`,
    finish_reason: "stop",
    final: "10",
    level: 2,
  });
  assert.equal(fake.log[0].prompt, `${PROBLEMS[0].question}\n`);
  // A torn last line (a kill during a write) is cut off and its sample made again; nothing else is redone.
  const full = fs.readFileSync(out, "utf8");
  const keep = full.split("\n").slice(0, 4).join("\n") + "\n";
  fs.writeFileSync(out, keep + full.split("\n")[4].slice(0, 20));
  const again = new FakeCompleter();
  const r = await sample(options(out), {}, again);
  assert.equal(r.present, 4);
  assert.equal(r.written, 2);
  assert.equal(again.log.length, 2);
  assert.equal(fs.readFileSync(out, "utf8"), full);
  // Different options do not mix into the same file.
  await assert.rejects(
    sample(options(out, { n: 3 }), {}, new FakeCompleter()),
    (e: unknown) =>
      e instanceof InputError && /cannot resume with different options \(n: 2 before, 3 now\)/.test(e.message),
  );
});

test("sample stage, step-controlled: every cut in a range, prefix kept, temperature rising per generated step", async () => {
  const out = path.join(dir, "scdpo.jsonl");
  const fake = new FakeCompleter();
  const s = await sample(options(out, { n: 1, step_temperature: "math", cut: "1-2", max_steps: 8 }), {}, fake);
  assert.equal(s.samples, 5); // a: cuts 1 and 2; b: cut 1 (cut 2 would leave nothing); c: cuts 1 and 2
  assert.deepEqual(s.skipped, { "samples cut beyond the end of the solution": 1 });
  const recs = readLines(out);
  assert.deepEqual(
    recs.map((r) => [r.id, r.sample, r.cut]),
    [
      ["a", 0, 1],
      ["a", 1, 2],
      ["b", 0, 1],
      ["c", 0, 1],
      ["c", 1, 2],
    ],
  );
  const a1 = recs[0];
  assert.equal(a1.prefix, "3 + 4 = <<3+4=7>>7\n");
  // The prompt holds 2 lines (question, step 1); steps "step 3", "step 4" follow, then "#### 9".
  assert.equal(a1.completion, "3 + 4 = <<3+4=7>>7\nstep 3\nstep 4\n#### 9");
  assert.equal(a1.finish_reason, "stop");
  const forA1 = fake.log.filter(
    (r) =>
      r.prompt.startsWith(`${PROBLEMS[0].question}\n3 + 4 = <<3+4=7>>7\nstep`) ||
      r.prompt === `${PROBLEMS[0].question}\n3 + 4 = <<3+4=7>>7\n`,
  );
  assert.deepEqual(
    forA1.map((r) => r.params.temperature),
    [1.0, 1.05, 1.1],
  );
  assert.ok(fake.log.every((r) => r.params.stop?.[0] === "\n"));
});

function tinyModel(): string {
  const m = path.join(dir, "tiny");
  const { model, tokenizer } = initModel("tiny", { seed: 5 });
  saveModel(model, m);
  tokenizer!.save(m);
  model.dispose();
  return m;
}

test("stepwise sample: kill -9 mid-run, then the same command: nothing lost or duplicated, equal to an uninterrupted run", async () => {
  const model = tinyModel();
  const problems = writeProblems(
    "many.jsonl",
    Array.from({ length: 12 }, (_, i) => ({
      id: `q${i}`,
      question: `Problem ${i}: add ${i} and ${i + 2}.`,
      answer: `${i} + ${i + 2} = <<${i}+${i + 2}=${2 * i + 2}>>${2 * i + 2}\n#### ${2 * i + 2}`,
    })),
  );
  const args = (out: string) => [
    "sample",
    "--model",
    model,
    "--problems",
    problems,
    "--n",
    "4",
    "--out",
    out,
    "--max-tokens",
    "48",
    "--seed",
    "3",
    "--logprobs",
    "--batch-size",
    "4",
  ];
  const whole = path.join(dir, "whole.jsonl");
  const ref = spawnSync(process.execPath, [BIN, ...args(whole), "--json"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(ref.status, 0, ref.stderr);
  assert.equal(JSON.parse(ref.stdout).written, 48);

  const out = path.join(dir, "killed.jsonl");
  const child = spawn(process.execPath, [BIN, ...args(out)], { stdio: "ignore" });
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running = false;
      resolve(code);
    }),
  );
  let lines = 0;
  while (lines < 8 && running) {
    await new Promise((r) => setTimeout(r, 5));
    lines = fs.existsSync(out) ? fs.readFileSync(out, "utf8").split("\n").length - 1 : 0;
  }
  child.kill("SIGKILL");
  assert.equal(await exited, null, "killed before it finished");
  const partial = fs.readFileSync(out, "utf8");
  console.log(`  killed after ${partial.split("\n").length - 1} of 48 lines`);
  assert.ok(partial.split("\n").length - 1 < 48);
  fs.appendFileSync(out, '{"id":"q9","sample":2,"question":"Prob'); // and a torn line, as a kill inside a write leaves

  const again = spawnSync(process.execPath, [BIN, ...args(out), "--json"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(again.status, 0, again.stderr);
  const s = JSON.parse(again.stdout);
  assert.equal(s.present + s.written, 48);
  assert.equal(fs.readFileSync(out, "utf8"), fs.readFileSync(whole, "utf8"));
  const keys = readLines(out).map((r) => `${r.id}/${r.sample}`);
  assert.equal(new Set(keys).size, 48);

  const other = spawnSync(process.execPath, [BIN, ...args(out).map((a) => (a === "3" ? "4" : a))], {
    encoding: "utf8",
  });
  assert.equal(other.status, 2);
  assert.match(other.stderr, /cannot resume with different options \(seed: 3 before, 4 now\)/);
  const none = spawnSync(process.execPath, [BIN, "sample", "--problems", problems, "--out", out], { encoding: "utf8" });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--model DIR or --endpoint URL is required/);
});
