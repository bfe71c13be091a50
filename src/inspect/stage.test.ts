// The inspect stages called from TypeScript, no argv: score and credit of a text on micro models (rewards are
// beta * (logprob - ref_logprob) token by token, zero against the policy itself), search on a problems file, and
// config errors that name the key (not a flag).

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { microModelDir } from "../cli/testkit.js";
// Everything from the package's entry point, as a user imports it.
import {
  creditConfig,
  creditText,
  InputError,
  scoreConfig,
  scoreText,
  searchConfig,
  searchFile,
  type StageContext,
} from "../index.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-inspect-stage-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const POLICY = microModelDir(dir, "policy", 1);
const REF = microModelDir(dir, "ref", 2);
const TEXT = "3 + 4 = <<3+4=7>>7\n#### 7";
const backend = "reference";

test("scoreText and creditText from TypeScript: rewards are beta * (logprob - ref_logprob), 0 against itself", async () => {
  const plain = await scoreText(scoreConfig({ model: POLICY, text: TEXT, backend }));
  assert.equal(plain.tokens[0].logprob, null); // BOS
  assert.ok(plain.tokens.every((t) => !("reward" in t)));
  const refOnly = await scoreText(scoreConfig({ model: REF, text: TEXT, backend }));
  const scored = await scoreText(scoreConfig({ model: POLICY, ref: REF, beta: 0.5, text: TEXT, backend }));
  scored.tokens.slice(1).forEach((t, i) => {
    const want = 0.5 * (plain.tokens[i + 1].logprob! - refOnly.tokens[i + 1].logprob!);
    assert.ok(Math.abs(t.reward! - want) < 1e-9, `token ${i + 1}`);
  });

  const html = path.join(dir, "credit.html");
  const c = await creditText(
    creditConfig({ model: POLICY, ref: REF, text: TEXT, question: "Ann has 3 pens.", html, backend }),
  );
  assert.equal(c.prompt, "Ann has 3 pens.\n");
  assert.equal(c.beta, 0.1);
  assert.equal(c.html, html);
  assert.ok(fs.readFileSync(html, "utf8").startsWith("<!DOCTYPE html>"));
  assert.ok(Math.abs(c.steps.reduce((a, s) => a + s.reward, 0) - c.total_reward) < 1e-9);
  const self = await creditText(creditConfig({ model: POLICY, ref: POLICY, text: TEXT, backend }));
  assert.ok(self.tokens.every((t) => t.reward === 0));
  assert.equal(self.html, undefined);
});

test("searchFile from TypeScript: greedy vs beam search with a progress display; records written to out", async () => {
  const problems = path.join(dir, "problems.jsonl");
  fs.writeFileSync(
    problems,
    ["1 + 2", "3 + 4"].map((q, i) => JSON.stringify({ id: `p${i}`, question: q, answer: "#### 3" })).join("\n") + "\n",
  );
  const seen: number[] = [];
  const ctx: StageContext = {
    progress: () => ({ set: (d) => seen.push(d), tick() {}, note() {}, finish() {} }),
  };
  const out = path.join(dir, "search.jsonl");
  const c = searchConfig({
    model: POLICY,
    problems,
    beams: 1,
    expand: 0,
    score: "logprob",
    max_tokens: 8,
    out,
    backend,
  });
  assert.equal(c.ref, null); // logprob needs no reference
  const s = await searchFile(c, ctx);
  assert.equal(s.n, 2);
  assert.equal(s.beam_accuracy, s.greedy_accuracy); // one beam, no samples: greedy decoding
  assert.deepEqual(seen.at(-1), 2);
  assert.equal(fs.readFileSync(out, "utf8").trim().split("\n").length, 2);
});

test("inspect configs from TypeScript: errors name the key, not a flag", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => scoreConfig({ text: "a" }), /^model is required$/],
    [() => scoreConfig({ model: POLICY, text: "a", beta: 0 }), /^beta: expected a number > 0, got 0$/],
    [() => creditConfig({ model: POLICY, text: "a" }), /^ref is required \(the model the policy was trained from\)$/],
    [() => creditConfig({ model: POLICY, ref: REF, text: "a", prompt: "p", question: "q" }), /give prompt or question/],
    [() => searchConfig({ model: POLICY, ref: REF, problems: "p.jsonl" }), /^beams is required$/],
    [
      () => searchConfig({ model: POLICY, problems: "p", beams: 2, score: "best" }),
      /^score: expected reward or logprob/,
    ],
  ];
  for (const [f, msg] of cases) assert.throws(f, (e: unknown) => e instanceof InputError && msg.test(e.message));
});
