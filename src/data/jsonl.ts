// JSONL in: a streaming reader that knows line numbers (the atomic writers are in src/core/atomic.ts).

import { createReadStream } from "node:fs";
import { InputError } from "../core/errors.js";

export interface JsonlLine {
  /** 1-based line number in the file. */
  line: number;
  text: string;
}

/** The longest line read (bytes, newline excluded): JSONL records are one line each; default 16 MiB. */
export const MAX_LINE_BYTES = 16 << 20;

/** The limit in force: STEPWISE_MAX_LINE_BYTES when set to a positive integer, else MAX_LINE_BYTES. */
export function maxLineBytes(): number {
  const v = Number(process.env.STEPWISE_MAX_LINE_BYTES);
  return Number.isSafeInteger(v) && v > 0 ? v : MAX_LINE_BYTES;
}

export interface ReadLinesOptions {
  /** Longest line accepted, in bytes (default maxLineBytes()). */
  maxLineBytes?: number;
  /** A longer line is skipped (its bytes are never held) and reported here instead of thrown. */
  onTooLong?: (error: InputError) => void;
}

/**
 * Non-blank lines of a file, streamed, with their line numbers (a "\r" before "\n" is dropped). Memory stays
 * bounded by the longest line allowed: a longer one is an InputError naming file:line as soon as it passes the
 * limit (or, with onTooLong, is skipped without being held).
 */
export async function* readLines(file: string, opts: ReadLinesOptions = {}): AsyncGenerator<JsonlLine> {
  const limit = opts.maxLineBytes ?? maxLineBytes();
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (e: NodeJS.ErrnoException) =>
      reject(new InputError(`cannot read: ${e.code === "ENOENT" ? "no such file" : e.message}`, file)),
    );
  });
  await opened;
  let parts: Buffer[] = []; // the current line's bytes so far
  let size = 0;
  let skipping = false; // inside a line over the limit (onTooLong): its bytes are dropped
  let line = 0;
  const tooLong = () =>
    new InputError(
      `line longer than ${limit} bytes`,
      `${file}:${line + 1}`,
      "a JSONL record is one line; is this JSONL? (STEPWISE_MAX_LINE_BYTES raises the limit)",
    );
  const take = (): JsonlLine | null => {
    line++;
    const wasSkipping = skipping;
    const text = Buffer.concat(parts, size).toString("utf8").replace(/\r$/, "");
    parts = [];
    size = 0;
    skipping = false;
    return wasSkipping || text.trim() === "" ? null : { line, text };
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        const nl = chunk.indexOf(10, at);
        const end = nl === -1 ? chunk.length : nl;
        if (!skipping && size + (end - at) > limit) {
          const err = tooLong();
          if (!opts.onTooLong) throw err;
          opts.onTooLong(err);
          skipping = true;
          parts = [];
          size = 0;
        }
        if (!skipping && end > at) {
          parts.push(chunk.subarray(at, end));
          size += end - at;
        }
        if (nl === -1) break;
        const got = take();
        if (got) yield got;
        at = nl + 1;
      }
    }
    if (size > 0 || skipping) {
      const got = take();
      if (got) yield got;
    }
  } finally {
    stream.destroy();
  }
}

export interface ReadJsonlOptions {
  /** Skip malformed lines instead of throwing; each skip calls onBad. */
  skipBad?: boolean;
  onBad?: (error: InputError) => void;
}

export interface JsonlRecord {
  line: number;
  value: Record<string, unknown>;
}

/** JSON objects, one a line. A line that is not a JSON object is an InputError naming file:line. */
export async function* readJsonl(file: string, opts: ReadJsonlOptions = {}): AsyncGenerator<JsonlRecord> {
  const onTooLong = opts.skipBad ? (e: InputError) => opts.onBad?.(e) : undefined;
  for await (const { line, text } of readLines(file, { onTooLong })) {
    let value: unknown;
    let problem: string | null = null;
    try {
      value = JSON.parse(text);
      if (typeof value !== "object" || value === null || Array.isArray(value)) problem = "expected a JSON object";
    } catch (e) {
      problem = `invalid JSON (${(e as Error).message})`;
    }
    if (problem === null) {
      yield { line, value: value as Record<string, unknown> };
      continue;
    }
    const err = new InputError(
      problem,
      `${file}:${line}`,
      "fix or remove the line, or pass --skip-bad to skip malformed lines",
    );
    if (!opts.skipBad) throw err;
    opts.onBad?.(err);
  }
}
