// Atomic writes: every file stepwise writes goes to a temp file beside its target (same filesystem), is fsynced,
// then renamed over the target, and the folder is fsynced. A kill at any point leaves the old file whole or the new
// one whole, never half of either.

import fs, { createWriteStream, type WriteStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";

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
    this.out.on("error", (e) => {
      this.failed = e;
    });
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
    await fsyncPath(path.dirname(this.file)).catch(() => {
      /* some filesystems refuse directory fsync */
    });
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
export async function writeJsonlAtomic(
  file: string,
  records: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<number> {
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
  await fsyncPath(path.dirname(file)).catch(() => {
    /* as above */
  });
}

/** Runs write(fd) on a temp file beside `file`, fsyncs it and renames it over `file`. */
export function atomicWrite(file: string, write: (fd: number) => void): void {
  const tmp = tempPath(file);
  const fd = fs.openSync(tmp, "w");
  try {
    write(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  try {
    const dfd = fs.openSync(path.dirname(file), "r");
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // some filesystems do not fsync folders; the rename is still atomic
  }
}

export function writeAllSync(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Atomically writes a JSON file (pretty, with a trailing newline). */
export function writeJsonAtomic(file: string, value: unknown): void {
  atomicWrite(file, (fd) => writeAllSync(fd, Buffer.from(JSON.stringify(value, null, 2) + "\n", "utf8")));
}
