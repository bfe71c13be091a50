// The local engine as a Completer: a model folder (loadModel + TextTokenizer) and KV-cache batched generation.
// Requests that share sampling parameters run together in one generate() call (its batches sort rows by prompt
// length); each completion draws from its own seeded stream, so a completion does not depend on what it was
// batched with.

import { InputError } from "../core/errors.js";
import { yieldToEventLoop } from "../core/interrupt.js";
import { Rng } from "../core/rng.js";
import { generate, sequenceSeed, type GenerateRequest } from "../model/generate.js";
import { loadModel, loadModelTokenizer, type LoadOptions } from "../model/hub.js";
import type { Llama } from "../model/llama.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import type { Completer, Completion, CompletionParams, CompletionRequest } from "./types.js";

export interface LocalCompleterOptions {
  batchSize?: number; // rows generated together, default 16
  seed?: number; // seeds of requests that name none come from this stream, default 0
}

export class LocalCompleter implements Completer {
  readonly name: string;
  private readonly batchSize: number;
  private readonly seeds: Rng;

  constructor(
    readonly model: Llama,
    readonly tokenizer: TextTokenizer,
    opts: LocalCompleterOptions & { name?: string } = {},
  ) {
    this.batchSize = opts.batchSize ?? 16;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new InputError(`batchSize must be an integer >= 1, got ${this.batchSize}`);
    }
    this.seeds = new Rng(opts.seed ?? 0);
    this.name = opts.name ?? `local:${model.source ?? "model"}`;
  }

  /** A completer over a Hugging Face model folder (config.json, safetensors, tokenizer.json) or a .gguf file. */
  static load(dir: string, opts: LocalCompleterOptions & LoadOptions = {}): LocalCompleter {
    const tokenizer = loadModelTokenizer(dir);
    return new LocalCompleter(loadModel(dir, opts), tokenizer, { ...opts, name: `local:${dir}` });
  }

  async complete(requests: CompletionRequest[]): Promise<Completion[][]> {
    requests.forEach((r, i) => checkParams(r.params, i));
    const out = requests.map((r) => new Array<Completion>(r.params.n));
    for (const group of groupBySampling(requests)) {
      await yieldToEventLoop(); // generation is synchronous: a turn of the event loop per batch lets Ctrl-C be heard
      const p = requests[group[0]].params;
      const rows: GenerateRequest[] = [];
      const where: [number, number][] = []; // (request, completion) of each row
      for (const i of group) {
        const { n, seed } = requests[i].params;
        const base = seed ?? this.seeds.nextU32();
        for (let j = 0; j < n; j++) {
          rows.push({ prompt: requests[i].prompt, seed: sequenceSeed(base, j) });
          where.push([i, j]);
        }
      }
      const gens = generate(this.model, this.tokenizer, rows, {
        maxTokens: p.maxTokens,
        temperature: p.temperature,
        topK: p.topK,
        topP: p.topP,
        stop: p.stop,
        batchSize: this.batchSize,
      });
      gens.forEach((g, k) => {
        const [i, j] = where[k];
        out[i][j] = {
          text: g.text,
          finishReason: g.finishReason,
          tokens: g.tokens.length,
          ...(requests[i].params.logprobs ? { logprobs: g.logprobs } : {}),
        };
      });
    }
    return out;
  }

  close(): void {
    this.model.dispose();
  }
}

function checkParams(p: CompletionParams, i: number): void {
  const bad = (what: string) => new InputError(`request ${i}: ${what}`);
  if (!Number.isInteger(p.n) || p.n < 1) throw bad(`n must be an integer >= 1, got ${p.n}`);
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 0)
    throw bad(`maxTokens must be an integer >= 0, got ${p.maxTokens}`);
  if (p.seed !== undefined && !Number.isInteger(p.seed)) throw bad(`seed must be an integer, got ${p.seed}`);
}

/** Indices of requests grouped by everything generate() takes once per call (all but prompt, n, seed, logprobs). */
function groupBySampling(requests: CompletionRequest[]): number[][] {
  const groups = new Map<string, number[]>();
  requests.forEach((r, i) => {
    const p = r.params;
    const key = JSON.stringify([p.temperature, p.topP ?? 1, p.topK ?? 0, p.maxTokens, p.stop ?? []]);
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  return [...groups.values()];
}
