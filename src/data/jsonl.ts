// JSONL in and out: a streaming reader that knows line numbers, and writers that never leave a half-written file
// (temp file in the same directory, fsync, rename, fsync of the directory).

import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";
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
      reject(new InputError(`cannot read: ${e.code === "ENOENT" ? "no such file" : e.message}`, file)));
  });
  await opened;
  let parts: Buffer[] = []; // the current line's bytes so far
  let size = 0;
  let skipping = false; // inside a line over the limit (onTooLong): its bytes are dropped
  let line = 0;
  const tooLong = () => new InputError(`line longer than ${limit} bytes`, `${file}:${line + 1}`,
    "a JSONL record is one line; is this JSONL? (STEPWISE_MAX_LINE_BYTES raises the limit)");
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
    const err = new InputError(problem, `${file}:${line}`, "fix or remove the line, or pass --skip-bad to skip malformed lines");
    if (!opts.skipBad) throw err;
    opts.onBad?.(err);
  }
}

/**
 * Writes JSONL to `file` atomically: lines go to a temp file beside it; commit() fsyncs and renames it into place,
 * abort() removes it. Until commit() the target is untouched (an old file stays whole).
 */
export class AtomicJsonlWriter {
  private readonly tmp: string;
  private readonly out: WriteStream;
  private failed: Error | null = null;
  count = 0;

  constructor(readonly file: string) {
    this.tmp = tempPath(file);
    this.out = createWriteStream(this.tmp, { encoding: "utf8" });
    this.out.on("error", (e) => { this.failed = e; });
  }

  /** Appends one record; waits when the OS buffer is full (backpressure). */
  async write(record: unknown): Promise<void> {
    if (this.failed) throw this.failed;
    this.count++;
    if (!this.out.write(JSON.stringify(record) + "\n")) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          this.out.off("drain", done);
          this.out.off("error", done);
          if (e) reject(e);
          else resolve();
        };
        this.out.on("drain", done);
        this.out.on("error", done);
      });
    }
  }

  async commit(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      this.out.end((e?: Error | null) => (e ? reject(e) : resolve()));
    });
    await fsyncPath(this.tmp);
    await rename(this.tmp, this.file);
    await fsyncPath(path.dirname(this.file)).catch(() => { /* some filesystems refuse directory fsync */ });
  }

  async abort(): Promise<void> {
    this.out.destroy();
    await rm(this.tmp, { force: true });
  }
}

let tempSeq = 0;
/** A hidden temp file beside `file` (same filesystem, so rename is atomic). */
function tempPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${tempSeq++}.tmp`);
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all records (sync or async iterable) to `file` atomically; returns the count. */
export async function writeJsonlAtomic(file: string, records: Iterable<unknown> | AsyncIterable<unknown>): Promise<number> {
  const w = new AtomicJsonlWriter(file);
  try {
    for await (const r of records) await w.write(r);
    await w.commit();
    return w.count;
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Writes a whole file atomically (temp file, fsync, rename). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPath(file);
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, file);
  await fsyncPath(path.dirname(file)).catch(() => { /* as above */ });
}
