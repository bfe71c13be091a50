// Which backend runs kernels. The default is the native CPU backend when its addon loads, else the reference
// backend, with one clear warning. STEPWISE_BACKEND=reference|native forces a choice.

import type { Backend } from "./backend.js";
import { ReferenceBackend } from "./reference.js";
import { loadNative, nativeLoadError } from "./native.js";
import { BackendError } from "../core/errors.js";

let current: Backend | null = null;
let reference: ReferenceBackend | null = null;
let warned = false;

export function referenceBackend(): ReferenceBackend {
  reference ??= new ReferenceBackend();
  return reference;
}

/** The native backend, or null (with the reason in nativeLoadError()) if its addon is not built. */
export function nativeBackend(): Backend | null {
  return loadNative();
}

export function backendByName(name: string): Backend {
  if (name === "reference") return referenceBackend();
  if (name === "native") {
    const nb = nativeBackend();
    if (!nb) {
      throw new BackendError(
        `the native backend is not available: ${nativeLoadError()}`,
        "run `npm run build:native` (needs a C++ compiler and Python 3), or use --backend reference",
      );
    }
    return nb;
  }
  throw new BackendError(`unknown backend "${name}"`, "use native or reference");
}

export function getBackend(): Backend {
  if (current) return current;
  const forced = process.env.STEPWISE_BACKEND;
  if (forced) {
    current = backendByName(forced);
    return current;
  }
  const nb = nativeBackend();
  if (nb) {
    current = nb;
    return current;
  }
  if (!warned) {
    warned = true;
    process.stderr.write(
      `stepwise: native CPU backend unavailable (${nativeLoadError()}); using the slow reference backend.\n` +
        "  Build it with `npm run build:native` (needs a C++ compiler and Python 3).\n",
    );
  }
  current = referenceBackend();
  return current;
}

export function setBackend(b: Backend | "native" | "reference"): Backend {
  current = typeof b === "string" ? backendByName(b) : b;
  return current;
}

/** Runs fn with `b` as the current backend. */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = current;
  current = b;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/**
 * The backend a config names (null or "": the current one) with `threads` worker threads when given; `current`
 * also makes it the current backend (for stages that reach it through getBackend()).
 */
export function backendFor(name: string | null, threads: number | null, current = false): Backend {
  if (name && current) setBackend(backendByName(name));
  const be = name && !current ? backendByName(name) : getBackend();
  if (threads !== null) be.setThreads(threads);
  return be;
}
