// `stepwise serve`: an OpenAI-compatible HTTP server over one model, on Node's built-in http module.
//
//   GET  /v1/models                the served model: its id is the Hugging Face name or the folder's name, unless
//                                  named otherwise (--served-model-name); requests may leave `model` out
//   GET  /v1/models/{id}
//   POST /v1/completions           prompt(s) -> n choices each; stream: SSE chunks, then `data: [DONE]`
//   POST /v1/chat/completions      messages through the tokenizer's chat template
//   GET  /health                   200 {"status": "ok"}
//
// Bodies are read up to maxBodyBytes (413 beyond), validated by protocol.ts (400s naming the field), and turned into
// scheduler jobs: concurrent requests with the same sampling options decode in one batch. Choice i of a request
// samples with sequenceSeed(seed, i), so a seeded request gives the same text alone or batched with others.

import http from "node:http";
import nodePath from "node:path";
import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { InputError } from "../core/errors.js";
import { LOOPBACK, isLoopbackHost } from "../core/loopback.js";
import { sequenceSeed, type Generation } from "../model/generate.js";
import { snapshotName } from "../model/hubcache.js";
import type { Llama } from "../model/llama.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import {
  RequestError,
  chatLogprobs,
  completionLogprobs,
  finishFields,
  parseGenRequest,
  usageOf,
  type GenRequest,
  type ServeLimits,
} from "./protocol.js";
import { Scheduler, type Job, type SchedulerOptions, type SchedulerStats } from "./scheduler.js";

export interface ServeOptions extends SchedulerOptions {
  modelName: string; // the id of /v1/models; a request that names a model must name this one
  maxTokensLimit?: number; // largest max_tokens, default 2048
  maxBodyBytes?: number; // largest request body, default 1 MiB
  maxN?: number; // largest n, default 128
  maxSequences?: number; // prompts * n in one request, default 256
  apiKey?: string; // requests must send "Authorization: Bearer KEY" (what OpenAI clients send); /health is open
}

type Res = http.ServerResponse;

/**
 * The id clients expect for a --model path: the Hugging Face name of a hub cache snapshot (what `--model owner/name`
 * resolves to), else the folder's (or .gguf file's) name, as a client would call it.
 */
export function defaultModelName(where: string): string {
  return snapshotName(where)?.repo ?? nodePath.basename(nodePath.resolve(where));
}

export class CompletionServer {
  readonly http: http.Server;
  readonly scheduler: Scheduler;
  readonly limits: ServeLimits;
  private readonly maxBodyBytes: number;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly apiKeyHash: Buffer | null;
  private loopbackOnly = true;

  constructor(
    readonly model: Llama,
    readonly tokenizer: TextTokenizer,
    opts: ServeOptions,
  ) {
    // Token ids at or past the model's vocabulary have no embedding: every request would fail. Refused here.
    if (tokenizer.vocabSize > model.config.vocab_size) {
      throw new InputError(
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ` +
          `${model.config.vocab_size}: ids ${model.config.vocab_size}..${tokenizer.vocabSize - 1} have no embedding`,
        undefined,
        "serve the tokenizer the model was trained with (config.json's vocab_size must cover tokenizer.json)",
      );
    }
    if (opts.apiKey !== undefined && opts.apiKey === "") throw new InputError("the API key is empty");
    this.apiKeyHash = opts.apiKey === undefined ? null : digest(opts.apiKey);
    this.scheduler = new Scheduler(model, tokenizer, opts);
    this.maxBodyBytes = opts.maxBodyBytes ?? 1 << 20;
    this.limits = {
      modelName: opts.modelName,
      contextLength: model.config.max_position_embeddings,
      vocabSize: model.config.vocab_size,
      maxTokensLimit: opts.maxTokensLimit ?? 2048,
      maxN: opts.maxN ?? 128,
      maxSequences: opts.maxSequences ?? 256,
    };
    this.http = http.createServer((req, res) => void this.handle(req, res));
  }

  /** Starts listening (port 0 picks a free port); resolves with the base URL, e.g. http://127.0.0.1:8000. */
  listen(port: number, host = "127.0.0.1"): Promise<string> {
    this.loopbackOnly = LOOPBACK.has(host);
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(port, host, () => {
        this.http.off("error", reject);
        const a = this.http.address() as AddressInfo;
        resolve(`http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  /** Stops accepting requests, fails the unfinished ones and closes every connection. */
  close(): Promise<void> {
    this.scheduler.close();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  private async handle(req: http.IncomingMessage, res: Res): Promise<void> {
    try {
      const path = new URL(req.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "");
      const method = req.method ?? "GET";
      const allow = (m: string) => {
        if (method !== m) throw new RequestError(405, `${method} is not allowed on ${path}; use ${m}`);
      };
      if (this.loopbackOnly && !isLoopbackHost(req.headers.host)) {
        throw new RequestError(
          403,
          `Host "${req.headers.host ?? ""}" refused: this server listens on loopback and ` +
            "answers requests for localhost only",
          null,
          "host_not_allowed",
        );
      }
      if (path === "/health") return sendJson(res, 200, { status: "ok" });
      this.authorize(req);
      if (path === "/v1/models") {
        allow("GET");
        return sendJson(res, 200, { object: "list", data: [this.modelCard()] });
      }
      if (path.startsWith("/v1/models/")) {
        allow("GET");
        const id = decodeURIComponent(path.slice("/v1/models/".length));
        if (id !== this.limits.modelName)
          throw new RequestError(404, `The model '${id}' does not exist`, "model", "model_not_found");
        return sendJson(res, 200, this.modelCard());
      }
      if (path === "/v1/completions" || path === "/v1/chat/completions") {
        allow("POST");
        const body = await readJson(req, this.maxBodyBytes);
        const g = parseGenRequest(
          body,
          path === "/v1/completions" ? "completion" : "chat",
          this.tokenizer,
          this.limits,
        );
        return await (g.stream ? this.stream(g, res) : this.respond(g, res));
      }
      throw new RequestError(
        404,
        `no route ${path}; this server has /v1/models, /v1/completions, /v1/chat/completions`,
      );
    } catch (e) {
      sendError(req, res, e);
    }
  }

  /** With an API key: "Authorization: Bearer KEY", compared in constant time. */
  private authorize(req: http.IncomingMessage): void {
    if (!this.apiKeyHash) return;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!m || !timingSafeEqual(digest(m[1].trim()), this.apiKeyHash)) {
      throw new RequestError(
        401,
        m ? "Incorrect API key provided." : "Missing API key: send 'Authorization: Bearer KEY'.",
        null,
        "invalid_api_key",
      );
    }
  }

  private modelCard() {
    return {
      id: this.limits.modelName,
      object: "model",
      created: this.created,
      owned_by: "stepwise",
      max_model_len: this.limits.contextLength,
    };
  }

  /** A scheduler job for the request's prompts x n rows, cancelled if the client goes away first. */
  private job(g: GenRequest, res: Res): { job: Job; finish: () => void } {
    const base = g.seed ?? randomInt(2 ** 32);
    const rows = g.prompts.flatMap((ids, p) =>
      Array.from({ length: g.n }, (_, j) => ({ ids, seed: sequenceSeed(base, p * g.n + j) })),
    );
    const job: Job = { key: g.key, rows };
    let finished = false;
    res.on("close", () => {
      if (!finished) this.scheduler.cancel(job);
    });
    return { job, finish: () => (finished = true) };
  }

  private async respond(g: GenRequest, res: Res): Promise<void> {
    const { job, finish } = this.job(g, res);
    const gens = await this.scheduler.submit(job);
    finish();
    const id = `${g.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
    const choices = gens.map((gen, i) => {
      const fin = finishFields(gen, g.key.stop, () => this.tokenizer.decode(gen.tokens));
      if (g.kind === "completion") {
        const logprobs = g.logprobs === null ? null : completionLogprobs(gen, this.tokenizer, g.logprobs);
        return { index: i, text: gen.text, logprobs, ...fin };
      }
      const logprobs = g.logprobs === null ? null : chatLogprobs(gen, this.tokenizer, g.logprobs);
      return { index: i, message: { role: "assistant", content: gen.text }, logprobs, ...fin };
    });
    sendJson(res, 200, {
      id,
      object: g.kind === "chat" ? "chat.completion" : "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: this.limits.modelName,
      choices,
      usage: usageOf(g, gens),
    });
  }

  /** Server-sent events: a chunk per choice whenever it has new text, its finish, usage if asked, then [DONE]. */
  private async stream(g: GenRequest, res: Res): Promise<void> {
    const { job, finish } = this.job(g, res);
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    const id = `${g.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
    const head = {
      id,
      object: g.kind === "chat" ? "chat.completion.chunk" : "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: this.limits.modelName,
    };
    const send = (chunk: object) => res.write(`data: ${JSON.stringify({ ...head, ...chunk })}\n\n`);
    const emitter = new ChunkEmitter(g, this.tokenizer, (choice) => send({ choices: [choice] }));
    job.onStep = (gens, done) => emitter.update(gens, done);
    try {
      const gens = await this.scheduler.submit(job);
      finish();
      emitter.update(
        gens,
        gens.map(() => true),
      );
      if (g.includeUsage) send({ choices: [], usage: usageOf(g, gens) });
    } catch (e) {
      finish();
      if (res.destroyed) return;
      const err = e instanceof RequestError ? e : new RequestError(500, `generation failed: ${(e as Error).message}`);
      res.write(`data: ${JSON.stringify(err.body())}\n\n`);
    }
    res.end("data: [DONE]\n\n");
  }
}

/**
 * Streams each choice's text as it grows. Until a choice ends, its last (longest stop string - 1) characters are
 * held back: a stop string found later cuts the text there at the earliest, so nothing sent is ever taken back.
 */
class ChunkEmitter {
  private readonly sentChars: number[];
  private readonly sentTokens: number[];
  private readonly ended: boolean[];
  private readonly holdBack: number;

  constructor(
    private readonly g: GenRequest,
    private readonly tok: TextTokenizer,
    private readonly emit: (choice: object) => void,
  ) {
    const rows = g.prompts.length * g.n;
    this.sentChars = new Array(rows).fill(0);
    this.sentTokens = new Array(rows).fill(0);
    this.ended = new Array(rows).fill(false);
    this.holdBack = Math.max(0, ...g.key.stop.map((s) => s.length - 1));
  }

  update(gens: readonly (Generation | null)[], done: readonly boolean[]): void {
    gens.forEach((gen, i) => {
      if (gen && !this.ended[i]) this.choice(i, gen, done[i]);
    });
  }

  private choice(i: number, gen: Generation, done: boolean): void {
    let end = done ? gen.text.length : Math.max(this.sentChars[i], gen.text.length - this.holdBack);
    if (!done && end > this.sentChars[i] && isHighSurrogate(gen.text.charCodeAt(end - 1))) end--; // never split a pair
    const text = gen.text.slice(this.sentChars[i], end);
    const from = this.sentTokens[i];
    const to = gen.tokens.length;
    if (text.length === 0 && !done && !(this.g.logprobs !== null && to > from)) return;
    const fin = done
      ? finishFields(gen, this.g.key.stop, () => this.tok.decode(gen.tokens))
      : { finish_reason: null, stop_reason: null };
    const lp = this.g.logprobs;
    if (this.g.kind === "completion") {
      const logprobs = lp === null ? null : completionLogprobs(gen, this.tok, lp, from, to, this.sentChars[i]);
      this.emit({ index: i, text, logprobs, ...fin });
    } else {
      const delta = this.sentChars[i] === 0 && from === 0 ? { role: "assistant", content: text } : { content: text };
      const logprobs = lp === null ? null : chatLogprobs(gen, this.tok, lp, from, to);
      this.emit({ index: i, delta, logprobs, ...fin });
    }
    this.sentChars[i] = end;
    this.sentTokens[i] = to;
    this.ended[i] = done;
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** The request body as JSON, read up to `limit` bytes (413 beyond, before reading it when Content-Length says so). */
function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = () => new RequestError(413, `the request body is larger than this server's limit of ${limit} bytes`);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.pause();
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (e) {
        reject(new RequestError(400, `the request body is not valid JSON (${(e as Error).message})`));
      }
    });
  });
}

function sendJson(res: Res, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** OpenAI's error JSON; unexpected errors are 500s. A 413 closes the connection (its body was not read). */
function sendError(req: http.IncomingMessage, res: Res, e: unknown): void {
  if (res.destroyed) return;
  const err = e instanceof RequestError ? e : new RequestError(500, `internal error: ${(e as Error)?.message ?? e}`);
  if (res.headersSent) {
    res.end();
    return;
  }
  if (err.status === 413) {
    res.on("finish", () => req.destroy());
    sendJson(res, 413, err.body(), { Connection: "close" });
    return;
  }
  sendJson(res, err.status, err.body(), err.status === 405 ? { Allow: "GET, POST" } : {});
}
