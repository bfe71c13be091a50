// Option parsing shared by the commands. It lives apart from main.ts (the command table) so that a module that
// runs commands in process (the `run` pipeline) can import them without a cycle through the table.

import { backendByName, getBackend, setBackend } from "../backend/index.js";
import { flagNumber } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { type DownloadProgress, type ResolveOptions, resolveModel } from "../model/hubcache.js";
import type { PromptTemplate } from "../data/format.js";
import { openCompleter } from "../sample/open.js";
import type { Completer } from "../sample/types.js";
import { Progress } from "../core/progress.js";

type Values = Record<string, string | boolean | undefined>;

export { flagNumber } from "../core/config.js";

/** An integer option in [min, max], or the default; a clear error names the flag otherwise. */
export function intOption(
  values: Record<string, unknown>,
  name: string,
  dflt: number,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = flagNumber(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new InputError(`--${name} must be an integer ${range}, got "${v}"`);
  }
  return n;
}

/** A server that listens and closes (the OpenAI-compatible server, the dashboard). */
export interface Listener {
  listen(port: number, host: string): Promise<string>; // resolves with the URL
  close(): Promise<void>;
}

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
    const url = await server.listen(port, host);
    console.log(banner(url));
    await new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new InputError(`cannot listen on ${host}:${port} (${code})`, undefined, "pick another --port or --host");
    }
    throw e;
  } finally {
    await server.close();
  }
}

/** A number option checked by `ok`, or the default; a clear error says what was expected (`what`). */
export function numOption(
  values: Record<string, unknown>,
  name: string,
  dflt: number | undefined,
  ok: (x: number) => boolean,
  what: string,
): number | undefined {
  const v = values[name];
  if (v === undefined) return dflt;
  const x = flagNumber(v);
  if (!Number.isFinite(x) || !ok(x)) throw new InputError(`--${name} must be ${what}, got "${v}"`);
  return x;
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
export const SHOW_DOWNLOADS: ResolveOptions = { onDownload: downloadBar };

/** A progress bar for a model download, in MB (kB below 10 MB), to a tenth of the unit. */
function downloadBar(name: string, bytes: number): DownloadProgress {
  const [scale, unit] = bytes >= 1e7 ? [1e6, "MB"] : [1e3, "kB"];
  const size = (b: number) => Math.round((10 * b) / scale) / 10;
  const bar = new Progress(`download ${name}`, { total: Math.max(0.1, size(bytes)), unit });
  return { set: (b) => bar.set(size(b)), finish: () => bar.finish() };
}

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
export async function completerFrom(
  values: Values,
  o: { batchSize: number; seed: number; optional?: boolean },
): Promise<Completer | null> {
  const model = values.model;
  const endpoint = values.endpoint;
  if (model !== undefined && endpoint !== undefined)
    throw new InputError("give --model DIR or --endpoint URL, not both");
  if (endpoint === undefined) {
    for (const flag of ["retries", "timeout"]) {
      if (values[flag] !== undefined) throw new InputError(`--${flag} needs --endpoint`);
    }
  }
  if (typeof model === "string") {
    if (values.backend) setBackend(backendByName(String(values.backend)));
    if (values.threads !== undefined) getBackend().setThreads(intOption(values, "threads", 1));
  }
  if (model === undefined && endpoint === undefined && o.optional) return null;
  return openCompleter(
    {
      model: typeof model === "string" ? model : null,
      endpoint: typeof endpoint === "string" ? endpoint : null,
      endpoint_model: typeof values["endpoint-model"] === "string" ? values["endpoint-model"] : null,
      retries: intOption(values, "retries", 6, 0),
      timeout: numOption(values, "timeout", 300, (x) => x > 0 && x <= 86_400, "a number of seconds in (0, 86400]")!,
    },
    o,
  );
}

export function templateOption(values: Values): PromptTemplate {
  const t = String(values.template ?? "plain");
  if (t !== "plain" && t !== "chat") throw new InputError(`--template must be plain or chat, got "${t}"`);
  return t;
}
