// `stepwise score` end to end: the JSON contract of DESIGN.md (whole sequence with BOS first and logprob null,
// total_logprob), rewards beta*log(pi/pi_ref) against a reference, and clear errors with exit code 2.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { referenceBackend } from "../backend/index.js";
import { loadModel, saveModel } from "../model/hub.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { scoreTokens } from "../model/score.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import type { SequenceScore as ScoreResult } from "../inspect/credit.js";

const BIN = fileURLToPath(new URL("../../bin/stepwise.js", import.meta.url));
const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 64,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.2,
  bos_token_id: 1,
  eos_token_id: 2,
};
const TEXT = "Tom has 3 apples.\n3+4=7";

function modelDir(seed: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-score-"));
  const m = new Llama(CFG, { seed, backend: referenceBackend() });
  saveModel(m, dir);
  builtinTokenizer().save(dir);
  m.dispose();
  return dir;
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "score", ...args], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_BACKEND: "reference" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("stepwise score --json: every token, BOS first with logprob null, log-probs of the model", () => {
  const dir = modelDir(1);
  const r = cli("--model", dir, "--text", TEXT, "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as ScoreResult;
  const tok = builtinTokenizer();
  const ids = tok.encode(TEXT);
  assert.equal(ids[0], tok.bosId);
  assert.deepEqual(
    got.tokens.map((t) => t.id),
    ids,
  );
  assert.equal(got.tokens[0].logprob, null);
  assert.equal(got.tokens[0].text, "<s>");
  assert.equal(got.tokens.map((t) => t.text).join(""), "<s>" + TEXT);
  assert.ok(got.tokens.every((t) => !("reward" in t)));
  const m = loadModel(dir, { backend: referenceBackend() });
  const [want] = scoreTokens(m, [ids]);
  m.dispose();
  got.tokens.slice(1).forEach((t, i) => assert.ok(Math.abs(t.logprob! - want[i]) < 1e-6));
  const total = got.tokens.reduce((s, t) => s + (t.logprob ?? 0), 0);
  assert.ok(Math.abs(got.total_logprob - total) < 1e-9);
  fs.rmSync(dir, { recursive: true });
});

test("stepwise score --ref: reward = beta * (logprob - ref logprob) per token, null for BOS", () => {
  const dir = modelDir(1);
  const refDir = modelDir(2);
  const plain = JSON.parse(cli("--model", dir, "--text", TEXT, "--json").out) as ScoreResult;
  const refOnly = JSON.parse(cli("--model", refDir, "--text", TEXT, "--json").out) as ScoreResult;
  const r = cli("--model", dir, "--ref", refDir, "--beta", "0.5", "--text", TEXT, "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as ScoreResult;
  assert.equal(got.tokens[0].reward, null);
  got.tokens.slice(1).forEach((t, i) => {
    const want = 0.5 * (plain.tokens[i + 1].logprob! - refOnly.tokens[i + 1].logprob!);
    assert.ok(Math.abs(t.reward! - want) < 1e-9, `token ${i + 1}`);
  });
  const self = JSON.parse(cli("--model", dir, "--ref", dir, "--text", TEXT, "--json").out) as ScoreResult;
  assert.ok(self.tokens.slice(1).every((t) => t.reward === 0));
  assert.equal(self.total_reward, 0);
  const table = cli("--model", dir, "--ref", refDir, "--text", TEXT);
  assert.equal(table.code, 0);
  assert.match(table.out, /total logprob -?\d+\.\d+, total reward/);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(refDir, { recursive: true });
});

test("stepwise score: missing options and bad folders exit 2 with a message", () => {
  const noText = cli("--model", "/nonexistent");
  assert.equal(noText.code, 2);
  assert.match(noText.err, /--text/);
  const noDir = cli("--model", "/nonexistent/dir", "--text", "a");
  assert.equal(noDir.code, 2);
  assert.match(noDir.err, /\/nonexistent\/dir/);
  const beta = cli("--model", "/x", "--text", "a", "--beta", "-1");
  assert.equal(beta.code, 2);
  assert.match(beta.err, /--beta/);
});
