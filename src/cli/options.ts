// Option parsing shared by the commands. It lives apart from main.ts (the command table) so that a module that
// runs commands in process (the `run` pipeline) can import them without a cycle through the table.

import { flagNumber } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { type DownloadProgress, resolveModel } from "../model/hubcache.js";
import { Progress } from "./progress.js";

export { flagNumber } from "../core/config.js";

/** An integer option in [min, max], or the default; a clear error names the flag otherwise. */
export function intOption(values: Record<string, unknown>, name: string, dflt: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
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
export async function serveUntilSignal(server: Listener, port: number, host: string, banner: (url: string) => string): Promise<void> {
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
export function numOption(values: Record<string, unknown>, name: string, dflt: number | undefined, ok: (x: number) => boolean, what: string): number | undefined {
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
  return resolveModel(model, { onDownload: downloadBar });
}

/** A progress bar for a model download, in MB (kB below 10 MB), to a tenth of the unit. */
function downloadBar(name: string, bytes: number): DownloadProgress {
  const [scale, unit] = bytes >= 1e7 ? [1e6, "MB"] : [1e3, "kB"];
  const size = (b: number) => Math.round((10 * b) / scale) / 10;
  const bar = new Progress(`download ${name}`, { total: Math.max(0.1, size(bytes)), unit });
  return { set: (b) => bar.set(size(b)), finish: () => bar.finish() };
}
