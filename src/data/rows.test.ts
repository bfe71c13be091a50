// Records from JSONL or parquet (issue #17, item 1). The parquet fixtures and the rows they hold were written by
// pyarrow (reference/make_parquet_fixtures.py, expected.json): snappy, zstd and gzip codecs, lists of structs,
// int64 (one past 2**53) and double columns, row groups to cross, a null.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { InputError } from "../core/errors.js";
import { readRows, type Row } from "./rows.js";

const FIX = fileURLToPath(new URL("../../src/data/fixtures/", import.meta.url));
const expected = JSON.parse(fs.readFileSync(path.join(FIX, "expected.json"), "utf8")) as {
  files: Record<string, { codec: string; row_groups: number; rows: Record<string, unknown>[] }>;
};

async function all(file: string): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const r of readRows(file)) rows.push(r);
  return rows;
}

test("parquet rows are what pyarrow wrote, named FILE row N, across row groups and codecs", async () => {
  const codecs = new Set<string>();
  for (const [name, want] of Object.entries(expected.files)) {
    const file = path.join(FIX, name);
    const got = await all(file);
    assert.deepEqual(
      got.map((r) => r.value),
      want.rows,
      name,
    );
    assert.deepEqual(
      got.map((r) => r.where),
      want.rows.map((_, i) => `${file} row ${i}`),
    );
    assert.ok(want.row_groups > 1, `${name} has several row groups`);
    codecs.add(want.codec);
  }
  assert.deepEqual([...codecs].sort(), ["GZIP", "SNAPPY", "ZSTD"]);
  const ids = expected.files["pairs-implicit.zstd.parquet"].rows.map((r) => r.id);
  assert.deepEqual(ids, [7, "9007199254740993"], "int64: a number where exact, else its decimal string");
});

test("JSONL rows are named FILE:LINE; a file that is not parquet or is missing is an InputError", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-rows-"));
  try {
    const jsonl = path.join(dir, "a.jsonl");
    fs.writeFileSync(jsonl, '{"text":"x"}\n\n{"text":"y"}\n');
    assert.deepEqual(await all(jsonl), [
      { where: `${jsonl}:1`, value: { text: "x" } },
      { where: `${jsonl}:3`, value: { text: "y" } },
    ]);
    const fake = path.join(dir, "b.parquet");
    fs.writeFileSync(fake, '{"text":"x"}\n');
    await assert.rejects(
      all(fake),
      (e: unknown) => e instanceof InputError && e.message.startsWith(`${fake}: not a readable parquet file`),
    );
    const missing = path.join(dir, "c.parquet");
    await assert.rejects(
      all(missing),
      (e: unknown) => e instanceof InputError && e.message === `${missing}: cannot read: no such file`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
