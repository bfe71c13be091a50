// safetensors: round trips in every dtype, sharded checkpoints, atomic writes, and errors that name the file and
// the tensor for truncated or corrupt files, missing tensors and wrong shapes.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../core/half.js";
import { InputError } from "../core/errors.js";
import { Checkpoint, type StDType, readHeader, writeCheckpoint, writeSafetensors } from "./safetensors.js";

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-st-"));
}

function ramp(n: number, scale = 0.37): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * scale) * (1 + i / 7));
}

test("round trip in F32, F64, F16 and BF16 with __metadata__ format pt", () => {
  const dir = tmpdir();
  const data = ramp(60);
  const round: Record<StDType, (x: number) => number> = {
    F32: Math.fround,
    F64: (x) => x,
    F16: (x) => f16ToF32(f32ToF16(x)),
    BF16: (x) => bf16ToF32(f32ToBf16(x)),
  };
  for (const dtype of ["F32", "F64", "F16", "BF16"] as StDType[]) {
    const file = path.join(dir, `${dtype}.safetensors`);
    writeSafetensors(file, [
      { name: "a.weight", shape: [3, 4, 5], dtype, data: () => data },
      { name: "b", shape: [], dtype, data: () => [2.5] },
    ]);
    const h = readHeader(file);
    assert.deepEqual(h.metadata, { format: "pt" });
    assert.deepEqual(h.tensors.get("a.weight")?.shape, [3, 4, 5]);
    assert.equal((h.tensors.get("a.weight")!.begin - 8) % 8, 0, "data starts 8-byte aligned");
    const ck = Checkpoint.open(file);
    for (const out of ["f32", "f64"] as const) {
      const got = ck.read("a.weight", out, [3, 4, 5]);
      assert.equal(got instanceof Float64Array, out === "f64");
      for (let i = 0; i < data.length; i++)
        assert.equal(got[i], Math.fround(round[dtype](data[i])), `${dtype} -> ${out} at ${i}`);
    }
    assert.deepEqual([...ck.read("b")], [2.5]);
    ck.close();
  }
  assert.deepEqual(
    fs.readdirSync(dir).filter((f) => f.includes(".tmp")),
    [],
    "no temp files left behind",
  );
});

test("sharded checkpoints: index.json, shards named like transformers', stale files removed", () => {
  const dir = tmpdir();
  const tensors = Array.from({ length: 5 }, (_, i) => ({
    name: `model.layers.${i}.w`,
    shape: [10, 10],
    dtype: "F32" as StDType,
    data: () => ramp(100, 0.1 * (i + 1)),
  }));
  writeCheckpoint(dir, tensors); // one file first
  assert.ok(fs.existsSync(path.join(dir, "model.safetensors")));
  const files = writeCheckpoint(dir, tensors, { maxShardBytes: 900 }); // 400 bytes a tensor: 2 per shard
  assert.deepEqual(files, [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    "model.safetensors.index.json",
  ]);
  assert.ok(!fs.existsSync(path.join(dir, "model.safetensors")), "the stale single file is removed");
  const index = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8"));
  assert.equal(index.metadata.total_size, 2000);
  assert.equal(index.weight_map["model.layers.4.w"], "model-00003-of-00003.safetensors");
  const ck = Checkpoint.open(dir);
  assert.equal(ck.tensors.size, 5);
  assert.deepEqual([...ck.read("model.layers.3.w")], [...ramp(100, 0.4)]);
  ck.close();
  // A missing shard is named.
  fs.rmSync(path.join(dir, "model-00002-of-00003.safetensors"));
  assert.throws(() => Checkpoint.open(dir), /model-00002-of-00003\.safetensors.*missing/);
});

test("truncated and corrupt files are errors naming the file and the tensor", () => {
  const dir = tmpdir();
  const file = path.join(dir, "m.safetensors");
  writeSafetensors(file, [
    { name: "first", shape: [4], dtype: "F32", data: () => [1, 2, 3, 4] },
    { name: "second", shape: [8], dtype: "F32", data: () => ramp(8) },
  ]);
  const bytes = fs.readFileSync(file);
  const cut = path.join(dir, "cut.safetensors");
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
  assert.throws(
    () => Checkpoint.open(cut),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.includes("cut.safetensors") &&
      e.message.includes('"second"') &&
      /past the end/.test(e.message),
  );
  fs.writeFileSync(cut, bytes.subarray(0, 20));
  assert.throws(() => readHeader(cut), /cut\.safetensors.*header of \d+ bytes runs past the end/);
  fs.writeFileSync(cut, bytes.subarray(0, 3));
  assert.throws(() => readHeader(cut), /cut\.safetensors.*only 3 bytes/);
  const garbage = Buffer.from(bytes);
  garbage.write("#", 9); // break the JSON
  fs.writeFileSync(cut, garbage);
  assert.throws(() => readHeader(cut), /cut\.safetensors.*not valid JSON/);
  const huge = Buffer.from(bytes);
  huge.writeBigUInt64LE(1n << 40n, 0);
  fs.writeFileSync(cut, huge);
  assert.throws(() => readHeader(cut), /header length/);
  // A header whose byte count disagrees with the shape.
  const bad = Buffer.from(bytes.toString("latin1").replace('"shape":[8]', '"shape":[9]'), "latin1");
  fs.writeFileSync(cut, bad);
  assert.throws(() => readHeader(cut), /"second".*needs 36/);
  assert.throws(() => Checkpoint.open(path.join(dir, "nope.safetensors")), /nope\.safetensors.*no such file/);
});

test("missing tensors, wrong shapes and unsupported dtypes are errors naming file and tensor", () => {
  const dir = tmpdir();
  const file = path.join(dir, "m.safetensors");
  writeSafetensors(file, [{ name: "w", shape: [2, 3], dtype: "F32", data: () => ramp(6) }]);
  const ck = Checkpoint.open(file);
  assert.throws(() => ck.read("w", "f32", [3, 2]), /m\.safetensors.*"w" has shape \(2, 3\), expected \(3, 2\)/);
  assert.throws(() => ck.read("v"), /m\.safetensors.*"v" is missing/);
  ck.close();
  // An I64 tensor is a valid file but not a weight we read.
  const hdr = JSON.stringify({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } });
  const buf = Buffer.alloc(8 + hdr.length + 8);
  buf.writeBigUInt64LE(BigInt(hdr.length), 0);
  buf.write(hdr, 8);
  const f2 = path.join(dir, "i64.safetensors");
  fs.writeFileSync(f2, buf);
  const ck2 = Checkpoint.open(f2);
  assert.throws(() => ck2.read("ids"), /i64\.safetensors.*"ids" has dtype I64/);
  ck2.close();
});

test("a failed write leaves the previous file intact and no temp file", () => {
  const dir = tmpdir();
  const file = path.join(dir, "m.safetensors");
  writeSafetensors(file, [{ name: "w", shape: [2], dtype: "F32", data: () => [1, 2] }]);
  assert.throws(
    () =>
      writeSafetensors(file, [
        { name: "w", shape: [2], dtype: "F32", data: () => [3, 4] },
        {
          name: "x",
          shape: [2],
          dtype: "F32",
          data: () => {
            throw new Error("disk on fire");
          },
        },
      ]),
    /disk on fire/,
  );
  const ck = Checkpoint.open(file);
  assert.deepEqual([...ck.read("w")], [1, 2]);
  ck.close();
  assert.deepEqual(fs.readdirSync(dir), ["m.safetensors"]);
});

test("loading reads tensor by tensor: memory never holds the checkpoint twice", (t) => {
  // 24 tensors of 2 MB (48 MB; STEPWISE_BIG_CHECKPOINT_MB raises it, e.g. 500). While reading, the arrays alive are
  // the ones already read plus one tensor being read, never a second copy of the file.
  const total = Number(process.env.STEPWISE_BIG_CHECKPOINT_MB ?? 48) * 1024 * 1024;
  const per = 2 * 1024 * 1024;
  const count = Math.floor(total / per);
  const dir = tmpdir();
  const file = path.join(dir, "big.safetensors");
  const chunk = ramp(per / 4);
  writeSafetensors(
    file,
    Array.from({ length: count }, (_, i) => ({
      name: `t${i}`,
      shape: [per / 4],
      dtype: "F32" as StDType,
      data: () => chunk,
    })),
  );
  const ck = Checkpoint.open(file);
  const kept: Float32Array[] = [];
  global.gc?.();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    kept.push(ck.read(`t${i}`) as Float32Array);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  }
  ck.close();
  const ms = Date.now() - t0;
  t.diagnostic(
    `${count * 2} MB in ${ms} ms (${((count * 2) / (ms / 1000)).toFixed(0)} MB/s), peak extra array memory ` +
      `${(peak / 1024 / 1024).toFixed(1)} MB`,
  );
  assert.ok(peak <= count * per + 2 * per, `peak ${peak} > checkpoint + one tensor`);
  assert.equal(kept[count - 1][5], chunk[5]);
  fs.rmSync(dir, { recursive: true });
});
