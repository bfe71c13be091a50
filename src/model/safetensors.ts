// safetensors files: the Hugging Face weight format, read and written without holding a checkpoint twice.
//
// A file is: 8 bytes little-endian u64 N, then N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {str: str}}, then the tensors' bytes, little-endian, row-major, at data_offsets from the end of
// the header. A checkpoint is one `model.safetensors` or shards listed by `model.safetensors.index.json`
// ({"metadata": {"total_size"}, "weight_map": {name: file}}).
//
// Reading: the header is parsed and checked first (offsets inside the file, byte counts that match the shapes);
// then each tensor is read with fs.readSync at its offset straight into the array the caller will hand to the
// backend, converting f16/bf16 in place of a second copy. Writing streams one tensor at a time into a temp file,
// fsyncs it and renames it over the target (atomic), with __metadata__ {"format": "pt"} as transformers expects.

import { atomicWrite, writeAllSync, writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../core/half.js";
import { InputError } from "../core/errors.js";

/** safetensors dtypes we read and write. Others (integers, f8) are reported as unsupported. */
export type StDType = "F64" | "F32" | "F16" | "BF16";
const ST_BYTES: Record<StDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };
// Every dtype name the format defines, so that a valid file with an unsupported dtype is told apart from a corrupt one.
const KNOWN_DTYPES: Record<string, number> = {
  ...ST_BYTES,
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
const MAX_HEADER = 100 * 1024 * 1024; // the reference implementation's limit

export interface TensorInfo {
  name: string;
  file: string; // the file that holds it
  dtype: StDType;
  shape: number[];
  begin: number; // absolute byte offset in the file
  bytes: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Host arrays a tensor can be read into (the backend's compute dtypes). */
export type FloatArray = Float32Array | Float64Array;

function corrupt(file: string, detail: string, tensor?: string): InputError {
  return new InputError(
    `${tensor ? `tensor "${tensor}": ` : ""}${detail}`,
    file,
    "the file is truncated or not a safetensors file; re-download or re-save it",
  );
}

/** Parses and checks the header of a safetensors file (reads only the header bytes). */
export function readHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    throw new InputError(`cannot open: ${(e as Error).message}`, file);
  }
  try {
    return parseHeader(fd, file);
  } finally {
    fs.closeSync(fd);
  }
}

function parseHeader(fd: number, file: string): SafetensorsHeader {
  const fileSize = fs.fstatSync(fd).size;
  if (fileSize < 8) throw corrupt(file, `only ${fileSize} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, lenBuf, 0, file);
  const n = Number(lenBuf.readBigUInt64LE(0));
  if (n > MAX_HEADER) throw corrupt(file, `header length ${n} exceeds ${MAX_HEADER} bytes`);
  if (8 + n > fileSize) throw corrupt(file, `header of ${n} bytes runs past the end of the ${fileSize}-byte file`);
  const hdr = Buffer.alloc(n);
  readFully(fd, hdr, 8, file);
  let json: unknown;
  try {
    json = JSON.parse(hdr.toString("utf8"));
  } catch (e) {
    throw corrupt(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw corrupt(file, "header is not a JSON object");
  const dataStart = 8 + n;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const ok =
      e &&
      typeof e.dtype === "string" &&
      Array.isArray(e.shape) &&
      Array.isArray(e.data_offsets) &&
      e.data_offsets.length === 2 &&
      [...e.shape, ...e.data_offsets].every((x) => Number.isSafeInteger(x) && x >= 0);
    if (!ok) throw corrupt(file, "malformed entry (needs dtype, shape, data_offsets)", name);
    const dtype = e.dtype as string;
    if (!(dtype in KNOWN_DTYPES)) throw corrupt(file, `unknown dtype ${dtype}`, name);
    const shape = e.shape as number[];
    const [b, end] = e.data_offsets as number[];
    const expected = shape.reduce((p, s) => p * s, 1) * KNOWN_DTYPES[dtype];
    if (end < b || end - b !== expected) {
      throw corrupt(
        file,
        `data_offsets [${b}, ${end}] hold ${end - b} bytes, shape (${shape.join(", ")}) ${dtype} ` +
          `needs ${expected}`,
        name,
      );
    }
    if (dataStart + end > fileSize) {
      throw corrupt(
        file,
        `bytes [${dataStart + b}, ${dataStart + end}) run past the end of the ${fileSize}-byte file`,
        name,
      );
    }
    spans.push([b, end, name]);
    tensors.set(name, { name, file, dtype: dtype as StDType, shape, begin: dataStart + b, bytes: end - b });
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw corrupt(file, `overlaps tensor "${spans[i - 1][2]}"`, spans[i][2]);
  }
  return { file, fileSize, tensors, metadata };
}

function readFully(fd: number, dst: Uint8Array, position: number, file: string, tensor?: string): void {
  let done = 0;
  while (done < dst.length) {
    const chunk = Math.min(dst.length - done, 1 << 30); // one read returns at most about 2 GB
    const got = fs.readSync(fd, dst, done, chunk, position + done);
    if (got === 0) throw corrupt(file, `unexpected end of file at byte ${position + done}`, tensor);
    done += got;
  }
}

/**
 * Reads one tensor's bytes from an open file into `out` (f32 or f64, numel elements), converting from the file's
 * dtype. F32 -> f32 and F64 -> f64 read straight into out; other pairs go through one tensor-sized scratch array.
 */
export function readTensorInto(fd: number, info: TensorInfo, out: FloatArray): void {
  const n = info.shape.reduce((p, s) => p * s, 1);
  if (out.length !== n)
    throw new InputError(`tensor "${info.name}": ${n} elements, destination has ${out.length}`, info.file);
  if (!(info.dtype in ST_BYTES)) {
    throw new InputError(
      `tensor "${info.name}" has dtype ${info.dtype}, which is not supported`,
      info.file,
      "weights must be F32, F16, BF16 or F64",
    );
  }
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if ((info.dtype === "F32" && out instanceof Float32Array) || (info.dtype === "F64" && out instanceof Float64Array)) {
    readFully(fd, bytes(out), info.begin, info.file, info.name);
    return;
  }
  switch (info.dtype) {
    case "F16":
    case "BF16": {
      const raw = new Uint16Array(n);
      readFully(fd, bytes(raw), info.begin, info.file, info.name);
      const conv = info.dtype === "F16" ? f16ToF32 : bf16ToF32;
      for (let i = 0; i < n; i++) out[i] = conv(raw[i]);
      return;
    }
    case "F32":
    case "F64": {
      const raw = info.dtype === "F32" ? new Float32Array(n) : new Float64Array(n);
      readFully(fd, bytes(raw), info.begin, info.file, info.name);
      out.set(raw);
      return;
    }
    default:
      info.dtype satisfies never;
  }
}

/** The tensors of a checkpoint: one safetensors file, a sharded folder, or a folder with model.safetensors. */
export class Checkpoint {
  private fds = new Map<string, number>();

  private constructor(
    readonly where: string,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  /** Opens a .safetensors file or a model folder (sharded through model.safetensors.index.json, or single). */
  static open(where: string): Checkpoint {
    if (!fs.existsSync(where)) throw new InputError("no such file or folder", where);
    if (!fs.statSync(where).isDirectory()) {
      const h = readHeader(where);
      return new Checkpoint(where, h.tensors, h.metadata);
    }
    const index = path.join(where, "model.safetensors.index.json");
    const single = path.join(where, "model.safetensors");
    if (fs.existsSync(single)) return Checkpoint.open(single);
    if (!fs.existsSync(index)) {
      throw new InputError(
        "no model.safetensors or model.safetensors.index.json",
        where,
        "a model folder needs its weights in safetensors format (PyTorch .bin files are not read)",
      );
    }
    return Checkpoint.openIndex(index);
  }

  private static openIndex(index: string): Checkpoint {
    let json: { weight_map?: Record<string, string>; metadata?: Record<string, string> };
    try {
      json = JSON.parse(fs.readFileSync(index, "utf8"));
    } catch (e) {
      throw new InputError(`not valid JSON (${(e as Error).message})`, index);
    }
    const map = json.weight_map;
    if (!map || typeof map !== "object") throw new InputError("has no weight_map", index);
    const dir = path.dirname(index);
    const tensors = new Map<string, TensorInfo>();
    const headers = new Map<string, SafetensorsHeader>();
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) {
        throw new InputError(`weight_map entry for "${name}" is not a file name in the same folder`, index);
      }
      const file = path.join(dir, shard);
      if (!headers.has(file)) {
        if (!fs.existsSync(file)) throw new InputError(`shard ${shard} (holding "${name}") is missing`, index);
        headers.set(file, readHeader(file));
      }
      const info = headers.get(file)!.tensors.get(name);
      if (!info) throw new InputError(`tensor "${name}" is listed in the index but absent from the shard`, file);
      tensors.set(name, info);
    }
    return new Checkpoint(index, tensors, json.metadata ?? {});
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new InputError(`tensor "${name}" is missing`, this.where, "the checkpoint does not match the config");
    return t;
  }

  /** Reads a tensor (converted to f32 or f64) into `out`, or a new array; checks the shape when given. */
  read(name: string, dtype: "f32" | "f64" = "f32", expectShape?: readonly number[], out?: FloatArray): FloatArray {
    const t = this.info(name);
    if (expectShape && (expectShape.length !== t.shape.length || expectShape.some((s, i) => s !== t.shape[i]))) {
      throw new InputError(
        `tensor "${name}" has shape (${t.shape.join(", ")}), expected (${expectShape.join(", ")})`,
        t.file,
        "the weights do not match config.json",
      );
    }
    const n = t.shape.reduce((p, s) => p * s, 1);
    const arr = out ?? (dtype === "f64" ? new Float64Array(n) : new Float32Array(n));
    readTensorInto(this.fd(t.file), t, arr);
    this.checkFinite(name, t.file, arr, n);
    return arr;
  }

  /** Receives the warning for a tensor holding NaN/Inf (default: stderr); the load goes on, the values as stored. */
  static warn: (message: string) => void = (m) => process.stderr.write(`${m}\n`);

  private checkFinite(name: string, file: string, arr: FloatArray, n: number): void {
    let count = 0;
    let first = -1;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(arr[i])) {
        if (count++ === 0) first = i;
      }
    }
    if (count > 0) {
      Checkpoint.warn(
        `stepwise: warning: ${file}: tensor "${name}" holds ${count} non-finite value${count > 1 ? "s" : ""} ` +
          `(NaN/Inf, the first at index ${first}): outputs of this model will be NaN`,
      );
    }
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(file, "r");
      this.fds.set(file, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

// --- writing ---

/** A tensor to write; `data` is produced when its turn comes, so only one tensor is in host memory at a time. */
export interface TensorToWrite {
  name: string;
  shape: readonly number[];
  dtype: StDType;
  data: () => ArrayLike<number>;
}

/** Writes the bytes of one tensor, converted to the file dtype. */
function encode(t: TensorToWrite): Uint8Array {
  const src = t.data();
  const n = t.shape.reduce((p, s) => p * s, 1);
  if (src.length !== n) throw new InputError(`tensor "${t.name}" has ${src.length} elements, shape needs ${n}`);
  let arr: Float64Array | Float32Array | Uint16Array;
  switch (t.dtype) {
    case "F64":
      arr = src instanceof Float64Array ? src : Float64Array.from(src);
      break;
    case "F32":
      arr = src instanceof Float32Array ? src : Float32Array.from(src);
      break;
    case "F16":
    case "BF16": {
      const conv = t.dtype === "F16" ? f32ToF16 : f32ToBf16;
      arr = new Uint16Array(n);
      for (let i = 0; i < n; i++) arr[i] = conv(src[i]);
      break;
    }
    default:
      return t.dtype satisfies never;
  }
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

function headerBytes(tensors: TensorToWrite[], metadata: Record<string, string>): Buffer {
  const obj: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((p, s) => p * s, 1) * ST_BYTES[t.dtype];
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = Buffer.from(JSON.stringify(obj), "utf8");
  const body = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, " ")]); // tensor data 8-byte aligned
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return out;
}

/** Writes one safetensors file atomically; metadata defaults to {"format": "pt"} (what transformers expects). */
export function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> = { format: "pt" },
): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new InputError(`tensor "${t.name}" appears twice`, file);
    names.add(t.name);
  }
  atomicWrite(file, (fd) => {
    writeAllSync(fd, headerBytes(tensors, metadata));
    for (const t of tensors) writeAllSync(fd, encode(t));
  });
}

export function tensorBytes(t: Pick<TensorToWrite, "shape" | "dtype">): number {
  return t.shape.reduce((p, s) => p * s, 1) * ST_BYTES[t.dtype];
}

/**
 * Writes a model's tensors into a folder as `model.safetensors`, or as shards `model-0000i-of-0000n.safetensors`
 * plus `model.safetensors.index.json` when they exceed maxShardBytes. Weight files of an earlier save that the
 * new set does not use are removed afterwards (transformers would otherwise prefer a stale model.safetensors).
 */
export function writeCheckpoint(
  dir: string,
  tensors: TensorToWrite[],
  opts: { maxShardBytes?: number; metadata?: Record<string, string> } = {},
): string[] {
  const max = opts.maxShardBytes ?? 5 * 1024 ** 3; // transformers' default max_shard_size is 5 GB
  const metadata = opts.metadata ?? { format: "pt" };
  fs.mkdirSync(dir, { recursive: true });
  const shards: TensorToWrite[][] = [[]];
  let size = 0;
  let total = 0;
  for (const t of tensors) {
    const b = tensorBytes(t);
    if (size > 0 && size + b > max) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(t);
    size += b;
    total += b;
  }
  const files: string[] = [];
  if (shards.length === 1) {
    writeSafetensors(path.join(dir, "model.safetensors"), shards[0], metadata);
    files.push("model.safetensors");
  } else {
    const n = String(shards.length).padStart(5, "0");
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      const name = `model-${String(i + 1).padStart(5, "0")}-of-${n}.safetensors`;
      writeSafetensors(path.join(dir, name), s, metadata);
      for (const t of s) weightMap[t.name] = name;
      files.push(name);
    });
    writeJsonAtomic(path.join(dir, "model.safetensors.index.json"), {
      metadata: { total_size: total },
      weight_map: weightMap,
    });
    files.push("model.safetensors.index.json");
  }
  for (const f of fs.readdirSync(dir)) {
    const stale = /^model(-\d+-of-\d+)?\.safetensors(\.index\.json)?$/.test(f) && !files.includes(f);
    if (stale) fs.rmSync(path.join(dir, f));
  }
  return files;
}
