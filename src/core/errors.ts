// Typed errors. Each carries the offending values and a hint; only the CLI maps them to messages and exit codes.

export class StepwiseError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(hint ? `${message}\n  hint: ${hint}` : message);
    this.name = new.target.name;
  }
}

/** A tensor had the wrong shape or dtype for an operation. */
export class ShapeError extends StepwiseError {
  constructor(
    op: string,
    readonly shapes: Record<string, readonly number[]>,
    detail: string,
  ) {
    const shown = Object.entries(shapes)
      .map(([k, s]) => `${k}=(${s.join(", ")})`)
      .join(" ");
    super(`${op}: ${detail} [${shown}]`);
  }
}

export class DTypeError extends StepwiseError {}

/** An index (token id, position) was out of range. */
export class IndexError extends StepwiseError {}

/** A tensor was used after dispose(), or disposed twice in a way that matters. */
export class DisposedError extends StepwiseError {}

/** Training produced NaN or Inf, or a loss that explodes; or weights to be saved hold NaN/Inf. */
export class NonFiniteError extends StepwiseError {
  /** `what`: the quantity and its value, e.g. "non-finite loss (NaN)"; `step`: the optimizer step it happened at. */
  constructor(
    readonly step: number,
    readonly what: string,
    hint?: string,
  ) {
    super(`${what} at step ${step}`, hint);
  }
}

/** Bad user input: a file, a line, a key or a flag. */
export class InputError extends StepwiseError {
  constructor(
    message: string,
    readonly where?: string,
    hint?: string,
  ) {
    super(where ? `${where}: ${message}` : message, hint);
  }
}

/** The native backend was asked for but is not available. */
export class BackendError extends StepwiseError {}

/** A run stopped on SIGINT or SIGTERM at a safe point; `resume` says what exists and how to go on. */
export class InterruptedError extends StepwiseError {
  constructor(
    readonly signal: "SIGINT" | "SIGTERM",
    readonly detail: string,
    hint?: string,
  ) {
    super(`interrupted by ${signal}: ${detail}`, hint);
  }

  /** The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM). */
  get exitCode(): number {
    return this.signal === "SIGINT" ? 130 : 143;
  }
}

/** A server kept failing a request after all its retries (timeouts, 429/5xx, dropped connections, bad bodies). */
export class EndpointError extends StepwiseError {}
