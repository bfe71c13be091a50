// The OpenAI-compatible wire format of `stepwise serve`: request bodies of /v1/completions and
// /v1/chat/completions are validated here into one typed GenRequest (every bad field gives a 400 that names it,
// in OpenAI's error JSON), and results are shaped back into OpenAI's response and stream-chunk objects.
//
// Supported: prompt (text, list of texts, token ids, list of token-id lists), messages (chat template), n,
// max_tokens (max_completion_tokens for chat), temperature, top_p, top_k (vLLM's extension; -1 or 0 = off), stop,
// seed, logprobs (the sampled token's log-prob only: completions' logprobs > 1 and chat's top_logprobs > 0, which ask
// for the top alternatives, are refused), stream,
// stream_options.include_usage, ignore_eos (vLLM's extension). Parameters that would change results and are not
// implemented (echo, suffix, best_of != n, penalties, logit_bias, tools) are refused with a 400, never ignored.

import { StepwiseError } from "../core/errors.js";
import type { ChatMessage } from "../model/tokenizer.js";
import type { FinishReason, Generation } from "../model/generate.js";

/** An HTTP error with OpenAI's error body: {"error": {"message", "type", "param", "code"}}. */
export class RequestError extends StepwiseError {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  get type(): string {
    if (this.status === 404) return "not_found_error";
    if (this.status === 413) return "request_too_large";
    if (this.status >= 500) return "server_error";
    return "invalid_request_error";
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** What the server allows and what the model can do. */
export interface ServeLimits {
  modelName: string;
  contextLength: number; // prompt + max_tokens may not exceed it (config.json's max_position_embeddings)
  vocabSize: number;
  maxTokensLimit: number; // largest max_tokens accepted
  maxN: number; // largest n
  maxSequences: number; // prompts * n in one request
}

/** The sampling options one BatchDecoder runs with: requests with equal keys can share a batch. */
export interface SamplingKey {
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  stop: string[];
  ignoreEos: boolean;
}

export interface GenRequest {
  kind: "completion" | "chat";
  prompts: number[][]; // token ids of each prompt
  n: number; // completions of each prompt; choice index = prompt * n + sample
  key: SamplingKey;
  seed: number | null; // choice i samples with sequenceSeed(seed, i); null = a fresh random seed
  logprobs: number | null; // null = none; completions: the requested top count; chat: top_logprobs
  stream: boolean;
  includeUsage: boolean; // stream_options.include_usage
}

/** What the validator needs of a tokenizer (TextTokenizer has it). */
export interface PromptTokenizer {
  encode(text: string): number[];
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string;
  encodeChat(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): number[];
}

type Body = Record<string, unknown>;

const bad = (param: string, message: string) => new RequestError(400, message, param);

/** A field's value, with JSON null read as absent (OpenAI clients send null for "default"). */
function field(body: Body, name: string): unknown {
  const v = body[name];
  return v === null ? undefined : v;
}

function intField(body: Body, name: string, dflt: number, min: number, max: number): number {
  const v = field(body, name) ?? dflt;
  if (typeof v !== "number" || !Number.isInteger(v))
    throw bad(name, `'${name}' must be an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw bad(name, `'${name}' must be between ${min} and ${max}, got ${v}`);
  return v;
}

function numField(body: Body, name: string, dflt: number, ok: (x: number) => boolean, range: string): number {
  const v = field(body, name) ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v))
    throw bad(name, `'${name}' must be a number, got ${JSON.stringify(v)}`);
  if (!ok(v)) throw bad(name, `'${name}' must be ${range}, got ${v}`);
  return v;
}

function boolField(body: Body, name: string, dflt: boolean): boolean {
  const v = field(body, name) ?? dflt;
  if (typeof v !== "boolean") throw bad(name, `'${name}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function stopField(body: Body): string[] {
  const v = field(body, "stop");
  if (v === undefined) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== "string")) {
    throw bad("stop", "'stop' must be a string or a list of strings");
  }
  if (list.length > 16) throw bad("stop", `'stop' may hold at most 16 strings, got ${list.length}`);
  return (list as string[]).filter((s) => s.length > 0);
}

/** Refuses parameters whose non-default values would change results but are not implemented. */
function refuseUnsupported(body: Body): void {
  const zeroOk = ["presence_penalty", "frequency_penalty"];
  for (const k of zeroOk) {
    const v = field(body, k);
    if (v !== undefined && v !== 0) throw bad(k, `'${k}' is not supported by this server (only 0)`);
  }
  if (field(body, "repetition_penalty") !== undefined && field(body, "repetition_penalty") !== 1) {
    throw bad("repetition_penalty", "'repetition_penalty' is not supported by this server (only 1)");
  }
  const bias = field(body, "logit_bias");
  if (bias !== undefined && (typeof bias !== "object" || Object.keys(bias as object).length > 0)) {
    throw bad("logit_bias", "'logit_bias' is not supported by this server");
  }
  if (field(body, "echo") === true) throw bad("echo", "'echo' is not supported by this server");
  if (field(body, "suffix") !== undefined) throw bad("suffix", "'suffix' is not supported by this server");
  for (const k of ["tools", "functions", "response_format", "tool_choice", "function_call"]) {
    if (field(body, k) !== undefined) throw bad(k, `'${k}' is not supported by this server`);
  }
}

/** `model` may be left out (one model is served); when given it must be the served one's id, as vLLM checks. */
function checkModel(body: Body, limits: ServeLimits): void {
  const m = field(body, "model");
  if (m === undefined) return;
  if (typeof m !== "string") throw bad("model", "'model' must be a string (see GET /v1/models)");
  if (m !== limits.modelName) {
    throw new RequestError(
      404,
      `The model '${m}' does not exist; this server serves '${limits.modelName}'`,
      "model",
      "model_not_found",
    );
  }
}

function tokenIds(v: unknown[], param: string, vocab: number): number[] {
  if (v.length === 0) throw bad(param, `'${param}' must not be an empty list of token ids`);
  for (const id of v) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= vocab) {
      throw bad(param, `'${param}' holds token id ${JSON.stringify(id)}, outside the vocabulary [0, ${vocab})`);
    }
  }
  return v as number[];
}

/** prompt: a text, a list of texts, a list of token ids, or a list of such lists. */
function completionPrompts(body: Body, tok: PromptTokenizer, vocab: number): number[][] {
  const p = field(body, "prompt");
  if (p === undefined) throw bad("prompt", "'prompt' is required");
  if (typeof p === "string") return [tok.encode(p)];
  if (!Array.isArray(p) || p.length === 0)
    throw bad("prompt", "'prompt' must be a string, a non-empty list of strings, or token ids");
  if (p.every((x) => typeof x === "number")) return [tokenIds(p, "prompt", vocab)];
  return p.map((x, i) => {
    if (typeof x === "string") return tok.encode(x);
    if (Array.isArray(x)) return tokenIds(x, `prompt[${i}]`, vocab);
    throw bad("prompt", `'prompt[${i}]' must be a string or a list of token ids`);
  });
}

/** messages: [{role, content}] where content is a string or a list of {"type": "text", "text"} parts. */
function chatMessages(body: Body): ChatMessage[] {
  const m = field(body, "messages");
  if (!Array.isArray(m) || m.length === 0)
    throw bad("messages", "'messages' must be a non-empty list of {role, content}");
  return m.map((x, i): ChatMessage => {
    const where = `messages[${i}]`;
    if (!x || typeof x !== "object") throw bad(where, `'${where}' must be an object {role, content}`);
    const { role, content } = x as Body;
    if (typeof role !== "string" || role.length === 0) throw bad(`${where}.role`, `'${where}.role' must be a string`);
    if (typeof content === "string") return { role, content };
    if (content === null || content === undefined) return { role, content: "" };
    if (Array.isArray(content)) {
      const parts = content.map((c, k) => {
        const t = c as Body;
        if (t?.type !== "text" || typeof t.text !== "string") {
          throw bad(
            `${where}.content[${k}]`,
            `'${where}.content[${k}]' must be {"type": "text", "text": ...}; only text is supported`,
          );
        }
        return t.text;
      });
      return { role, content: parts.join("") };
    }
    throw bad(`${where}.content`, `'${where}.content' must be a string or a list of text parts`);
  });
}

function chatPrompt(body: Body, tok: PromptTokenizer): number[] {
  const messages = chatMessages(body);
  try {
    return tok.encodeChat(messages, { addGenerationPrompt: true });
  } catch (e) {
    throw bad("messages", `cannot apply the chat template: ${(e as Error).message}`);
  }
}

function seedField(body: Body): number | null {
  const v = field(body, "seed");
  if (v === undefined) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v))
    throw bad("seed", `'seed' must be an integer, got ${JSON.stringify(v)}`);
  return Number(BigInt.asUintN(32, BigInt(v))); // sequences are seeded from 32 bits
}

/**
 * The sampled tokens' log-probs are computed, the top alternatives are not: completions' logprobs 0 or 1 (what
 * clients send to mean "on") and chat's logprobs: true are served, a request for alternatives is refused.
 */
function logprobsField(body: Body, kind: GenRequest["kind"]): number | null {
  const noTop = "this server computes the sampled token's log-prob only, not the top alternatives";
  if (kind === "completion") {
    if (field(body, "top_logprobs") !== undefined)
      throw bad("top_logprobs", `'top_logprobs' is not a completions parameter; ${noTop} (use 'logprobs': 1)`);
    const v = field(body, "logprobs");
    if (v === undefined || v === false) return null;
    if (v === true) return 0;
    const n = intField(body, "logprobs", 0, 0, 5);
    if (n > 1) throw bad("logprobs", `'logprobs' is ${n}: ${noTop}; use 0 or 1`);
    return 0;
  }
  if (!boolField(body, "logprobs", false)) {
    if (field(body, "top_logprobs") !== undefined) throw bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    return null;
  }
  const top = intField(body, "top_logprobs", 0, 0, 20);
  if (top > 0) throw bad("top_logprobs", `'top_logprobs' is ${top}: ${noTop}; leave it out or use 0`);
  return 0;
}

function streamOptions(body: Body, stream: boolean): boolean {
  const o = field(body, "stream_options");
  if (o === undefined) return false;
  if (!stream) throw bad("stream_options", "'stream_options' is only allowed with 'stream': true");
  if (typeof o !== "object" || Array.isArray(o)) throw bad("stream_options", "'stream_options' must be an object");
  const v = (o as Body).include_usage ?? false;
  if (typeof v !== "boolean")
    throw bad("stream_options.include_usage", "'stream_options.include_usage' must be true or false");
  return v;
}

/** max_tokens (or chat's max_completion_tokens) within the server's limit and the model's context. */
function maxTokensField(body: Body, kind: GenRequest["kind"], prompts: number[][], limits: ServeLimits): number {
  const longest = Math.max(...prompts.map((p) => p.length));
  const room = limits.contextLength - longest;
  if (room < 1) {
    throw bad(
      kind === "chat" ? "messages" : "prompt",
      `the prompt has ${longest} tokens; this model's context is ` + `${limits.contextLength}`,
    );
  }
  const name =
    kind === "chat" && field(body, "max_completion_tokens") !== undefined ? "max_completion_tokens" : "max_tokens";
  const dflt = kind === "completion" ? 16 : Math.min(limits.maxTokensLimit, room);
  const v = intField(body, name, dflt, 0, Number.MAX_SAFE_INTEGER);
  if (v > limits.maxTokensLimit)
    throw bad(name, `'${name}' is ${v}; this server allows at most ${limits.maxTokensLimit}`);
  if (v > room) {
    throw bad(
      name,
      `'${name}' is ${v} but the prompt has ${longest} tokens and the context is ` +
        `${limits.contextLength}: at most ${room} new tokens fit`,
    );
  }
  return v;
}

/** Validates a /v1/completions (kind "completion") or /v1/chat/completions (kind "chat") body. */
export function parseGenRequest(
  raw: unknown,
  kind: GenRequest["kind"],
  tok: PromptTokenizer,
  limits: ServeLimits,
): GenRequest {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw bad("body", "the request body must be a JSON object");
  const body = raw as Body;
  checkModel(body, limits);
  refuseUnsupported(body);
  const prompts = kind === "chat" ? [chatPrompt(body, tok)] : completionPrompts(body, tok, limits.vocabSize);
  const n = intField(body, "n", 1, 1, limits.maxN);
  if (field(body, "best_of") !== undefined && field(body, "best_of") !== n)
    throw bad("best_of", "'best_of' is not supported (only best_of = n)");
  if (prompts.length * n > limits.maxSequences) {
    throw bad(
      "n",
      `${prompts.length} prompt(s) x n=${n} is ${prompts.length * n} sequences; this server allows ` +
        `${limits.maxSequences} per request`,
    );
  }
  const topK = intField(body, "top_k", 0, -1, Number.MAX_SAFE_INTEGER);
  const key: SamplingKey = {
    maxTokens: maxTokensField(body, kind, prompts, limits),
    temperature: numField(body, "temperature", 1, (x) => x >= 0 && x <= 100, "between 0 and 100"),
    topP: numField(body, "top_p", 1, (x) => x > 0 && x <= 1, "in (0, 1]"),
    topK: Math.max(topK, 0),
    stop: stopField(body),
    ignoreEos: boolField(body, "ignore_eos", false),
  };
  const stream = boolField(body, "stream", false);
  return {
    kind,
    prompts,
    n,
    key,
    seed: seedField(body),
    logprobs: logprobsField(body, kind),
    stream,
    includeUsage: streamOptions(body, stream),
  };
}

// --- responses ---

/** What the response shapes need of a tokenizer: the text of one token. */
export interface TokenText {
  tokenText(id: number): string;
}

/** OpenAI's finish_reason, plus vLLM's stop_reason (null for EOS, the stop string for a stop) that tells them apart. */
export function finishFields(
  g: Generation,
  stops: string[],
  fullText: () => string,
): { finish_reason: string; stop_reason: string | null } {
  const r: FinishReason = g.finishReason;
  if (r === "length") return { finish_reason: "length", stop_reason: null };
  if (r === "eos") return { finish_reason: "stop", stop_reason: null };
  const after = fullText().slice(g.text.length);
  return { finish_reason: "stop", stop_reason: stops.find((s) => after.startsWith(s)) ?? stops[0] ?? null };
}

/** Completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset} for tokens [from, to). */
export function completionLogprobs(
  g: Generation,
  tok: TokenText,
  top: number,
  from = 0,
  to = g.tokens.length,
  offset0 = 0,
) {
  const tokens = g.tokens.slice(from, to).map((id) => tok.tokenText(id));
  const lps = g.logprobs.slice(from, to);
  const textOffset: number[] = [];
  let at = offset0;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: lps,
    text_offset: textOffset,
    top_logprobs: top > 0 ? tokens.map((t, i) => ({ [t]: lps[i] })) : null, // the sampled token only
  };
}

/** Chat logprobs: {content: [{token, logprob, bytes, top_logprobs}]} for tokens [from, to). */
export function chatLogprobs(g: Generation, tok: TokenText, top: number, from = 0, to = g.tokens.length) {
  return {
    content: g.tokens.slice(from, to).map((id, i) => {
      const token = tok.tokenText(id);
      const logprob = g.logprobs[from + i];
      const bytes = [...Buffer.from(token, "utf8")];
      return { token, logprob, bytes, top_logprobs: top > 0 ? [{ token, logprob, bytes }] : [] };
    }),
  };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Prompt tokens counted once per prompt (not per choice), as OpenAI and vLLM do; generated tokens of every choice. */
export function usageOf(req: GenRequest, gens: Generation[]): Usage {
  const prompt = req.prompts.reduce((s, p) => s + p.length, 0);
  const completion = gens.reduce((s, g) => s + g.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
