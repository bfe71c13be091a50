// The JSONL reader's line-length limit (issue #15, item 6): a line past the limit is an error naming file:line as
// soon as it passes the limit (its bytes are never all held), or skipped with --skip-bad; lines around it read.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { InputError } from "../core/errors.js";
import { readJsonl, readLines } from "./jsonl.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-jsonl-"));
process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));

const file = path.join(dir, "long.jsonl");
const long = JSON.stringify({ id: "b", question: "x".repeat(3_000_000) }); // spans several 1 MiB read chunks
fs.writeFileSync(file, `{"id":"a"}\r\n${long}\n\n{"id":"c"}`);

test("a line over the limit is an InputError naming file:line", async () => {
  await assert.rejects(
    async () => {
      for await (const _ of readLines(file, { maxLineBytes: 1_000_000 })) {
        /* read on */
      }
    },
    (e: unknown) => e instanceof InputError && e.message.startsWith(`${file}:2: line longer than 1000000 bytes`),
  );
});

test("under the limit every line reads, CRLF and a last line without a newline included", async () => {
  const lines = [];
  for await (const l of readLines(file, { maxLineBytes: 4_000_000 })) lines.push([l.line, l.text.length]);
  assert.deepEqual(lines, [
    [1, 10],
    [2, long.length],
    [4, 10],
  ]);
});

test("with skipBad the long line is reported and skipped; the others are read", async () => {
  process.env.STEPWISE_MAX_LINE_BYTES = "100000";
  try {
    const bad: string[] = [];
    const ids = [];
    for await (const r of readJsonl(file, { skipBad: true, onBad: (e) => bad.push(e.message) }))
      ids.push([r.line, r.value.id]);
    assert.deepEqual(ids, [
      [1, "a"],
      [4, "c"],
    ]);
    assert.equal(bad.length, 1);
    assert.match(bad[0], /long\.jsonl:2: line longer than 100000 bytes/);
  } finally {
    delete process.env.STEPWISE_MAX_LINE_BYTES;
  }
});
