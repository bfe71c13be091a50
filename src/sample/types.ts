// The one interface every sampler implements: the local engine (src/sample/local.ts) and any OpenAI-compatible
// /v1/completions server (src/sample/http.ts). Step-controlled sampling, the sample stage and the pair builders
// are written against it, so generation can move to vLLM / SGLang / llama.cpp server / Ollama unchanged.

export type FinishReason = "stop" | "length" | "eos";

export interface CompletionParams {
  n: number; // completions of this prompt
  temperature: number; // 0 = greedy
  topP?: number; // default 1 (off)
  topK?: number; // default 0 (off); not every server supports it
  maxTokens: number;
  stop?: string[]; // the text ends before the first stop string found
  seed?: number; // same seed, same text (where the engine supports seeds)
  logprobs?: boolean; // per-token log-probs of the sampled tokens
}

export interface CompletionRequest {
  prompt: string;
  params: CompletionParams;
}

export interface Completion {
  text: string;
  finishReason: FinishReason;
  tokens?: number; // generated tokens, when known
  logprobs?: number[]; // one per generated token, when asked for
}

export interface Completer {
  /** A name for logs and records: "local:DIR" or the endpoint's model. */
  readonly name: string;
  /** Completions for each request, in order: result[i] has requests[i].params.n entries. */
  complete(requests: CompletionRequest[]): Promise<Completion[][]>;
  /**
   * Optional: each request on its own, an EndpointError in place of the completions of a request that kept
   * failing (the others are kept). Samplers over unreliable servers (HTTP) implement it; any other error is thrown.
   */
  completeSettled?(requests: CompletionRequest[]): Promise<(Completion[] | Error)[]>;
  close?(): Promise<void> | void;
}
