// Option parsing shared by the commands. It lives apart from main.ts (the command table) so that a module that
// runs commands in process (the `run` pipeline) can import them without a cycle through the table.

import { asFlags } from "../core/config.js";
import { type Listener, listenOn } from "../core/loopback.js";
import { Progress } from "../core/progress.js";
import { downloadProgress, type ResolveOptions, resolveModel } from "../model/hubcache.js";
import { completerConfig, openCompleterConfig } from "../sample/open.js";
import type { Completer } from "../sample/types.js";

type Values = Record<string, string | boolean | undefined>;

/**
 * Serves until SIGINT or SIGTERM, then closes. `banner` gets the URL to print. A port that cannot be opened is an
 * InputError naming host and port.
 */
export async function serveUntilSignal(
  server: Listener,
  port: number,
  host: string,
  banner: (url: string) => string,
): Promise<void> {
  try {
    console.log(banner(await listenOn(server, port, host)));
    await new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
  } finally {
    await server.close();
  }
}

/** The flags that name a model (a folder, a .gguf file, or a Hugging Face name). */
const MODEL_FLAGS = ["model", "ref"];

/**
 * Replaces a Hugging Face name (owner/name[@revision]) in --model and --ref by its folder in the local hub cache,
 * downloading it first with a progress bar on stderr when it is missing (src/model/hubcache.ts). Paths stay as they
 * are. Every command gets this once, before it runs, so each reads a local path.
 */
export async function resolveModelFlags(values: Record<string, unknown>): Promise<void> {
  for (const flag of MODEL_FLAGS) {
    const v = values[flag];
    if (typeof v === "string") values[flag] = await resolveModelPath(v);
  }
}

/** A model folder, .gguf file or Hugging Face name as a local path, a download showing its progress bar. */
export function resolveModelPath(model: string): Promise<string> {
  return resolveModel(model, SHOW_DOWNLOADS);
}

/** Model downloads with a progress bar on stderr. */
export const SHOW_DOWNLOADS: ResolveOptions = { onDownload: downloadProgress((label, o) => new Progress(label, o)) };

// --- completers from flags (sample, pairs, eval) ---

export const COMPLETER_HELP = [
  "  --model DIR          generate with the local engine from a model folder, a .gguf file or a Hugging Face name",
  "  --endpoint URL       or with an OpenAI-compatible /v1/completions server (vLLM, SGLang, llama.cpp, Ollama,",
  "                       stepwise serve); URL1,URL2,... balances the load over several",
  "  --endpoint-model M   the server's model (default: the first of /v1/models)",
  "  --retries N          endpoint: retries of one request after its first attempt (default 6), with",
  "                       exponential backoff and full jitter; a server's Retry-After is honoured (up to 20 s)",
  "  --timeout S          endpoint: seconds one attempt may take, to the whole body (default 300)",
  "  --backend B          local engine: native (default when built) or reference",
  "  --threads N          local engine: native backend threads (default: all cores)",
].join("\n");

/** The completer the flags name (--model or --endpoint), or null when `optional` and neither is given. */
export function completerFrom(
  values: Values,
  o: { batchSize: number; seed: number; optional?: boolean },
): Promise<Completer | null> {
  return openCompleterConfig(completerConfig(values, asFlags), o);
}
