// The serve stage as a library function: `serveConfig` validates the knobs once (errors name the flag or the key),
// `openCompletionServer(config)` loads the model and makes the OpenAI-compatible server (server.ts) for it, ready
// to listen; the caller listens, closes it and frees the model with `dispose`.

import { backendFor } from "../backend/index.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { loadModel, loadModelTokenizer } from "../model/hub.js";
import { CompletionServer, defaultModelName } from "./server.js";

export interface ServeConfig {
  model: string; // a model folder, a PEFT adapter folder, a .gguf file
  port: number; // to listen on (0 picks a free one)
  host: string; // address to bind (127.0.0.1)
  api_key: string | null; // required as "Authorization: Bearer KEY" on /v1/* (default: $STEPWISE_API_KEY, else none)
  served_model_name: string | null; // the model id of /v1/models (null: the Hugging Face name, else the folder's)
  max_tokens_limit: number; // largest max_tokens a request may ask for (2048)
  max_body_bytes: number; // largest request body (1 MiB)
  max_batch: number; // sequences decoded together in one batch (32)
  backend: string | null; // native or reference (null: the current backend)
  threads: number | null; // worker threads of the native backend
}

export function serveConfig(
  given: Partial<ServeConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
  env: NodeJS.ProcessEnv = process.env,
): ServeConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming);
  const model = r.need("model", "DIR");
  if (!r.has("port"))
    throw new InputError(
      `${naming.flags ? `${naming.name("port")} P` : naming.name("port")} is required`,
      undefined,
      "use --port 0 for a free port",
    );
  const port = r.port("port", 0);
  const host = r.str("host", "127.0.0.1");
  const backend = r.str("backend", null);
  const threads = r.int("threads", null);
  const apiKey = r.str("api_key", null) ?? (env.STEPWISE_API_KEY || null);
  if (apiKey !== null && apiKey.trim() === "") throw new InputError(`${naming.name("api_key")} must not be empty`);
  return {
    model,
    port,
    host,
    api_key: apiKey,
    served_model_name: r.str("served_model_name", null),
    max_tokens_limit: r.int("max_tokens_limit", 2048),
    max_body_bytes: r.int("max_body_bytes", 1 << 20),
    max_batch: r.int("max_batch", 32),
    backend,
    threads,
  };
}

/**
 * The server for c.model, not yet listening. The server refuses a tokenizer whose ids run past the model's
 * vocabulary here, before anything listens. `dispose` frees the model once the server is closed.
 */
export function openCompletionServer(c: ServeConfig): { server: CompletionServer; dispose(): void } {
  const be = backendFor(c.backend, c.threads);
  const tokenizer = loadModelTokenizer(c.model);
  const model = loadModel(c.model, { backend: be });
  try {
    const server = new CompletionServer(model, tokenizer, {
      apiKey: c.api_key ?? undefined,
      maxTokensLimit: c.max_tokens_limit,
      maxBodyBytes: c.max_body_bytes,
      maxBatchRows: c.max_batch,
      modelName: c.served_model_name ?? defaultModelName(c.model),
    });
    return { server, dispose: () => model.dispose() };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
