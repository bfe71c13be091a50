// Step-controlled sampling on a scripted Completer: one request per step at the schedule's temperature, stopping at
// "\n", the prefix kept in the prompt; solutions end at "#### n", EOS, maxSteps or the token budget. Schedules and
// cut points parse, validate and land where the docs say.

import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { sequenceSeed } from "../model/generate.js";
import {
  continueStepwise,
  cutPoint,
  parseCut,
  parseStepSchedule,
  SCHEDULE_PRESETS,
  solutionPrefix,
  solutionSteps,
  stepTemperature,
  type StepTask,
} from "./stepcontrol.js";
import type { Completer, Completion, CompletionRequest } from "./types.js";

/** Answers each request with the next line of its task's script (found by prompt prefix); logs every request. */
class ScriptedCompleter implements Completer {
  readonly name = "scripted";
  readonly log: CompletionRequest[] = [];
  calls = 0;
  constructor(private readonly scripts: { prompt: string; steps: Completion[] }[]) {}
  async complete(requests: CompletionRequest[]): Promise<Completion[][]> {
    this.calls++;
    return requests.map((r) => {
      this.log.push(r);
      const s = this.scripts.find((x) => r.prompt.startsWith(x.prompt))!;
      const done = r.prompt.slice(s.prompt.length).split("\n").length - 1; // steps already generated
      return [s.steps[done] ?? { text: "more", finishReason: "stop", tokens: 2 }];
    });
  }
}

const step = (text: string, finishReason: Completion["finishReason"] = "stop"): Completion => ({
  text,
  finishReason,
  tokens: text.length + 1,
  logprobs: [...text, "\n"].map(() => -0.5),
});

test("schedules: presets and custom specs give the documented temperatures", () => {
  const temps = (spec: string, n: number) =>
    Array.from({ length: n }, (_, i) => stepTemperature(parseStepSchedule(spec), i));
  assert.deepEqual(temps("gsm8k", 6), [1.1, 1.2, 1.3, 1.4, 1.4, 1.4]);
  assert.deepEqual(temps("math", 6), [1.0, 1.05, 1.1, 1.15, 1.2, 1.2]);
  assert.deepEqual(temps("blog", 4), [1.05, 1.1, 1.15, 1.2]);
  assert.deepEqual(temps("1.1+0.1*i<=1.4", 6), temps("gsm8k", 6));
  assert.deepEqual(temps(" 0.7 + 0.25 * i ", 3), [0.7, 0.95, 1.2]);
  assert.deepEqual(temps("0.9", 3), [0.9, 0.9, 0.9]);
  assert.equal(SCHEDULE_PRESETS.gsm8k.cap, 1.4);
});

test("schedules: bad specs are InputErrors that name the flag and show the form", () => {
  for (const bad of ["hot", "1.1+0.1*j", "1.1-0.1*i", "1.4+0.1*i<=1.1", "20", "1.1+0.1*i<=", ""]) {
    assert.throws(
      () => parseStepSchedule(bad),
      (e: unknown) =>
        e instanceof InputError && e.message.includes("--step-temperature") && e.message.includes("a+b*i<=c"),
      bad,
    );
  }
});

test("cut points: random in 1..R-1, K and A-B, null past the end; prefixes end with a line break", () => {
  assert.deepEqual(parseCut("random"), { kind: "random" });
  assert.deepEqual(parseCut("2"), { kind: "range", lo: 2, hi: 2 });
  assert.deepEqual(parseCut("1-3"), { kind: "range", lo: 1, hi: 3 });
  for (const bad of ["3-1", "x", "-1", "1.5"]) assert.throws(() => parseCut(bad), InputError, bad);

  const solution = "a = <<1+1=2>>2\nb = <<2*3=6>>6\nc = <<6-1=5>>5\n#### 5";
  const sol = solutionSteps(solution);
  assert.equal(sol.steps.length, 4);
  assert.equal(sol.reasoning, 3);
  const rng = new Rng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(cutPoint({ kind: "random" }, sol, 0, rng)!);
  assert.deepEqual([...seen].sort(), [1, 2]);
  assert.equal(cutPoint({ kind: "random" }, solutionSteps("x = 3\n#### 3"), 0, rng), 0);
  const range = parseCut("2-4");
  assert.deepEqual(
    [0, 1, 2].map((w) => cutPoint(range, sol, w, rng)),
    [2, 3, null],
  );

  assert.equal(solutionPrefix(solution, 0), "");
  assert.equal(solutionPrefix(solution, 2), "a = <<1+1=2>>2\nb = <<2*3=6>>6\n");
  assert.equal(solutionPrefix(solution, 4), solution + "\n");
  assert.throws(() => solutionPrefix(solution, 5), InputError);
});

test("continueStepwise: one request per step, temperature by the schedule, prefix kept, ends at ####", async () => {
  const tasks: StepTask[] = [
    { prompt: "Q1\na = 2\n", seed: 11 },
    { prompt: "Q2\n", seed: 12 },
  ];
  const fake = new ScriptedCompleter([
    { prompt: tasks[0].prompt, steps: [step("b = 3"), step("c = 4"), step("#### 4")] },
    { prompt: tasks[1].prompt, steps: [step("x = 1"), step("#### 1")] },
  ]);
  const got = await continueStepwise(fake, tasks, { schedule: SCHEDULE_PRESETS.gsm8k, maxTokens: 100, logprobs: true });
  assert.equal(got[0].text, "b = 3\nc = 4\n#### 4");
  assert.equal(got[1].text, "x = 1\n#### 1");
  assert.deepEqual(
    got.map((c) => c.finishReason),
    ["stop", "stop"],
  );
  assert.deepEqual(got[0].temperatures, [1.1, 1.2, 1.3]);
  assert.deepEqual(got[1].temperatures, [1.1, 1.2]);
  assert.equal(fake.calls, 3, "all live tasks share one call per round");
  assert.deepEqual(
    fake.log.map((r) => r.prompt),
    ["Q1\na = 2\n", "Q2\n", "Q1\na = 2\nb = 3\n", "Q2\nx = 1\n", "Q1\na = 2\nb = 3\nc = 4\n"],
  );
  for (const r of fake.log) {
    assert.deepEqual(r.params.stop, ["\n"]);
    assert.equal(r.params.n, 1);
  }
  assert.deepEqual(
    fake.log.filter((r) => r.prompt.startsWith("Q1")).map((r) => r.params.seed),
    [0, 1, 2].map((i) => sequenceSeed(11, i)),
  );
  assert.deepEqual(
    fake.log.map((r) => r.params.temperature),
    [1.1, 1.1, 1.2, 1.2, 1.3],
  );
  assert.equal(got[0].tokens, 6 + 6 + 7);
  assert.equal(got[0].logprobs!.length, got[0].tokens);
});

test("continueStepwise: EOS ends a solution, and so do maxSteps and the token budget", async () => {
  const eos = new ScriptedCompleter([{ prompt: "Q\n", steps: [step("a = 1"), step("done", "eos")] }]);
  const [e] = await continueStepwise(eos, [{ prompt: "Q\n", seed: 1 }], {
    schedule: SCHEDULE_PRESETS.blog,
    maxTokens: 100,
  });
  assert.equal(e.text, "a = 1\ndone");
  assert.equal(e.finishReason, "eos");
  assert.equal(e.logprobs, undefined);

  const endless = new ScriptedCompleter([{ prompt: "Q\n", steps: [] }]); // "more" forever
  const [m] = await continueStepwise(endless, [{ prompt: "Q\n", seed: 1 }], {
    schedule: SCHEDULE_PRESETS.math,
    maxTokens: 1000,
    maxSteps: 5,
  });
  assert.equal(m.text, "more\n".repeat(5));
  assert.equal(m.finishReason, "length");
  assert.equal(endless.log.length, 5);
  assert.deepEqual(m.temperatures, [1.0, 1.05, 1.1, 1.15, 1.2]);

  const budget = new ScriptedCompleter([{ prompt: "Q\n", steps: [] }]); // 2 tokens a step
  const [b] = await continueStepwise(budget, [{ prompt: "Q\n", seed: 1 }], {
    schedule: SCHEDULE_PRESETS.gsm8k,
    maxTokens: 7,
  });
  assert.equal(b.tokens, 8);
  assert.equal(b.finishReason, "length");
  assert.ok(
    budget.log.every((r) => r.params.maxTokens === 7),
    "one limit for every request of a round",
  );

  const cut = new ScriptedCompleter([{ prompt: "Q\n", steps: [step("a = 1"), step("a = 1 + 1 = 2 and", "length")] }]);
  const [l] = await continueStepwise(cut, [{ prompt: "Q\n", seed: 1 }], {
    schedule: SCHEDULE_PRESETS.gsm8k,
    maxTokens: 100,
  });
  assert.equal(l.text, "a = 1\na = 1 + 1 = 2 and");
  assert.equal(l.finishReason, "length");
});
