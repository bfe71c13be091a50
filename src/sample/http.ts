// A Completer over OpenAI-compatible /v1/completions servers (vLLM, SGLang, llama.cpp server, Ollama, `stepwise
// serve`), so sampling scales out on engines built for it.
//
// - One request per prompt asks for its n completions. A server that ignores n or returns fewer choices gets more
//   requests for the rest, until each prompt has exactly n, each sample once: choices are told apart by their
//   `index`, and a follow-up for samples k.. is seeded from (seed, k) so that it draws new samples.
// - At most `concurrency` requests are in flight over all endpoints; each goes to the endpoint with the fewest
//   outstanding requests (round robin among ties), a retry to another endpoint where there is one.
// - An attempt fails on a timeout (timeoutMs, from sending the request to the parsed body), a 408/409/429/5xx, a
//   dropped connection, or a body that is not the JSON a completion should be (a response with no usable choice
//   included); it is retried up to `retries` times with exponential backoff and full jitter (a server's
//   Retry-After is honoured up to maxBackoffMs). Other 4xx (a bad parameter, an unknown model, a bad key) fail at once.
//
// The official `openai` client is the transport (request shapes, typed errors), with its own retries off: its
// retries stay on one endpoint, its timeout ends when the headers arrive, and it would not retry a malformed body.

import { setMaxListeners } from "node:events";
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { EndpointError, InputError, StepwiseError } from "../core/errors.js";
import type { Completer, Completion, CompletionParams, CompletionRequest, FinishReason } from "./types.js";

export interface HttpCompleterOptions {
  model?: string; // default: the first model that GET /v1/models lists (asked of one endpoint)
  concurrency?: number; // requests in flight over all endpoints, default 16
  timeoutMs?: number; // one attempt, default 300000
  retries?: number; // retries of one request after its first attempt, default 6
  apiKey?: string; // sent as "Authorization: Bearer KEY"; default "EMPTY" (what vLLM expects without --api-key)
  backoffMs?: number; // the first retry waits up to this long (full jitter), default 250; doubles per retry
  maxBackoffMs?: number; // cap of one wait, default 20000
}

export interface HttpCompleter extends Completer {
  completeSettled(requests: CompletionRequest[]): Promise<(Completion[] | Error)[]>;
  readonly endpoints: readonly string[];
  /** The model requests name: opts.model, or the first of /v1/models (asked once). */
  model(): Promise<string>;
}

/** Failures worth another attempt; anything else is thrown at once. */
class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

class Endpoint {
  outstanding = 0;
  constructor(
    readonly url: string,
    readonly client: OpenAI,
  ) {}
}

/** A counting semaphore: at most `size` holders at once, FIFO. */
class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.used < this.size) {
      this.used++;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next)
      next(); // the slot passes straight to the next waiter
    else this.used--;
  }
}

/** "http://host:8000", "http://host:8000/", "http://host:8000/v1" -> "http://host:8000/v1". */
export function baseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(`not a URL: "${url}"`, undefined, "an endpoint looks like http://127.0.0.1:8000/v1");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new InputError(`not an http(s) URL: "${url}"`);
  const s = u.toString().replace(/\/+$/, "");
  return s.endsWith("/v1") ? s : `${s}/v1`;
}

/** The seed of a follow-up request for samples k.. of a prompt: new draws, the same every run. */
export function chunkSeed(seed: number, k: number): number {
  if (k === 0) return seed;
  let x = (seed + Math.imul(k, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createHttpCompleter(urls: string | string[], opts: HttpCompleterOptions = {}): HttpCompleter {
  return new HttpCompleterImpl(Array.isArray(urls) ? urls : [urls], opts);
}

class HttpCompleterImpl implements HttpCompleter {
  readonly endpoints: readonly string[];
  private readonly pool: Endpoint[];
  private readonly slots: Slots;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private modelName: Promise<string> | null = null;
  private resolvedModel: string | null;
  private rr = 0; // round-robin start among equally loaded endpoints

  constructor(urls: string[], opts: HttpCompleterOptions) {
    if (urls.length === 0) throw new InputError("no endpoint URL given");
    const concurrency = opts.concurrency ?? 16;
    const check = (name: string, v: number, min: number) => {
      if (!Number.isInteger(v) || v < min) throw new InputError(`${name} must be an integer >= ${min}, got ${v}`);
    };
    check("concurrency", concurrency, 1);
    this.timeoutMs = opts.timeoutMs ?? 300_000;
    this.retries = opts.retries ?? 6;
    this.backoffMs = opts.backoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 20_000;
    check("timeoutMs", this.timeoutMs, 1);
    check("retries", this.retries, 0);
    this.endpoints = urls.map(baseUrl);
    this.pool = this.endpoints.map(
      (u) =>
        new Endpoint(
          u,
          new OpenAI({
            baseURL: u,
            apiKey: opts.apiKey ?? "EMPTY",
            maxRetries: 0,
            timeout: this.timeoutMs,
          }),
        ),
    );
    this.slots = new Slots(concurrency);
    this.resolvedModel = opts.model ?? null;
    if (opts.model) this.modelName = Promise.resolve(opts.model);
  }

  get name(): string {
    return this.resolvedModel ?? this.endpoints[0];
  }

  model(): Promise<string> {
    this.modelName ??= this.withRetries("GET /models", (ep, signal) => firstModel(ep, signal)).then(
      (m) => (this.resolvedModel = m),
      (e) => {
        this.modelName = null; // ask again next time
        throw e;
      },
    );
    return this.modelName;
  }

  async complete(requests: CompletionRequest[]): Promise<Completion[][]> {
    requests.forEach((r, i) => checkParams(r.params, i));
    const model = await this.model();
    const stop = new AbortController(); // one prompt failing for good stops the others
    // Every attempt in flight listens on it: as many listeners as requests, on purpose (no leak warning).
    setMaxListeners(0, stop.signal);
    try {
      return await Promise.all(
        requests.map((r) =>
          this.fill(model, r, stop.signal).catch((e) => {
            stop.abort();
            throw e;
          }),
        ),
      );
    } finally {
      stop.abort();
    }
  }

  /**
   * Each request on its own: its completions, or the error it failed with after its retries. One prompt failing
   * does not cancel the others, so a caller keeps the finished ones and asks again later for the rest.
   */
  async completeSettled(requests: CompletionRequest[]): Promise<(Completion[] | Error)[]> {
    requests.forEach((r, i) => checkParams(r.params, i));
    let model: string;
    try {
      model = await this.model();
    } catch (e) {
      if (!(e instanceof EndpointError)) throw e;
      return requests.map(() => e);
    }
    const settled = await Promise.allSettled(requests.map((r) => this.fill(model, r)));
    return settled.map((s) => {
      if (s.status === "fulfilled") return s.value;
      if (s.reason instanceof EndpointError) return s.reason;
      throw s.reason; // a refusal (4xx) or a bug: asking again would not help
    });
  }

  /** Requests until the prompt has exactly n completions (servers may return fewer than asked). */
  private async fill(model: string, r: CompletionRequest, cancel?: AbortSignal): Promise<Completion[]> {
    const out: Completion[] = [];
    while (out.length < r.params.n) {
      const want = r.params.n - out.length;
      const body = requestBody(model, r.prompt, r.params, want, out.length);
      const got = await this.withRetries(
        "POST /completions",
        (ep, signal) => completions(ep, body, want, signal),
        cancel,
      );
      out.push(...got); // at least one, at most want
    }
    return out;
  }

  /** Runs one attempt at a time in a concurrency slot, on the least loaded endpoint, retrying what is retryable. */
  private async withRetries<T>(
    what: string,
    attempt: (ep: Endpoint, signal: AbortSignal) => Promise<T>,
    cancel?: AbortSignal,
  ): Promise<T> {
    let last: Endpoint | null = null;
    for (let i = 0; ; i++) {
      await this.slots.acquire();
      const ep = this.pick(last);
      ep.outstanding++;
      let error: RetryableError;
      try {
        if (cancel?.aborted) throw new StepwiseError("cancelled: another prompt of the batch failed");
        return await this.timed(ep, attempt, cancel);
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        error = e;
      } finally {
        ep.outstanding--;
        this.slots.release();
      }
      last = ep;
      if (i >= this.retries) {
        throw new EndpointError(
          `${what} failed ${i + 1} time${i > 0 ? "s" : ""}; last, at ${ep.url}: ${error.message}`,
          "is the server up and not overloaded? raise --retries or --timeout, or lower the concurrency",
        );
      }
      const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** i);
      await sleep(Math.max(Math.random() * ceiling, Math.min(error.retryAfterMs ?? 0, this.maxBackoffMs)));
    }
  }

  /** One attempt with its deadline: an abort from the timer is a (retryable) timeout. */
  private async timed<T>(
    ep: Endpoint,
    attempt: (ep: Endpoint, signal: AbortSignal) => Promise<T>,
    cancel?: AbortSignal,
  ): Promise<T> {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.timeoutMs);
    const onCancel = () => ctl.abort();
    cancel?.addEventListener("abort", onCancel);
    try {
      return await attempt(ep, ctl.signal);
    } catch (e) {
      if (timedOut) throw new RetryableError(`timed out after ${this.timeoutMs} ms`);
      if (cancel?.aborted) throw new StepwiseError("cancelled: another prompt of the batch failed");
      throw classify(e);
    } finally {
      clearTimeout(timer);
      cancel?.removeEventListener("abort", onCancel);
    }
  }

  /** The endpoint with the fewest outstanding requests, round robin among ties; not `avoid` when there is another. */
  private pick(avoid: Endpoint | null): Endpoint {
    const n = this.pool.length;
    let best: Endpoint | null = null;
    for (let j = 0; j < n; j++) {
      const ep = this.pool[(this.rr + j) % n];
      if (ep === avoid && n > 1) continue;
      if (!best || ep.outstanding < best.outstanding) best = ep;
    }
    this.rr = (this.pool.indexOf(best!) + 1) % n;
    return best!;
  }
}

function checkParams(p: CompletionParams, i: number): void {
  const where = `request ${i}`;
  if (!Number.isInteger(p.n) || p.n < 1) throw new InputError(`n must be an integer >= 1, got ${p.n}`, where);
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 0)
    throw new InputError(`maxTokens must be an integer >= 0, got ${p.maxTokens}`, where);
  if (!(p.temperature >= 0)) throw new InputError(`temperature must be >= 0, got ${p.temperature}`, where);
}

/** The /v1/completions body for `want` samples starting at sample k. */
function requestBody(
  model: string,
  prompt: string,
  p: CompletionParams,
  want: number,
  k: number,
): Record<string, unknown> {
  return {
    model,
    prompt,
    n: want,
    max_tokens: p.maxTokens,
    temperature: p.temperature,
    ...(p.topP !== undefined && p.topP < 1 ? { top_p: p.topP } : {}),
    ...(p.topK !== undefined && p.topK > 0 ? { top_k: p.topK } : {}), // vLLM / SGLang / llama.cpp extension
    ...(p.stop && p.stop.length > 0 ? { stop: p.stop } : {}),
    ...(p.seed !== undefined ? { seed: chunkSeed(p.seed >>> 0, k) } : {}),
    ...(p.logprobs ? { logprobs: 1 } : {}), // 1, not 0: some servers read 0 as "off"
  };
}

async function firstModel(ep: Endpoint, signal: AbortSignal): Promise<string> {
  const page = await ep.client.models.list({ signal, maxRetries: 0 });
  const ids = (page.data ?? []).map((m) => m?.id).filter((id): id is string => typeof id === "string");
  if (ids.length === 0) {
    throw new StepwiseError(`${ep.url}/models lists no model`, "name one with the model option (--endpoint-model)");
  }
  return ids[0];
}

/** One POST /completions; its valid choices for samples [0, want), in index order. */
async function completions(
  ep: Endpoint,
  body: Record<string, unknown>,
  want: number,
  signal: AbortSignal,
): Promise<Completion[]> {
  const res: unknown = await ep.client.completions.create(
    body as unknown as OpenAI.CompletionCreateParamsNonStreaming,
    { signal, maxRetries: 0 },
  );
  const choices = (res as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices)) throw new RetryableError("malformed response: no choices list");
  const usage = (res as { usage?: { completion_tokens?: unknown } }).usage;
  const byIndex = new Map<number, Completion>();
  for (const c of choices as Record<string, unknown>[]) {
    const index = c?.index ?? 0;
    if (typeof c?.text !== "string" || !Number.isInteger(index) || (index as number) < 0 || (index as number) >= want)
      continue;
    if (!byIndex.has(index as number)) byIndex.set(index as number, toCompletion(c));
  }
  const out = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
  if (out.length === 0) throw new RetryableError(`no usable choice among ${choices.length} returned`);
  if (out.length === 1 && want === 1 && out[0].tokens === undefined && typeof usage?.completion_tokens === "number") {
    out[0].tokens = usage.completion_tokens;
  }
  return out;
}

/** One choice -> Completion; "stop" with vLLM's stop_reason null is the end-of-sequence token. */
function toCompletion(c: Record<string, unknown>): Completion {
  let finishReason: FinishReason = "stop";
  if (c.finish_reason === "length") finishReason = "length";
  else if (c.finish_reason === "eos" || (c.finish_reason === "stop" && "stop_reason" in c && c.stop_reason === null))
    finishReason = "eos";
  const out: Completion = { text: c.text as string, finishReason };
  const lp = (c.logprobs as { token_logprobs?: unknown } | null | undefined)?.token_logprobs;
  if (Array.isArray(lp)) {
    out.logprobs = lp.map((x) => (typeof x === "number" ? x : NaN));
    out.tokens = lp.length;
  }
  return out;
}

/** A failed attempt: retryable (timeouts, 408/409/429/5xx, connection errors, malformed bodies) or thrown as is. */
function classify(e: unknown): Error {
  if (e instanceof RetryableError) return e;
  if (e instanceof APIUserAbortError) return new RetryableError("aborted");
  if (e instanceof APIConnectionError) return new RetryableError(`connection failed: ${causeOf(e)}`);
  if (e instanceof APIError && typeof e.status === "number") {
    const s = e.status;
    if (s === 408 || s === 409 || s === 429 || s >= 500)
      return new RetryableError(`HTTP ${s}: ${e.message}`, retryAfter(e.headers));
    return new InputError(
      `the endpoint refused the request: HTTP ${s}: ${e.message}`,
      undefined,
      s === 401 || s === 403 ? "check the API key" : s === 404 ? "check the model name and the URL" : undefined,
    );
  }
  if (e instanceof StepwiseError) return e;
  // A body that is not JSON (SyntaxError), a connection dropped while reading it, ...
  return new RetryableError(`bad response: ${(e as Error)?.message ?? e}`);
}

function causeOf(e: Error): string {
  const cause = (e as { cause?: { message?: string; code?: string } }).cause;
  return cause ? `${cause.code ?? ""} ${cause.message ?? ""}`.trim() : e.message;
}

/** Retry-After (seconds or an HTTP date) or retry-after-ms, in ms; null if absent or unreadable. */
function retryAfter(headers: Headers | undefined): number | null {
  const ms = Number(headers?.get("retry-after-ms"));
  if (headers?.get("retry-after-ms") && Number.isFinite(ms)) return ms;
  const v = headers?.get("retry-after");
  if (!v) return null;
  const s = Number(v);
  if (Number.isFinite(s)) return s * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
