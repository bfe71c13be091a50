// `stepwise serve` against a hostile client (issue #15, item 8): a foreign Host header is refused on loopback (as
// the dashboard does), --api-key is checked the way OpenAI clients send it, requests for top log-prob alternatives
// are refused, and a model whose vocabulary is smaller than its tokenizer is refused at load.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { InputError } from "../core/errors.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import { CompletionServer } from "./server.js";
import { writeTinyModel } from "./tiny.js";

const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.3,
  eos_token_id: 2,
  bos_token_id: 1,
};
const KEY = "sk-test-123";
let model: Llama;
let server: CompletionServer;
let url: string;

before(async () => {
  model = new Llama(CFG, { seed: 3 });
  server = new CompletionServer(model, builtinTokenizer(), { modelName: "m", apiKey: KEY });
  url = await server.listen(0);
});

after(async () => {
  await server.close();
  model.dispose();
});

/** A raw GET with our own Host header (fetch does not let a caller set it). */
function get(pathname: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path: pathname, headers }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

test("a foreign Host header is refused with 403 (DNS rebinding); localhost names are served", async () => {
  const auth = { authorization: `Bearer ${KEY}` };
  const evil = await get("/v1/models", { ...auth, host: "evil.example:8000" });
  assert.equal(evil.status, 403);
  assert.match(JSON.parse(evil.body).error.message, /Host "evil\.example:8000" refused/);
  assert.equal((await get("/health", { host: "evil.example" })).status, 403);
  for (const host of [`localhost:${new URL(url).port}`, "127.0.0.1", "[::1]:80"]) {
    assert.equal((await get("/v1/models", { ...auth, host })).status, 200, host);
  }
});

test("--api-key: the OpenAI client's key is checked; a wrong or missing key is a 401; /health stays open", async () => {
  const good = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
  assert.deepEqual(
    (await good.models.list()).data.map((m) => m.id),
    ["m"],
  );
  const r = await good.completions.create({ model: "m", prompt: "1+1=", max_tokens: 2 });
  assert.equal(r.choices.length, 1);
  const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
  await assert.rejects(
    wrong.completions.create({ model: "m", prompt: "x", max_tokens: 1 }),
    (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === "invalid_api_key",
  );
  const none = await get("/v1/models", { host: "127.0.0.1" });
  assert.equal(none.status, 401);
  assert.match(JSON.parse(none.body).error.message, /Missing API key/);
  assert.equal((await get("/health", { host: "127.0.0.1" })).status, 200);
});

test("top log-prob alternatives are refused, naming the field; the sampled token's log-probs are served", async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
  const messages = [{ role: "user" as const, content: "hi" }];
  await assert.rejects(
    client.chat.completions.create({ model: "m", messages, max_tokens: 2, logprobs: true, top_logprobs: 3 }),
    (e: unknown) =>
      e instanceof OpenAI.BadRequestError && e.param === "top_logprobs" && /top alternatives/.test(e.message),
  );
  await assert.rejects(
    client.completions.create({ model: "m", prompt: "x", max_tokens: 2, logprobs: 2 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "logprobs",
  );
  await assert.rejects(
    client.completions.create({
      model: "m",
      prompt: "x",
      max_tokens: 2,
      top_logprobs: 2,
    } as unknown as OpenAI.CompletionCreateParamsNonStreaming),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "top_logprobs",
  );
  const chat = await client.chat.completions.create({
    model: "m",
    messages,
    max_tokens: 2,
    logprobs: true,
    top_logprobs: 0,
  });
  assert.ok(
    chat.choices[0].logprobs?.content?.every((t) => typeof t.logprob === "number" && t.top_logprobs.length === 0),
  );
  const done = await client.completions.create({ model: "m", prompt: "x", max_tokens: 2, logprobs: 1 });
  assert.equal(done.choices[0].logprobs?.token_logprobs?.length, done.usage?.completion_tokens);
  assert.equal(done.choices[0].logprobs?.top_logprobs, null, "no alternatives are claimed");
});

test("a model whose vocabulary is smaller than its tokenizer is refused at load, by the class and the command", () => {
  const small = new Llama({ ...CFG, vocab_size: 40 }, { seed: 1 });
  try {
    assert.throws(
      () => new CompletionServer(small, builtinTokenizer(), { modelName: "m" }),
      (e: unknown) =>
        e instanceof InputError && /the tokenizer has 100 tokens but the model's vocabulary is 40/.test(e.message),
    );
  } finally {
    small.dispose();
  }
  const dir = writeTinyModel({ config: { ...CFG, vocab_size: 40 } });
  try {
    const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/stepwise.js");
    const r = spawnSync(process.execPath, [bin, "serve", "--model", dir, "--port", "0"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /ids 40\.\.99 have no embedding/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
