// `stepwise serve` driven by the official `openai` client: models, completions, chat, streaming, n, seeds, stop,
// logprobs and usage give exactly what local generation gives; concurrent requests share batches without changing
// any text; bad requests get 400s naming the field; the command starts, serves and stops on SIGTERM.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { generate, sequenceSeed, type GenerateOptions } from "../model/generate.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import { CompletionServer } from "./server.js";
import { writeTinyModel } from "./tiny.js";

const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 256,
  tie_word_embeddings: false,
  attention_bias: false,
  initializer_range: 0.3,
  eos_token_id: 2,
  bos_token_id: 1,
};
const NAME = "tiny-test";
const tok = builtinTokenizer();
let model: Llama;
let server: CompletionServer;
let url: string;
let client: OpenAI;

before(async () => {
  model = new Llama(CFG, { seed: 3 });
  server = new CompletionServer(model, tok, { modelName: NAME, maxTokensLimit: 200, maxBodyBytes: 4096 });
  url = await server.listen(0);
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "EMPTY", maxRetries: 0 });
});

after(async () => {
  await server.close();
  model.dispose();
});

/** What local generation gives for choice i of a seeded request (the server seeds it with sequenceSeed(seed, i)). */
function expected(prompt: string | number[], seed: number, n: number, opts: GenerateOptions) {
  return generate(
    model,
    tok,
    Array.from({ length: n }, (_, i) => ({ prompt, seed: sequenceSeed(seed, i) })),
    opts,
  );
}

test("GET /v1/models lists the served model", async () => {
  const page = await client.models.list();
  assert.deepEqual(
    page.data.map((m) => m.id),
    [NAME],
  );
  assert.equal((await client.models.retrieve(NAME)).id, NAME);
});

test("completions: n choices, each exactly what local generation gives for its seed, with usage", async () => {
  const prompt = "Tom has 3 apples. ";
  const r = await client.completions.create({ model: NAME, prompt, n: 3, max_tokens: 12, temperature: 1, seed: 7 });
  const want = expected(prompt, 7, 3, { maxTokens: 12, temperature: 1 });
  assert.deepEqual(
    r.choices.map((c) => c.index),
    [0, 1, 2],
  );
  assert.deepEqual(
    r.choices.map((c) => c.text),
    want.map((g) => g.text),
  );
  assert.deepEqual(
    r.choices.map((c) => c.finish_reason),
    want.map((g) => (g.finishReason === "length" ? "length" : "stop")),
  );
  const completionTokens = want.reduce((s, g) => s + g.tokens.length, 0);
  assert.deepEqual(r.usage, {
    prompt_tokens: tok.encode(prompt).length,
    completion_tokens: completionTokens,
    total_tokens: tok.encode(prompt).length + completionTokens,
  });
  const again = await client.completions.create({ model: NAME, prompt, n: 3, max_tokens: 12, temperature: 1, seed: 7 });
  assert.deepEqual(
    again.choices.map((c) => c.text),
    r.choices.map((c) => c.text),
    "same seed, same text",
  );
});

test("completions: several prompts (text and token ids), greedy, stop strings and logprobs", async () => {
  const greedy = generate(model, tok, ["12+5="], { maxTokens: 20, temperature: 0, eosIds: [] })[0];
  const stopChar = greedy.text[4];
  const r = await client.completions.create({
    model: NAME,
    prompt: ["12+5=", tok.encode("7*8=")] as unknown as string[],
    max_tokens: 20,
    temperature: 0,
    stop: [stopChar],
    logprobs: 1,
    ignore_eos: true,
  } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.choices.length, 2);
  const first = r.choices[0];
  assert.equal(first.text, greedy.text.slice(0, greedy.text.indexOf(stopChar)));
  assert.equal(first.finish_reason, "stop");
  assert.equal((first as unknown as { stop_reason: string }).stop_reason, stopChar);
  const want = generate(model, tok, ["12+5="], { maxTokens: 20, temperature: 0, eosIds: [], stop: [stopChar] })[0];
  const lps = first.logprobs?.token_logprobs ?? [];
  assert.equal(lps.length, want.logprobs.length);
  lps.forEach((x, t) => assert.ok(Math.abs(x - want.logprobs[t]) < 1e-5, `logprob ${x} vs ${want.logprobs[t]}`));
  assert.equal(first.logprobs?.tokens?.length, want.tokens.length);
  const second = generate(model, tok, [tok.encode("7*8=")], {
    maxTokens: 20,
    temperature: 0,
    eosIds: [],
    stop: [stopChar],
  })[0];
  assert.equal(r.choices[1].text, second.text);
});

test("chat completions use the tokenizer's chat template", async () => {
  const messages = [{ role: "user" as const, content: "What is 2+2?" }];
  const r = await client.chat.completions.create({
    model: NAME,
    messages,
    max_tokens: 10,
    seed: 5,
    n: 2,
    logprobs: true,
  });
  const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
  const want = expected(ids, 5, 2, { maxTokens: 10 });
  assert.deepEqual(
    r.choices.map((c) => c.message.content),
    want.map((g) => g.text),
  );
  assert.equal(r.choices[0].message.role, "assistant");
  const lps = r.choices[0].logprobs?.content?.map((t) => t.logprob) ?? [];
  assert.equal(lps.length, want[0].logprobs.length);
  lps.forEach((x, t) => assert.ok(Math.abs(x - want[0].logprobs[t]) < 1e-5, `logprob ${x} vs ${want[0].logprobs[t]}`));
  assert.equal(r.usage?.prompt_tokens, ids.length);
});

test("streaming: completion and chat chunks add up to the non-streamed text; usage and [DONE] at the end", async () => {
  const prompt = "Sam buys 4 pens. ";
  const params = { model: NAME, prompt, n: 2, max_tokens: 24, seed: 11, stop: ["ab", "7"] };
  const whole = await client.completions.create(params);
  const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const texts = ["", ""];
  const finish: (string | null)[] = [null, null];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      assert.equal(finish[c.index], null, "no text after a choice finished");
      texts[c.index] += c.text;
      finish[c.index] = c.finish_reason ?? null;
    }
    usage = chunk.usage ?? usage;
  }
  assert.deepEqual(
    texts,
    whole.choices.map((c) => c.text),
  );
  assert.deepEqual(
    finish,
    whole.choices.map((c) => c.finish_reason),
  );
  assert.deepEqual(usage, whole.usage);

  const messages = [{ role: "user" as const, content: "Count: 1 2 3" }];
  const chatWhole = await client.chat.completions.create({ model: NAME, messages, max_tokens: 16, seed: 2 });
  const chat = await client.chat.completions.create({ model: NAME, messages, max_tokens: 16, seed: 2, stream: true });
  let content = "";
  let role: string | undefined;
  for await (const chunk of chat) {
    role ??= chunk.choices[0]?.delta.role;
    content += chunk.choices[0]?.delta.content ?? "";
  }
  assert.equal(role, "assistant");
  assert.equal(content, chatWhole.choices[0].message.content);
});

test("streaming never sends text that a stop string later cuts off", async () => {
  const greedy = generate(model, tok, ["5-3="], { maxTokens: 30, temperature: 0, eosIds: [] })[0];
  const stop = greedy.text.slice(6, 9); // three characters, found at 6 or earlier
  const cut = greedy.text.indexOf(stop);
  const stream = await client.completions.create({
    model: NAME,
    prompt: "5-3=",
    max_tokens: 30,
    temperature: 0,
    stop: [stop],
    stream: true,
    ignore_eos: true,
  } as OpenAI.CompletionCreateParamsStreaming);
  const pieces: string[] = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    pieces.push(chunk.choices[0].text);
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(pieces.join(""), greedy.text.slice(0, cut));
  assert.equal(finish, "stop");
  assert.ok(pieces.length > 2, `${pieces.length} chunks: the text came in pieces`);
});

test("concurrent requests are batched together and get the same text as alone", async () => {
  const before = server.stats();
  const prompts = Array.from({ length: 8 }, (_, i) => `Problem ${i}: `);
  const alone = prompts.map((p, i) => expected(p, 100 + i, 2, { maxTokens: 16 }).map((g) => g.text));
  const rs = await Promise.all(
    prompts.map((prompt, i) => client.completions.create({ model: NAME, prompt, n: 2, max_tokens: 16, seed: 100 + i })),
  );
  assert.deepEqual(
    rs.map((r) => r.choices.map((c) => c.text)),
    alone,
  );
  const s = server.stats();
  assert.ok(s.batches - before.batches < 8, `8 requests ran in ${s.batches - before.batches} batches`);
  assert.ok(s.maxRows > 2, `largest batch ${s.maxRows} rows`);
});

test("bad requests get OpenAI-style 400s that name the field", async () => {
  const base = { model: NAME, prompt: "hi", max_tokens: 4 };
  const cases: [Record<string, unknown>, string][] = [
    [{ temperature: -1 }, "temperature"],
    [{ top_p: 0 }, "top_p"],
    [{ max_tokens: 201 }, "max_tokens"],
    [{ max_tokens: 250, prompt: "x".repeat(10) }, "max_tokens"], // past the context of 256
    [{ max_tokens: 2.5 }, "max_tokens"],
    [{ n: 0 }, "n"],
    [{ stop: 3 }, "stop"],
    [{ seed: "x" }, "seed"],
    [{ echo: true }, "echo"],
    [{ prompt: undefined }, "prompt"],
    [{ prompt: [1, 2, 1000] }, "prompt"],
    [{ logprobs: 9 }, "logprobs"],
    [{ presence_penalty: 0.5 }, "presence_penalty"],
  ];
  for (const [patch, param] of cases) {
    await assert.rejects(
      client.completions.create({ ...base, ...patch } as unknown as OpenAI.CompletionCreateParamsNonStreaming),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === param && /'|prompt/.test(e.message),
      `expected a 400 naming ${param} for ${JSON.stringify(patch)}`,
    );
  }
  await assert.rejects(
    client.chat.completions.create({ model: NAME, messages: [] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "messages",
  );
  await assert.rejects(
    client.completions.create({ ...base, model: "other" }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && e.param === "model",
  );
});

test("raw HTTP: invalid JSON 400, body over the limit 413, wrong method 405, unknown route 404", async () => {
  const post = (p: string, body: string) =>
    fetch(`${url}${p}`, { method: "POST", body, headers: { "content-type": "application/json" } });
  const bad = await post("/v1/completions", "{not json");
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /not valid JSON/);
  const big = await post("/v1/completions", JSON.stringify({ model: NAME, prompt: "x".repeat(5000) }));
  assert.equal(big.status, 413);
  assert.equal(((await big.json()) as { error: { type: string } }).error.type, "request_too_large");
  assert.equal((await fetch(`${url}/v1/completions`)).status, 405);
  assert.equal((await fetch(`${url}/v2/nothing`)).status, 404);
  assert.equal((await fetch(`${url}/health`)).status, 200);
});

test("a client that goes away mid-stream ends its batch early; no buffer leaks", async () => {
  const live = model.embed.backend.liveBuffers();
  const steps = server.stats().steps;
  const stream = await client.completions.create({
    model: NAME,
    prompt: "long ",
    max_tokens: 200,
    stream: true,
    ignore_eos: true,
  } as OpenAI.CompletionCreateParamsStreaming);
  let chunks = 0;
  for await (const _ of stream) if (++chunks === 3) break; // closes the connection
  for (let i = 0; i < 100 && model.embed.backend.liveBuffers() !== live; i++)
    await new Promise((res) => setTimeout(res, 5));
  assert.equal(model.embed.backend.liveBuffers(), live, "the batch's KV cache is freed");
  assert.ok(server.stats().steps - steps < 150, `ran ${server.stats().steps - steps} of 200 steps`);
  const r = await client.completions.create({ model: NAME, prompt: "next ", max_tokens: 4 });
  assert.equal(r.choices.length, 1);
});

test("stepwise serve: starts on --port 0, serves /v1/models, exits 0 on SIGTERM", async () => {
  const dir = writeTinyModel({ config: CFG });
  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/stepwise.js");
  const child = spawn(process.execPath, [bin, "serve", "--model", dir, "--port", "0", "--served-model-name", "m"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out);
      });
      child.on("exit", (code) => reject(new Error(`exited ${code} before listening`)));
    });
    const base = /(http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(line)![1];
    const models = (await (await fetch(`${base}/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ["m"],
    );
    const code = await new Promise<number | null>((resolve) => {
      child.on("exit", resolve);
      child.kill("SIGTERM");
    });
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
