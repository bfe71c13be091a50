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
