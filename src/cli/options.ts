// Option parsing shared by the commands. It lives apart from main.ts (the command table) so that a module that
// runs commands in process (the `run` pipeline) can import them without a cycle through the table.

import { InputError } from "../core/errors.js";

/** An integer option, or the default; a clear error names the flag otherwise. */
export function intOption(values: Record<string, unknown>, name: string, dflt: number, min = 1): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${name} must be an integer >= ${min}, got "${v}"`);
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
  const x = Number(v);
  if (!Number.isFinite(x) || !ok(x)) throw new InputError(`--${name} must be ${what}, got "${v}"`);
  return x;
}
