// Reading a stage's knobs, once, with one validator per knob. The same reader serves three callers: command-line
// flags (strings; errors name the flag: `--lr must be a number > 0, got ""`), the run config (numbers from YAML;
// errors name the key: `variants[0].beta: expected a number > 0, got 0`) and TypeScript callers (numbers; errors
// name the key). A knob that is absent takes its default; a flag's blank text is an error, not 0.

import { InputError } from "./errors.js";

/** How errors name a knob: as a flag (--batch-size) or as a config key (dpo.batch_size, variants[2].beta). */
export interface Naming {
  name(key: string): string;
  flags: boolean;
}

export const asFlags: Naming = { name: (k) => `--${k.replace(/_/g, "-")}`, flags: true };
export const asKeys = (prefix = ""): Naming => ({ name: (k) => prefix + k, flags: false });

/** A flag's text as a number: NaN for blank text ("--lr ''" must not mean 0, which is what Number("") gives). */
export function flagNumber(v: unknown): number {
  return typeof v === "string" && v.trim() === "" ? Number.NaN : Number(v);
}

export class KnobReader {
  private readonly src: Map<string, unknown>;

  /** `src`: the given knobs; flag spellings (batch-size) and key spellings (batch_size) are the same knob. */
  constructor(
    src: Record<string, unknown>,
    readonly naming: Naming = asKeys(),
    readonly file?: string,
  ) {
    this.src = new Map(
      Object.entries(src)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k.replace(/-/g, "_"), v]),
    );
  }

  /** The value as given (undefined when absent). */
  raw(key: string): unknown {
    return this.src.get(key);
  }

  /** A comma-separated string ("a, b") or a list, as strings; null when absent. */
  list(key: string): string[] | null {
    if (!this.has(key)) return null;
    const v = this.raw(key);
    if (Array.isArray(v)) return v.map(String);
    if (typeof v !== "string") return this.fail(key, "a comma-separated list");
    return v
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
  }

  /** A comma-separated list of integers >= 1 ("1,16"); null when absent. */
  intList(key: string): number[] | null {
    const xs = this.list(key)?.map(Number) ?? null;
    if (xs && (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)))
      this.fail(key, "a comma-separated list of integers >= 1");
    return xs;
  }

  has(key: string): boolean {
    return this.src.has(key) && this.src.get(key) !== null;
  }

  fail(key: string, what: string, v: unknown = this.src.get(key)): never {
    const name = this.naming.name(key);
    const shown = typeof v === "string" ? `"${v}"` : JSON.stringify(v);
    throw new InputError(
      this.naming.flags ? `${name} must be ${what}, got ${shown}` : `${name}: expected ${what}, got ${shown}`,
      this.file,
    );
  }

  /** A number that passes `ok` (described by `what` in errors), or the default. */
  num<D extends number | null>(
    key: string,
    dflt: D,
    ok: (x: number) => boolean = Number.isFinite,
    what = "a number",
  ): number | D {
    if (!this.has(key)) return dflt;
    const v = this.src.get(key);
    const x = typeof v === "number" ? v : typeof v === "string" ? flagNumber(v) : Number.NaN;
    if (!Number.isFinite(x) || !ok(x)) this.fail(key, what);
    return x;
  }

  /** An integer in [min, max], or the default. */
  int<D extends number | null>(key: string, dflt: D, min = 1, max = Number.MAX_SAFE_INTEGER): number | D {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    return this.num(key, dflt, (x) => Number.isInteger(x) && x >= min && x <= max, `an integer ${range}`);
  }

  /** One of `allowed`, or the default; `what` words the error when given ("reward or logprob"). */
  choice<T extends string, D extends T | null>(key: string, allowed: readonly T[], dflt: D, what?: string): T | D {
    if (!this.has(key)) return dflt;
    const v = this.src.get(key);
    if (!allowed.includes(v as T)) {
      if (what !== undefined) this.fail(key, what);
      if (this.naming.flags) this.fail(key, `one of ${allowed.join(", ")}`);
      this.fail(key, allowed.join(" or "));
    }
    return v as T;
  }

  bool(key: string, dflt = false): boolean {
    if (!this.has(key)) return dflt;
    const v = this.src.get(key);
    if (typeof v !== "boolean") this.fail(key, "true or false");
    return v;
  }

  str<D extends string | null>(key: string, dflt: D): string | D {
    if (!this.has(key)) return dflt;
    const v = this.src.get(key);
    if (typeof v !== "string") this.fail(key, "a string");
    return v;
  }

  /** Fails unless the knob is given: `what` says what it is ("DIR", "K"), `why` adds a reason in parentheses. */
  required(key: string, what: string, why?: string): void {
    if (this.has(key)) return;
    const name = this.naming.flags ? `${this.naming.name(key)} ${what}` : this.naming.name(key);
    throw new InputError(`${name} is required${why === undefined ? "" : ` (${why})`}`, this.file);
  }

  /** A string that must be given: `what` says what it is ("DIR", "FILE"), `why` why it is needed. */
  need(key: string, what: string, why?: string): string {
    this.required(key, what, why);
    return this.str(key, null) as string;
  }

  /** A port to listen on: an integer in [0, 65535] (0 picks a free one), or the default. */
  port<D extends number | null>(key: string, dflt: D): number | D {
    const port = this.int(key, dflt, 0);
    if (port !== null && port > 65535)
      throw new InputError(`${this.naming.name(key)} must be at most 65535, got ${port}`);
    return port;
  }
}
