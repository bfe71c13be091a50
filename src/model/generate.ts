// Batched generation with a KV cache: prefill once, then one token per row per step, sampled on the host from the
// last slot's logits (temperature, top-k, top-p), with stop strings, EOS, per-sequence seeds, per-token log-probs
// and a per-step temperature hook for step-controlled sampling (a step ends at a newline).
//
// Prompts of different lengths share one batch left-padded (Llama.forwardCached): every row's next token sits in
// the same cache slot, padding is masked, and each row's rotary positions count its own tokens, so a row's tokens do
// not depend on the rows beside it. Each sequence draws from its own Rng, seeded from (seed, sequence index) unless
// the request names a seed: the same seed gives the same text whatever the batch size or composition.
//
// Legend: B rows in a batch, P longest prompt, S cache slots (P + max tokens), V vocab.

import { InputError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { tensor, tidy } from "../engine/tensor.js";
import type { KVCache, Llama } from "./llama.js";

/** What generation needs of a tokenizer (TextTokenizer has it). */
export interface GenTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  readonly eosId?: number | null;
  readonly padId?: number | null;
}

export type FinishReason = "stop" | "length" | "eos";

export interface GenerateRequest {
  prompt: string | number[]; // text (encoded with the tokenizer, BOS added) or token ids
  seed?: number; // this sequence's seed; default derived from (options.seed, its index)
}

export interface GenerateOptions {
  maxTokens?: number; // new tokens per sequence, default 256
  temperature?: number; // default 1; 0 = greedy (argmax)
  topK?: number; // keep the k most likely tokens; default 0 = off
  topP?: number; // keep the smallest set of tokens holding this much probability; default 1 = off
  stop?: string[]; // stop strings, matched on the decoded text; the text ends before the first one found
  seed?: number; // default 0
  /** Ids that end a sequence; default the tokenizer's EOS and config.json's eos_token_id; [] generates to maxTokens. */
  eosIds?: number[];
  /**
   * The temperature of every token of generated step i (0-based, counted from firstStep): overrides temperature.
   * A step ends with the token whose text completes stepDelimiter; the next token starts the next step.
   */
  stepTemperature?: (step: number, sequence: number) => number;
  stepDelimiter?: string; // default "\n"
  firstStep?: number; // index of the first generated step (continuing a solution after k steps), default 0
  /** End a sequence (finish "stop") once this many steps have ended; its text then ends with the delimiter. */
  maxSteps?: number;
  batchSize?: number; // rows run together, default 16
  /** Called after each decode step with the number of sequences finished so far. */
  onProgress?: (finished: number, total: number) => void;
}

export interface Generation {
  text: string; // the completion, cut before a stop string; special tokens (EOS) are not shown
  /** Every sampled token, EOS and the tokens of a stop string included. */
  tokens: number[];
  /**
   * log p(token | prefix) of each sampled token under the model's own distribution: softmax of the raw logits
   * (temperature 1, no top-k/top-p), whatever temperature sampled it.
   */
  logprobs: number[];
  finishReason: FinishReason;
  promptTokens: number;
  steps: number; // generated steps ended by the delimiter
}

/** Generates one completion per request, batched; results in request order. */
export function generate(
  model: Llama,
  tokenizer: GenTokenizer | null,
  requests: (string | number[] | GenerateRequest)[],
  opts: GenerateOptions = {},
): Generation[] {
  const reqs = requests.map((r) => (typeof r === "string" || Array.isArray(r) ? { prompt: r } : r));
  const prompts = reqs.map((r, i) => promptIds(tokenizer, r.prompt, i));
  const batchSize = opts.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError(`batchSize must be an integer >= 1, got ${batchSize}`);
  // Similar lengths together waste less padding; each row's result does not depend on its batch.
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length || a - b);
  const out = new Array<Generation>(reqs.length);
  let finished = 0;
  for (let i = 0; i < order.length; i += batchSize) {
    const idx = order.slice(i, i + batchSize);
    const dec = new BatchDecoder(
      model,
      tokenizer,
      idx.map((j) => ({ ids: prompts[j], index: j, seed: reqs[j].seed })),
      opts,
    );
    try {
      while (!dec.done) {
        dec.step();
        opts.onProgress?.(finished + dec.finishedCount, reqs.length);
      }
    } finally {
      dec.dispose();
    }
    dec.results().forEach((g, k) => (out[idx[k]] = g));
    finished += idx.length;
  }
  return out;
}

function promptIds(tokenizer: GenTokenizer | null, prompt: string | number[], i: number): number[] {
  let ids: number[];
  if (typeof prompt === "string") {
    if (!tokenizer) throw new InputError(`prompt ${i} is text but no tokenizer was given`, undefined, "pass token ids");
    ids = tokenizer.encode(prompt);
  } else ids = prompt;
  if (ids.length === 0) throw new InputError(`prompt ${i} has no tokens`, undefined, "a prompt needs at least BOS");
  return ids;
}

/** The seed of sequence `index` under a run seed: independent streams, whatever the batching. */
export function sequenceSeed(seed: number, index: number): number {
  return mix32((mix32(seed >>> 0) + Math.imul(index + 1, 0x9e3779b9)) >>> 0);
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** One sequence being generated. */
interface Row {
  index: number; // the sequence's index (seed, hook)
  prompt: number[];
  rng: Rng;
  gen: Generation;
  detok: Detokenizer | null;
  searchFrom: number; // text offset from which stop strings may still start
  stepFrom: number; // text offset from which the next delimiter is searched
  done: boolean;
}

/**
 * The rows of one batch, stepped one token at a time: the first step() prefills the prompts, each later one
 * feeds every live row's last token. A server can interleave step() calls with other work and read the rows'
 * partial results (results()) between them. Owns its KV cache: call dispose().
 */
export class BatchDecoder {
  private readonly rows: Row[];
  private cache: KVCache;
  private live: number[]; // the row in each cache row: finished rows are dropped once they are half the batch
  private readonly eos: Set<number>;
  private readonly maxTokens: number;
  private readonly stops: string[];
  private readonly delimiter: string;
  private readonly scratch: Sampler;
  private started = false;

  constructor(
    private readonly model: Llama,
    tokenizer: GenTokenizer | null,
    seqs: { ids: number[]; index: number; seed?: number }[],
    private readonly opts: GenerateOptions = {},
  ) {
    this.maxTokens = opts.maxTokens ?? 256;
    this.stops = (opts.stop ?? []).filter((s) => s.length > 0);
    this.delimiter = opts.stepDelimiter ?? "\n";
    validate(opts, this.maxTokens, this.delimiter);
    if (this.stops.length > 0 && !tokenizer) throw new InputError("stop strings need a tokenizer to decode the text");
    if (seqs.length === 0) throw new InputError("nothing to generate: no prompts");
    const V = model.config.vocab_size;
    for (const s of seqs) {
      const bad = s.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
      if (bad !== undefined)
        throw new InputError(`prompt ${s.index}: token id ${bad} is outside the vocabulary [0, ${V})`);
    }
    this.eos = new Set(opts.eosIds ?? defaultEos(model, tokenizer));
    this.rows = seqs.map((s) => ({
      index: s.index,
      prompt: s.ids,
      rng: new Rng(s.seed ?? sequenceSeed(opts.seed ?? 0, s.index)),
      gen: { text: "", tokens: [], logprobs: [], finishReason: "length", promptTokens: s.ids.length, steps: 0 },
      detok: tokenizer ? new Detokenizer(tokenizer, s.ids) : null,
      searchFrom: 0,
      stepFrom: 0,
      done: this.maxTokens === 0,
    }));
    const P = Math.max(...seqs.map((s) => s.ids.length));
    this.cache = model.newCache(seqs.length, P + Math.max(this.maxTokens - 1, 0));
    this.live = this.rows.map((_, i) => i);
    this.scratch = new Sampler(V);
  }

  get done(): boolean {
    return this.rows.every((r) => r.done);
  }

  get finishedCount(): number {
    return this.rows.filter((r) => r.done).length;
  }

  /** One forward (the prefill first) and one sampled token for every live row. */
  step(): void {
    if (this.done) return;
    const rows = this.live.map((i) => this.rows[i]);
    const B = rows.length;
    let ids: Int32Array;
    let valid: Int32Array;
    if (!this.started) {
      const P = Math.max(...rows.map((r) => r.prompt.length));
      ids = new Int32Array(B * P);
      valid = new Int32Array(B * P);
      rows.forEach((r, b) => {
        const pad = P - r.prompt.length; // left padding: the last prompt token in slot P - 1 of every row
        ids.set(r.prompt, b * P + pad);
        valid.fill(1, b * P + pad, (b + 1) * P);
      });
      this.started = true;
    } else {
      ids = new Int32Array(rows.map((r) => (r.done ? 0 : r.gen.tokens[r.gen.tokens.length - 1])));
      valid = new Int32Array(rows.map((r) => (r.done ? 0 : 1)));
    }
    const T = ids.length / B;
    const logits = tidy(() => {
      const x = tensor(ids, [B, T], "i32", this.model.embed.backend); // (B, T)
      return this.model.forwardCached(x, this.cache, { valid, lastOnly: true }).toArray(); // (B, 1, V) on the host
    });
    const V = this.model.config.vocab_size;
    rows.forEach((r, b) => {
      if (!r.done) this.accept(r, logits.subarray(b * V, (b + 1) * V));
    });
    this.compact();
  }

  /** Once half the cache's rows have finished, moves the others to a smaller cache (one copy of their slots). */
  private compact(): void {
    const keep = this.live.flatMap((i, b) => (this.rows[i].done ? [] : [b]));
    if (keep.length === 0 || keep.length > this.live.length / 2) return;
    const next = this.cache.select(keep);
    this.cache.dispose();
    this.cache = next;
    this.live = keep.map((b) => this.live[b]);
  }

  /** Samples row r's next token from its logits (V) and updates its text and finish state. */
  private accept(r: Row, logits: ArrayLike<number>): void {
    const o = this.opts;
    const step = (o.firstStep ?? 0) + r.gen.steps;
    const temperature = o.stepTemperature ? o.stepTemperature(step, r.index) : (o.temperature ?? 1);
    const id = this.scratch.sample(logits, r.rng, temperature, o.topK ?? 0, o.topP ?? 1);
    r.gen.tokens.push(id);
    r.gen.logprobs.push(this.scratch.logprob(logits, id));
    if (this.eos.has(id)) {
      this.finish(r, "eos");
      return;
    }
    if (r.detok) {
      r.gen.text += r.detok.push(id);
      if (this.checkText(r)) return;
    }
    if (r.gen.tokens.length >= this.maxTokens) this.finish(r, "length");
  }

  /** Counts ended steps and looks for stop strings in the new text; true when the row finished. */
  private checkText(r: Row): boolean {
    const g = r.gen;
    let cut = -1; // where the text ends if it stops now
    for (const s of this.stops) {
      const at = g.text.indexOf(s, r.searchFrom);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    const longest = Math.max(0, ...this.stops.map((s) => s.length));
    r.searchFrom = Math.max(r.searchFrom, g.text.length - longest + 1);
    for (
      let at = g.text.indexOf(this.delimiter, r.stepFrom);
      at >= 0 && (cut < 0 || at < cut);
      at = g.text.indexOf(this.delimiter, r.stepFrom)
    ) {
      r.stepFrom = at + this.delimiter.length;
      g.steps++;
      if (this.opts.maxSteps !== undefined && g.steps >= this.opts.maxSteps) {
        g.text = g.text.slice(0, r.stepFrom);
        this.finish(r, "stop");
        return true;
      }
    }
    if (cut < 0) return false;
    g.text = g.text.slice(0, cut);
    this.finish(r, "stop");
    return true;
  }

  private finish(r: Row, reason: FinishReason): void {
    r.gen.finishReason = reason;
    r.done = true;
    if (reason !== "stop" && r.detok) {
      r.gen.text += r.detok.flush(); // text held back for an incomplete character
      this.checkText(r); // a stop string in it still cuts the text (and makes the reason "stop")
    }
  }

  /** Each sequence's result so far (final once `done`), in the order the sequences were given. */
  results(): Generation[] {
    return this.rows.map((r) => r.gen);
  }

  dispose(): void {
    this.cache.dispose();
  }
}

function validate(o: GenerateOptions, maxTokens: number, delimiter: string): void {
  const bad = (what: string) => new InputError(what);
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw bad(`maxTokens must be an integer >= 0, got ${maxTokens}`);
  if (o.temperature !== undefined && !(o.temperature >= 0)) throw bad(`temperature must be >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0))
    throw bad(`topK must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw bad(`topP must be in (0, 1], got ${o.topP}`);
  if (delimiter.length === 0) throw bad("stepDelimiter must not be empty");
  if (o.maxSteps !== undefined && !(Number.isInteger(o.maxSteps) && o.maxSteps >= 1))
    throw bad(`maxSteps must be an integer >= 1, got ${o.maxSteps}`);
}

function defaultEos(model: Llama, tokenizer: GenTokenizer | null): number[] {
  const ids = new Set<number>();
  if (tokenizer?.eosId !== undefined && tokenizer.eosId !== null) ids.add(tokenizer.eosId);
  const e = model.config.eos_token_id;
  for (const id of Array.isArray(e) ? e : e === undefined || e === null ? [] : [e]) ids.add(id);
  return [...ids];
}

/**
 * Incremental decoding: text of each new token, decoded with a few tokens of context before it (a decoder may
 * drop a leading space or merge bytes at a sequence's start), held back while it ends in an incomplete character.
 */
export class Detokenizer {
  private ids: number[];
  private prefixAt: number; // ids[prefixAt, readAt) are context whose text was already emitted
  private readAt: number;

  constructor(
    private readonly tok: GenTokenizer,
    prompt: number[],
  ) {
    this.ids = [...prompt];
    this.readAt = prompt.length;
    this.prefixAt = Math.max(0, prompt.length - 4);
  }

  /** The text that token `id` adds (possibly "" while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const before = this.tok.decode(this.ids.slice(this.prefixAt, this.readAt));
    const now = this.tok.decode(this.ids.slice(this.prefixAt));
    if (now.length <= before.length || now.endsWith("\uFFFD") || !now.startsWith(before)) return "";
    this.prefixAt = this.readAt;
    this.readAt = this.ids.length;
    return now.slice(before.length);
  }

  /** Whatever text is still held back (at the end of a sequence). */
  flush(): string {
    if (this.readAt === this.ids.length) return "";
    const before = this.tok.decode(this.ids.slice(this.prefixAt, this.readAt));
    const now = this.tok.decode(this.ids.slice(this.prefixAt));
    this.readAt = this.ids.length;
    return now.startsWith(before) ? now.slice(before.length) : "";
  }
}

/**
 * Host-side sampling from one row of logits (V) in expected O(V): temperature, then top-k (quickselect), then
 * top-p on the renormalised top-k (a mass-quickselect finds the smallest set holding that much probability).
 * Scratch arrays are reused across calls.
 */
export class Sampler {
  private readonly w: Float64Array; // (V) unnormalised probabilities exp((l - max) / temperature)
  private readonly idx: Int32Array; // (V) candidate token ids, partitioned in place

  constructor(readonly vocab: number) {
    this.w = new Float64Array(vocab);
    this.idx = new Int32Array(vocab);
  }

  /** log softmax(logits)[id] at temperature 1. */
  logprob(logits: ArrayLike<number>, id: number): number {
    let m = -Infinity;
    for (let j = 0; j < this.vocab; j++) if (logits[j] > m) m = logits[j];
    let z = 0;
    for (let j = 0; j < this.vocab; j++) z += Math.exp(logits[j] - m);
    return logits[id] - m - Math.log(z);
  }

  sample(logits: ArrayLike<number>, rng: Rng, temperature: number, topK: number, topP: number): number {
    const V = this.vocab;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) {
      throw new InputError(`temperature must be a finite number >= 0, got ${temperature}`);
    }
    let m = -Infinity;
    let arg = 0;
    for (let j = 0; j < V; j++) {
      if (logits[j] > m) {
        m = logits[j];
        arg = j;
      }
    }
    if (Number.isNaN(m) || m === -Infinity)
      throw new InputError("the model produced logits with no finite maximum (NaN?)");
    if (temperature === 0 || topK === 1) return arg;
    const w = this.w;
    const idx = this.idx;
    for (let j = 0; j < V; j++) {
      w[j] = Math.exp((logits[j] - m) / temperature);
      idx[j] = j;
    }
    let n = V;
    if (topK > 0 && topK < V) n = selectTop(idx, w, topK);
    if (topP < 1) {
      let total = 0;
      for (let i = 0; i < n; i++) total += w[idx[i]];
      n = selectMass(idx, w, n, topP * total);
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += w[idx[i]];
    let u = rng.next() * total;
    for (let i = 0; i < n; i++) {
      u -= w[idx[i]];
      if (u < 0) return idx[i];
    }
    return idx[n - 1]; // rounding left u >= 0 after the last candidate
  }
}

/**
 * Three-way partition of idx[lo, hi) by weight around pivot p: [> p][== p][< p]. Returns the ends of the first
 * two parts.
 */
function partition(idx: Int32Array, w: Float64Array, lo: number, hi: number, p: number): [number, number] {
  let gt = lo; // idx[lo, gt) > p
  let i = lo; // idx[gt, i) == p
  let lt = hi; // idx[lt, hi) < p
  while (i < lt) {
    const x = w[idx[i]];
    if (x > p) {
      [idx[gt], idx[i]] = [idx[i], idx[gt]];
      gt++;
      i++;
    } else if (x < p) {
      lt--;
      [idx[i], idx[lt]] = [idx[lt], idx[i]];
    } else i++;
  }
  return [gt, lt];
}

function pivotOf(idx: Int32Array, w: Float64Array, lo: number, hi: number): number {
  const a = w[idx[lo]];
  const b = w[idx[(lo + hi) >> 1]];
  const c = w[idx[hi - 1]];
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
}

/** Moves the k largest weights' ids to idx[0, k) (quickselect, expected O(n)); returns k. */
export function selectTop(idx: Int32Array, w: Float64Array, k: number): number {
  let lo = 0;
  let hi = idx.length;
  while (hi - lo > 1) {
    const [gt, lt] = partition(idx, w, lo, hi, pivotOf(idx, w, lo, hi));
    if (k < gt) hi = gt;
    else if (k <= lt)
      break; // the boundary falls among equal weights
    else lo = lt;
  }
  return k;
}

/**
 * Moves the smallest set of largest weights whose sum reaches `target` to idx[0, m) among idx[0, n) (a quickselect
 * on mass, expected O(n)); returns m (at least 1).
 */
export function selectMass(idx: Int32Array, w: Float64Array, n: number, target: number): number {
  let lo = 0;
  let hi = n;
  let need = target;
  while (hi > lo) {
    const [gt, lt] = partition(idx, w, lo, hi, pivotOf(idx, w, lo, hi));
    let above = 0;
    for (let i = lo; i < gt; i++) above += w[idx[i]];
    if (gt > lo && above >= need) {
      hi = gt; // the set lies among the larger ones
      continue;
    }
    need -= above;
    const p = w[idx[gt]];
    const take = Math.min(lt - gt, Math.max(1, Math.ceil(need / p)));
    if (take < lt - gt || take * p >= need) return Math.max(1, gt + take);
    need -= (lt - gt) * p;
    lo = lt;
  }
  return Math.max(1, lo);
}
