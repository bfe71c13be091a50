// TensorBoard event files, written by hand: no npm package writes them without TensorFlow. A file is a sequence of
// TFRecords, each an Event protobuf:
//   record = uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
//   masked_crc32c(x) = ((c >>> 15) | (c << 17)) + 0xa282ead8, c = CRC-32C (Castagnoli) of x
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//             SessionLog session_log = 7 }
//   Summary { repeated Value value = 1 }   Value { string tag = 1; float simple_value = 2 }
//   SessionLog { SessionStatus status = 1 }   (START = 1: TensorBoard drops what an earlier run logged at or after
//   this step, so a resumed run's curves do not double back)
// Tags are the ones Hugging Face's TensorBoardCallback writes: "train/<name>" and, for "eval_<name>", "eval/<name>".
// reference/make_tensorboard_fixtures.py reads our files back with the tensorboard package.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { EVAL_PREFIX, METRICS } from "./metrics.js";

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1; // reflected Castagnoli polynomial
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `bytes` ("123456789" -> 0xe3069283). */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The CRC TFRecord stores: rotated right by 15 bits plus a constant. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc32c(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([head, data, tail]);
}

// --- protobuf, the few wire types an Event needs ---

function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n)); // int64 negatives are ten bytes, as protobuf writes them
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const key = (field: number, wire: number) => varint((field << 3) | wire);
const bytesField = (field: number, b: Uint8Array) => Buffer.concat([key(field, 2), varint(b.length), b]);

function doubleField(field: number, x: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x, 0);
  return Buffer.concat([key(field, 1), b]);
}

function floatField(field: number, x: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x, 0);
  return Buffer.concat([key(field, 5), b]);
}

/** What an Event carries besides its time and step. */
export type EventBody = { fileVersion: string } | { scalars: [tag: string, value: number][] } | { sessionStart: true };

/** An Event message's bytes. */
export function encodeEvent(wallTime: number, step: number, body: EventBody): Buffer {
  const parts = [doubleField(1, wallTime), Buffer.concat([key(2, 0), varint(step)])];
  if ("fileVersion" in body) parts.push(bytesField(3, Buffer.from(body.fileVersion, "utf8")));
  else if ("scalars" in body) {
    const values = body.scalars.map(([tag, v]) =>
      bytesField(1, Buffer.concat([bytesField(1, Buffer.from(tag, "utf8")), floatField(2, v)])),
    );
    parts.push(bytesField(5, Buffer.concat(values)));
  } else parts.push(bytesField(7, Buffer.concat([key(1, 0), varint(1)])));
  return Buffer.concat(parts);
}

/** The tag HF's TensorBoardCallback gives a logged key (its rewrite_logs): eval_x -> eval/x, x -> train/x. */
export function tensorboardTag(name: string): string {
  return name.startsWith(EVAL_PREFIX) ? `eval/${name.slice(EVAL_PREFIX.length)}` : `train/${name}`;
}

/** Appends events to one file; every record is flushed to the OS when written (a crash keeps what came before). */
export class EventWriter {
  readonly file: string;
  private fd: number;

  /** A new event file in `dir`, named as TensorBoard's writers name theirs; `now` gives wall times in seconds. */
  constructor(
    dir: string,
    private now: () => number = () => Date.now() / 1000,
    name?: string,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    const stamp = () => String(Math.floor(this.now())).padStart(10, "0");
    this.file = path.join(dir, name ?? `events.out.tfevents.${stamp()}.${os.hostname()}.${process.pid}`);
    this.fd = fs.openSync(this.file, "a");
    this.write(0, { fileVersion: "brain.Event:2" });
  }

  write(step: number, body: EventBody): void {
    fs.writeSync(this.fd, tfRecord(encodeEvent(this.now(), step, body)));
  }

  /** Marks a restart at `step` (a resumed run's first step): TensorBoard drops older events from there on. */
  sessionStart(step: number): void {
    this.write(step, { sessionStart: true });
  }

  /** One metrics.jsonl record: every finite number but the step, at the record's step. */
  scalars(record: Record<string, number>): void {
    const step = record[METRICS.step];
    const values = Object.entries(record)
      .filter(([k, v]) => k !== METRICS.step && Number.isFinite(v))
      .map(([k, v]): [string, number] => [tensorboardTag(k), v]);
    this.write(step, { scalars: values });
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
