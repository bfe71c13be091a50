// The HTTP completer: against `stepwise serve` it gives what local generation gives; against a fault-injecting
// server on 127.0.0.1 (timeouts, stalled bodies, 429, 500, malformed JSON, dropped connections, fewer choices than
// n, duplicate or out-of-range indices) every requested sample comes back exactly once; the concurrency bound holds;
// requests spread over endpoints and skip a dead one; a 400 fails at once, a server that never recovers fails clearly.

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { InputError, StepwiseError } from "../core/errors.js";
import { generate, sequenceSeed } from "../model/generate.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import { CompletionServer } from "../serve/server.js";
import { chunkSeed, createHttpCompleter } from "./http.js";
import type { CompletionParams } from "./types.js";

type Fault =
  | "ok"
  | "slow"
  | "delay"
  | "stall"
  | "429"
  | "500"
  | "malformed"
  | "drop"
  | "fewer"
  | "ignore-n"
  | "dup"
  | "bad-index"
  | "empty"
  | "400";

interface FaultServer {
  url: string;
  requests: number; // POST /v1/completions received
  maxInFlight: number;
  delivered: Set<string>; // texts of choices sent in complete responses
  seeds: (number | undefined)[]; // the seed of each POST /v1/completions
  close(): Promise<void>;
}

/** A /v1/completions server that answers request k with fault plan(k); each choice's text is "PROMPT#serial". */
async function faultServer(
  plan: (k: number) => Fault,
  opts: { latencyMs?: number; model?: string } = {},
): Promise<FaultServer> {
  let serial = 0;
  let inFlight = 0;
  const s: FaultServer = {
    url: "",
    requests: 0,
    maxInFlight: 0,
    delivered: new Set(),
    seeds: [],
    close: async () => {},
  };
  const choices = (prompt: string, idx: number[], logprobs: boolean) =>
    idx.map((index) => {
      const text = `${prompt}#${serial++}`;
      return { index, text, finish_reason: "length", logprobs: logprobs ? { token_logprobs: [-1, -2] } : null };
    });
  const send = (res: http.ServerResponse, body: { prompt: string; logprobs?: number }, idx: number[]) => {
    const cs = choices(body.prompt, idx, Boolean(body.logprobs));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ object: "text_completion", choices: cs }), () =>
      cs.forEach((c) => s.delivered.add(c.text)),
    );
  };
  const server = http.createServer((req, res) => {
    if (req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ object: "list", data: [{ id: opts.model ?? "fake-model" }, { id: "second" }] }));
    }
    const k = s.requests++;
    inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, inFlight);
    res.on("close", () => inFlight--);
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () =>
      setTimeout(() => {
        const body = JSON.parse(raw) as { prompt: string; n: number; logprobs?: number; seed?: number };
        s.seeds.push(body.seed);
        const all = Array.from({ length: body.n }, (_, i) => i);
        const json = (status: number, v: unknown, h: http.OutgoingHttpHeaders = {}) => {
          res.writeHead(status, { "content-type": "application/json", ...h });
          res.end(JSON.stringify(v));
        };
        switch (plan(k)) {
          case "ok":
            return send(res, body, all);
          case "slow":
            return setTimeout(() => send(res, body, all), 30);
          case "delay":
            return; // never answers: the client's timeout must fire
          case "stall":
            return res.writeHead(200, { "content-type": "application/json" }).write('{"choices": [');
          case "429":
            return json(429, { error: { message: "slow down" } }, { "retry-after": "0" });
          case "500":
            return json(500, { error: { message: "boom" } });
          case "400":
            return json(400, { error: { message: "bad temperature", param: "temperature" } });
          case "malformed":
            return res.writeHead(200, { "content-type": "application/json" }).end('{"choices": [{"text": ');
          case "drop":
            return req.socket.destroy();
          case "fewer":
            return send(res, body, all.filter((i) => i % 2 === 1).reverse()); // odd indices, out of order
          case "ignore-n":
            return send(res, body, [0]);
          case "dup":
            return send(res, body, [0, 0, ...all]); // index 0 three times: only one may be used
          case "bad-index":
            return send(res, body, [body.n + 3, -1]); // nothing usable
          case "empty":
            return json(200, { choices: [] });
        }
      }, opts.latencyMs ?? 0),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return s;
}

const params = (n: number, extra: Partial<CompletionParams> = {}): CompletionParams => ({
  n,
  temperature: 1,
  maxTokens: 8,
  seed: 1,
  ...extra,
});

/** Every prompt has exactly n completions, each its own prompt's, no sample twice, each one the server sent. */
function assertExactlyOnce(out: { text: string }[][], prompts: string[], n: number, server: FaultServer): void {
  assert.equal(out.length, prompts.length);
  const seen = new Set<string>();
  out.forEach((cs, i) => {
    assert.equal(cs.length, n, `prompt ${i} has ${cs.length} completions, wanted ${n}`);
    for (const c of cs) {
      assert.ok(c.text.startsWith(`${prompts[i]}#`), `"${c.text}" belongs to prompt ${i}`);
      assert.ok(!seen.has(c.text), `"${c.text}" appears twice`);
      assert.ok(server.delivered.has(c.text), `"${c.text}" was never sent`);
      seen.add(c.text);
    }
  });
}

test("against stepwise serve: the completions local generation gives, finish reasons and logprobs included", async () => {
  const cfg: LlamaConfig = {
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
  const model = new Llama(cfg, { seed: 4 });
  const tok = builtinTokenizer();
  const server = new CompletionServer(model, tok, { modelName: "tiny" });
  const url = await server.listen(0);
  try {
    const completer = createHttpCompleter(url, { concurrency: 4 });
    assert.equal(await completer.model(), "tiny");
    const prompts = ["1+1=", "Ann has 5 cats. ", "9*9="];
    const p = params(3, { maxTokens: 24, stop: ["0"], logprobs: true, seed: 42 });
    const out = await completer.complete(prompts.map((prompt) => ({ prompt, params: p })));
    assert.equal(completer.name, "tiny");
    prompts.forEach((prompt, i) => {
      const want = generate(
        model,
        tok,
        [0, 1, 2].map((j) => ({ prompt, seed: sequenceSeed(chunkSeed(42, 0), j) })),
        { maxTokens: 24, stop: ["0"], temperature: 1 },
      );
      assert.deepEqual(
        out[i].map((c) => c.text),
        want.map((g) => g.text),
      );
      assert.deepEqual(
        out[i].map((c) => c.finishReason),
        want.map((g) => g.finishReason),
      );
      // f32 sums differ in the last bits with the batch's size (other prompts ran beside these on the server)
      out[i].forEach((c, j) => {
        assert.equal(c.logprobs?.length, want[j].logprobs.length);
        c.logprobs!.forEach((x, t) =>
          assert.ok(Math.abs(x - want[j].logprobs[t]) < 1e-5, `logprob ${x} vs ${want[j].logprobs[t]}`),
        );
      });
    });
  } finally {
    await server.close();
    model.dispose();
  }
});

test("faults (timeouts, stalls, 429, 500, malformed JSON, drops, fewer choices than n): every sample exactly once", async () => {
  const cycle: Fault[] = [
    "ok",
    "delay",
    "429",
    "fewer",
    "500",
    "malformed",
    "drop",
    "ignore-n",
    "stall",
    "dup",
    "empty",
    "bad-index",
    "ok",
    "fewer",
  ];
  const server = await faultServer((k) => cycle[k % cycle.length]);
  try {
    const completer = createHttpCompleter(`${server.url}/`, {
      concurrency: 4,
      timeoutMs: 150,
      retries: 30,
      backoffMs: 2,
      maxBackoffMs: 20,
    });
    const prompts = Array.from({ length: 12 }, (_, i) => `p${i}`);
    const out = await completer.complete(prompts.map((prompt) => ({ prompt, params: params(5, { logprobs: true }) })));
    assertExactlyOnce(out, prompts, 5, server);
    assert.ok(out.flat().every((c) => c.logprobs?.length === 2));
    assert.equal(completer.name, "fake-model", "the first model of /v1/models");
    assert.ok(server.requests > 30, `${server.requests} requests: the faults were exercised`);
  } finally {
    await server.close();
  }
});

test("a server that ignores n: more requests until each prompt has n, seeded anew for each follow-up", async () => {
  const server = await faultServer(() => "ignore-n");
  try {
    const completer = createHttpCompleter(server.url, { model: "any", retries: 0 });
    const out = await completer.complete([{ prompt: "q", params: params(4, { seed: 9 }) }]);
    assertExactlyOnce(out, ["q"], 4, server);
    assert.equal(server.requests, 4);
    assert.deepEqual(
      server.seeds,
      [0, 1, 2, 3].map((k) => chunkSeed(9, k)),
    );
    assert.equal(new Set(server.seeds).size, 4, "follow-ups draw with different seeds");
    assert.equal(server.seeds[0], 9, "the first request carries the caller's seed");
  } finally {
    await server.close();
  }
});

test("at most `concurrency` requests in flight", async () => {
  const server = await faultServer(() => "slow");
  try {
    const completer = createHttpCompleter(server.url, { model: "m", concurrency: 3 });
    const prompts = Array.from({ length: 24 }, (_, i) => `c${i}`);
    const out = await completer.complete(prompts.map((prompt) => ({ prompt, params: params(2) })));
    assertExactlyOnce(out, prompts, 2, server);
    assert.equal(server.maxInFlight, 3);
  } finally {
    await server.close();
  }
});

test("two endpoints share the load; a dead endpoint is skipped by the retries", async () => {
  const a = await faultServer(() => "slow");
  const b = await faultServer(() => "slow");
  const dead = await faultServer(() => "ok");
  await dead.close(); // its port now refuses connections
  try {
    const prompts = Array.from({ length: 40 }, (_, i) => `lb${i}`);
    const completer = createHttpCompleter([a.url, b.url], { model: "m", concurrency: 4 });
    const out = await completer.complete(prompts.map((prompt) => ({ prompt, params: params(1) })));
    assert.equal(out.flat().length, 40);
    assert.equal(a.requests + b.requests, 40);
    assert.ok(a.requests >= 15 && b.requests >= 15, `split ${a.requests} / ${b.requests}`);

    const withDead = createHttpCompleter([dead.url, a.url], { model: "m", concurrency: 2, backoffMs: 1 });
    const before = a.requests;
    const out2 = await withDead.complete(prompts.slice(0, 10).map((prompt) => ({ prompt, params: params(1) })));
    assert.equal(out2.flat().length, 10);
    assert.equal(a.requests - before, 10);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a 400 fails at once with the server's message; a server that never recovers fails after the retries", async () => {
  const refusing = await faultServer(() => "400");
  const broken = await faultServer(() => "500");
  try {
    const c1 = createHttpCompleter(refusing.url, { model: "m", retries: 5 });
    await assert.rejects(
      c1.complete([{ prompt: "x", params: params(1) }]),
      (e: unknown) => e instanceof InputError && /HTTP 400/.test(e.message) && /bad temperature/.test(e.message),
    );
    assert.equal(refusing.requests, 1);
    const c2 = createHttpCompleter(broken.url, { model: "m", retries: 3, backoffMs: 1 });
    await assert.rejects(
      c2.complete([{ prompt: "x", params: params(1) }]),
      (e: unknown) => e instanceof StepwiseError && /failed 4 times/.test(e.message) && /HTTP 500/.test(e.message),
    );
    assert.equal(broken.requests, 4);
    assert.throws(() => createHttpCompleter("ftp://x"), InputError);
  } finally {
    await refusing.close();
    await broken.close();
  }
});

test("many prompts in flight at once print no MaxListenersExceededWarning (issue #15)", async () => {
  const server = await faultServer(() => "slow");
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  try {
    const completer = createHttpCompleter(server.url, { model: "m", concurrency: 32 });
    const prompts = Array.from({ length: 40 }, (_, i) => `p${i}`);
    const out = await completer.complete(prompts.map((prompt) => ({ prompt, params: params(1) })));
    assertExactlyOnce(out, prompts, 1, server);
    await new Promise((r) => setTimeout(r, 10)); // warnings are emitted on a later tick
    assert.deepEqual(warnings, []);
  } finally {
    process.off("warning", onWarning);
    await server.close();
  }
});
