// A completer from what a config names: a local model (a folder or .gguf path) or OpenAI-compatible endpoints
// ("URL" or "URL1,URL2,...", balanced). The HTTP client is loaded only when asked for. completerConfig reads the
// knobs that name it (as sample, pairs and eval take them), with the endpoint's retries and timeout and the local
// engine's backend and threads, validated once.

import { backendFor } from "../backend/index.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
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

/** Who generates: a local model on a backend, or endpoints with their retries and timeout. */
export interface CompleterConfig extends CompleterSource {
  retries: number; // endpoint: retries of one request after its first attempt (6)
  timeout: number; // endpoint: seconds one attempt may take, to the whole body (300)
  backend: string | null; // local model: native or reference (null: the current backend)
  threads: number | null; // local model: native backend threads (null: all cores)
}

export function completerConfig(
  given: Partial<CompleterConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
): CompleterConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming);
  const model = r.str("model", null);
  const endpoint = r.str("endpoint", null);
  if (model !== null && endpoint !== null) throw new InputError("give --model DIR or --endpoint URL, not both");
  if (endpoint === null) {
    for (const key of ["retries", "timeout"]) {
      if (r.has(key)) throw new InputError(`${naming.name(key)} needs ${naming.name("endpoint")}`);
    }
  }
  return {
    model,
    endpoint,
    // the local engine's knobs are read only for a local model
    backend: model !== null ? r.str("backend", null) : null,
    threads: model !== null ? r.int("threads", null) : null,
    endpoint_model: r.str("endpoint_model", null),
    retries: r.int("retries", 6, 0),
    timeout: r.num("timeout", 300, (x) => x > 0 && x <= 86_400, "a number of seconds in (0, 86400]"),
  };
}

/**
 * The completer c names, or null when `optional` and it names none. A local model runs on c's backend, made the
 * current one.
 */
export async function openCompleterConfig(
  c: CompleterConfig,
  o: { batchSize: number; seed: number; optional?: boolean },
): Promise<Completer | null> {
  if (c.model !== null) backendFor(c.backend, c.threads, true);
  if (c.model === null && c.endpoint === null && o.optional) return null;
  return openCompleter(c, o);
}
