// `stepwise bench serve`: 16 concurrent clients against `stepwise serve` on the tiny preset (random weights), each
// sending its next /v1/completions request as soon as the last one returns (a closed loop). The server runs as a
// child process, as users run it; the clients are plain fetch in this process. After one warm-up request per
// client, requests started in the timed window count: requests_per_s = completed / window, p50_ms and p99_ms are
// their latencies (request sent to body parsed).
//
// Each request: a ~100-character word problem (the built-in tokenizer: one token a character), max_tokens 32,
// temperature 1, ignore_eos (every request generates exactly max_tokens), its own seed.

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { StepwiseError } from "../core/errors.js";
import { writeTinyModel } from "../serve/tiny.js";

export interface ServeBenchResult {
  clients: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  requests: number; // completed in the timed window
  max_tokens: number;
  prompt_tokens: number;
  backend: string;
}

export interface ServeBenchOptions {
  clients?: number; // default 16
  durationMs?: number; // timed window, default 10000 (quick: 2000)
  maxTokens?: number; // per request, default 32
  backend?: "native" | "reference"; // the server's; default its own default
  threads?: number; // the server's native threads
  quick?: boolean; // a smoke test, not a measurement
}

const PROMPT =
  "Question: Tom has 12 apples. He buys 7 more and gives 5 to Ann. How many apples does Tom have now?\nAnswer: ";

/** Percentile p (0-100) of sorted values, nearest rank. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Starts `stepwise serve --port 0` on `dir`; resolves with its base URL once it listens. */
function startServer(dir: string, opts: ServeBenchOptions): Promise<{ child: ChildProcess; url: string }> {
  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/stepwise.js");
  const args = [bin, "serve", "--model", dir, "--port", "0", "--served-model-name", "tiny"];
  if (opts.backend) args.push("--backend", opts.backend);
  if (opts.threads !== undefined) args.push("--threads", String(opts.threads));
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /(http:\/\/\S+\/v1)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on("exit", (code) =>
      reject(new StepwiseError(`stepwise serve exited (${code}) before listening: ${err.trim()}`)),
    );
  });
}

async function request(url: string, seed: number, maxTokens: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "tiny",
      prompt: PROMPT,
      max_tokens: maxTokens,
      temperature: 1,
      ignore_eos: true,
      seed,
    }),
  });
  const body = (await res.json()) as { choices?: unknown[]; error?: { message: string } };
  if (!res.ok || !Array.isArray(body.choices))
    throw new StepwiseError(`the server answered ${res.status}: ${body.error?.message}`);
  return performance.now() - t0;
}

export async function benchServe(opts: ServeBenchOptions = {}): Promise<ServeBenchResult> {
  const clients = opts.clients ?? 16;
  const durationMs = opts.durationMs ?? (opts.quick ? 2000 : 10_000);
  const maxTokens = opts.maxTokens ?? 32;
  const dir = writeTinyModel();
  let child: ChildProcess | null = null;
  try {
    const server = await startServer(dir, opts);
    child = server.child;
    let seed = 0;
    await Promise.all(Array.from({ length: clients }, () => request(server.url, seed++, maxTokens))); // warm-up
    const latencies: number[] = [];
    const start = performance.now();
    const end = start + durationMs;
    let last = start;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < end) {
          latencies.push(await request(server.url, seed++, maxTokens));
          last = performance.now();
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    return {
      clients,
      requests_per_s: latencies.length / ((last - start) / 1000),
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      requests: latencies.length,
      max_tokens: maxTokens,
      prompt_tokens: PROMPT.length + 1,
      backend: opts.backend ?? process.env.STEPWISE_BACKEND ?? "default",
    };
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
