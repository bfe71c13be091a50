// A completer from what a config names: a local model (a folder or .gguf path) or OpenAI-compatible endpoints
// ("URL" or "URL1,URL2,...", balanced). The HTTP client is loaded only when asked for.

import { InputError } from "../core/errors.js";
import { LocalCompleter } from "./local.js";
import type { Completer } from "./types.js";

export interface CompleterSource {
  model: string | null; // a local model path
  endpoint: string | null; // "URL" or "URL1,URL2,..."
  endpoint_model?: string | null; // the server's model (null: the first of /v1/models)
  retries?: number; // endpoint: retries of one request after its first attempt (6)
  timeout?: number; // endpoint: seconds one attempt may take, to the whole body (300)
}

export async function openCompleter(s: CompleterSource, o: { batchSize: number; seed: number }): Promise<Completer> {
  if (s.model !== null && s.endpoint !== null) throw new InputError("give --model DIR or --endpoint URL, not both");
  if (s.model !== null) return LocalCompleter.load(s.model, { batchSize: o.batchSize, seed: o.seed });
  if (s.endpoint === null) throw new InputError("--model DIR or --endpoint URL is required");
  const urls = s.endpoint
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new InputError("--endpoint needs a URL");
  const { createHttpCompleter } = await import("./http.js");
  return createHttpCompleter(urls, {
    model: s.endpoint_model ?? undefined,
    retries: s.retries ?? 6,
    timeoutMs: 1000 * (s.timeout ?? 300),
  });
}
