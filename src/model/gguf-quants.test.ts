// Dequantizers against the `gguf` Python package (fixtures from reference/make_gguf_quant_fixtures.py): random
// block bytes and quantized normal floats of every importable type, dequantized here and there, compared element
// by element (relative to the block's largest value: both sides round to float32 in their own order). Plus the
// errors: an unknown type, rows that are not whole blocks, too few bytes.

import assert from "node:assert/strict";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { InputError } from "../core/errors.js";
import { DEQUANTIZABLE, GGML_TYPE_CODES, dequantize, ggmlTensorBytes } from "./gguf-quants.js";

const FIXTURE = fileURLToPath(new URL("../../src/model/fixtures/gguf-quants/quants.json", import.meta.url));

interface Case {
  what: string;
  blocks: number;
  bytes: string;
  values: string;
}
interface Fixture {
  version: number;
  generator: string;
  types: Record<string, { type: number; block: number; bytes_per_block: number; cases: Case[] }>;
}

const fixture = JSON.parse(fs.readFileSync(FIXTURE, "utf8")) as Fixture;
const REL_TOLERANCE = 1e-6; // float32 rounding of a few products, relative to the block's largest |value|

function floats(b64: string): Float32Array {
  const b = Buffer.from(b64, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

test("the fixture covers every type the importer claims", () => {
  assert.equal(fixture.version, 1);
  assert.deepEqual(Object.keys(fixture.types).sort(), [...DEQUANTIZABLE].sort());
});

for (const [name, t] of Object.entries(fixture.types)) {
  test(`dequantize ${name} == gguf.quants.dequantize (${fixture.generator})`, (ctx) => {
    assert.equal(GGML_TYPE_CODES[name as keyof typeof GGML_TYPE_CODES], t.type, "type code");
    for (const c of t.cases) {
      const bytes = new Uint8Array(Buffer.from(c.bytes, "base64"));
      const want = floats(c.values);
      assert.equal(bytes.length, c.blocks * t.bytes_per_block);
      assert.equal(ggmlTensorBytes(t.type, [c.blocks, t.block], name), bytes.length);
      const got = dequantize(t.type, bytes, want.length, name);
      let maxAbs = 0;
      let maxRel = 0;
      for (let k = 0; k < want.length; k += t.block) {
        let scale = 0;
        for (let j = k; j < k + t.block; j++) scale = Math.max(scale, Math.abs(want[j]));
        for (let j = k; j < k + t.block; j++) {
          const d = Math.abs(got[j] - want[j]);
          maxAbs = Math.max(maxAbs, d);
          maxRel = Math.max(maxRel, scale > 0 ? d / scale : d);
          assert.ok(
            d <= REL_TOLERANCE * scale || d === 0,
            `${name} ${c.what}: value ${j} is ${got[j]}, gguf gives ${want[j]}`,
          );
        }
      }
      ctx.diagnostic(
        `${name} ${c.what} (${c.blocks} blocks): max abs diff ${maxAbs.toExponential(2)}, ` +
          `max diff / block max ${maxRel.toExponential(2)}`,
      );
    }
  });
}

test("dequantize errors name the tensor and its type", () => {
  const bad = (fn: () => unknown, ...parts: string[]) =>
    assert.throws(
      fn,
      (e: unknown) => e instanceof InputError && parts.every((p) => e.message.includes(p)),
      parts.join(" "),
    );
  bad(
    () => dequantize(GGML_TYPE_CODES.IQ2_XS, new Uint8Array(100), 256, "blk.0.ffn_up.weight"),
    "blk.0.ffn_up.weight",
    "IQ2_XS",
    "Q4_K",
  );
  bad(() => ggmlTensorBytes(99, [4, 32], "w"), '"w"', "type 99");
  bad(() => ggmlTensorBytes(GGML_TYPE_CODES.Q4_K, [4, 100], "w"), '"w"', "Q4_K", "256-value blocks");
  bad(() => dequantize(GGML_TYPE_CODES.Q8_0, new Uint8Array(33), 32, "w"), '"w"', "Q8_0", "33 bytes");
});
