// Records from a data file, JSONL or parquet, so that a Hugging Face dataset's files load as they are downloaded.
//
// A file whose name ends in .parquet is read with hyparquet, one row group at a time (memory stays bounded by the
// largest row group), with every codec parquet allows (hyparquet-compressors: snappy, gzip, zstd, brotli, lz4).
// Any other file is JSONL (jsonl.ts). Each record comes with where it is: `FILE:LINE` (1-based, as editors count)
// for JSONL, `FILE row N` (0-based, as `dataset[N]` in Python counts) for parquet. Parquet's 64-bit integers are
// numbers where they fit exactly, else decimal strings, so a record always survives JSON.stringify.

import fs from "node:fs";
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  type AsyncBuffer,
  type FileMetaData,
} from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { InputError } from "../core/errors.js";
import { readJsonl, type ReadJsonlOptions } from "./jsonl.js";

export interface Row {
  where: string; // FILE:LINE or FILE row N
  value: Record<string, unknown>;
}

export function isParquet(file: string): boolean {
  return /\.parquet$/i.test(file);
}

/** The records of a JSONL or parquet file, in order (options as readJsonl's; a parquet file has no bad lines). */
export async function* readRows(file: string, opts: ReadJsonlOptions = {}): AsyncGenerator<Row> {
  if (!isParquet(file)) {
    for await (const { line, value } of readJsonl(file, opts)) yield { where: `${file}:${line}`, value };
    return;
  }
  const { buffer, metadata } = await openParquet(file);
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end, compressors });
    } catch (e) {
      throw new InputError(`cannot read rows ${start}..${end - 1} (${(e as Error).message})`, file);
    }
    for (let i = 0; i < rows.length; i++)
      yield { where: `${file} row ${start + i}`, value: plain(rows[i]) as Record<string, unknown> };
    start = end;
  }
}

async function openParquet(file: string): Promise<{ buffer: AsyncBuffer; metadata: FileMetaData }> {
  if (!fs.existsSync(file)) throw new InputError("cannot read: no such file", file);
  try {
    const buffer = await asyncBufferFromFile(file);
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (e) {
    throw new InputError(
      `not a readable parquet file (${(e as Error).message})`,
      file,
      "a .parquet name means parquet; name a JSONL file .jsonl",
    );
  }
}

/** A parquet value as JSON can hold it: bigints become numbers (exact) or decimal strings, recursively. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}
