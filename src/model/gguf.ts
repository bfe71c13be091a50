// GGUF files: llama.cpp's single-file model format, written from a Llama (export for llama.cpp / Ollama) and read
// back: metadata, the tensor directory and (dequantized, gguf-quants.ts) tensors, for import (gguf-import.ts), for
// checks and for tokenizers shipped as vocab-only GGUFs.
//
// Layout (version 3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata as
// (string key, u32 value type, value); tensor infos as (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
// u64 offset); zero padding to the alignment (general.alignment, default 32); then the tensor data, each tensor at
// its offset from the start of the data section and padded to the alignment. A string is a u64 byte length and
// UTF-8 bytes; an array is a u32 item type, a u64 count and the items. ne lists dimensions innermost first: a
// row-major (rows, cols) matrix has ne = [cols, rows].
//
// Model export follows llama.cpp's conventions: arch "llama" (Llama, SmolLM2, Mistral) or "qwen2"; tensor names
// token_embd, blk.N.attn_q/k/v/output, ffn_gate/up/down, attn_norm, ffn_norm, output_norm, output (absent when
// tied); q/k rows of arch "llama" permuted from Hugging Face's rotate_half halves to interleaved pairs; llama3
// rope scaling as a rope_freqs tensor of per-frequency divisors. Tokenizer metadata comes from gguf-vocab.ts.
//
// Legend: C hidden size, H heads, Hkv key/value heads, D head size, F MLP size, V vocab.

import { atomicWrite, writeAllSync } from "../core/atomic.js";
import fs from "node:fs";
import type { HostArray } from "../backend/backend.js";
import { InputError } from "../core/errors.js";
import { bf16ToF32, f16ToF32, f32ToF16 } from "../core/half.js";
import type { Tensor } from "../engine/tensor.js";
import { DEQUANTIZABLE, dequantize, ggmlTensorBytes, ggmlTypeName } from "./gguf-quants.js";
import { ggufTokenizerMetadata, tokenizerFilesFromGguf } from "./gguf-vocab.js";
import { type Llama, ropeInvFreq } from "./llama.js";
import { TextTokenizer } from "./tokenizer.js";

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

// --- metadata values ---

/** Metadata value types, with their codes in the file. */
const VALUE_TYPES = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "u64" | "i64" | "f64";
export type GgufItemType = GgufNumberType | "bool" | "string";
const TYPE_BY_CODE = new Map<number, keyof typeof VALUE_TYPES>(
  Object.entries(VALUE_TYPES).map(([k, v]) => [v, k as keyof typeof VALUE_TYPES]),
);
const NUMBER_BYTES: Record<GgufNumberType, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** A typed metadata value. 64-bit integers are JS numbers (the reader rejects ones beyond 2^53). */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: GgufItemType; value: (number | boolean | string)[] };

/** Metadata in file order. */
export type GgufMetadata = Map<string, GgufValue>;

export const gguf = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  arr: (itemType: GgufItemType, value: (number | boolean | string)[]): GgufValue => ({
    type: "array",
    itemType,
    value,
  }),
};

// --- tensors ---

/** ggml tensor types we write; others are read as their numeric code. */
export const GGML_TYPES = { F32: 0, F16: 1 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;
const GGML_BYTES: Record<GgmlTypeName, number> = { F32: 4, F16: 2 };

export interface GgufTensorToWrite {
  name: string;
  shape: readonly number[]; // row-major, outermost first (as in safetensors); written reversed as ne
  type: GgmlTypeName;
  data: () => ArrayLike<number>; // produced when its turn comes: one tensor in host memory at a time
}

export interface GgufTensorInfo {
  name: string;
  shape: number[]; // row-major, outermost first (ne reversed)
  type: number; // ggml type code (0 F32, 1 F16, ...)
  offset: number; // from the start of the data section
}

export interface GgufFile {
  file: string;
  version: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number; // absolute offset of the data section
}

// --- writing ---

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  number(type: GgufNumberType, v: number): void {
    this.room(8);
    const b = this.buf;
    const at = this.length;
    switch (type) {
      case "u8":
        b.writeUInt8(v, at);
        break;
      case "i8":
        b.writeInt8(v, at);
        break;
      case "u16":
        b.writeUInt16LE(v, at);
        break;
      case "i16":
        b.writeInt16LE(v, at);
        break;
      case "u32":
        b.writeUInt32LE(v, at);
        break;
      case "i32":
        b.writeInt32LE(v, at);
        break;
      case "f32":
        b.writeFloatLE(v, at);
        break;
      case "u64":
        b.writeBigUInt64LE(BigInt(v), at);
        break;
      case "i64":
        b.writeBigInt64LE(BigInt(v), at);
        break;
      case "f64":
        b.writeDoubleLE(v, at);
        break;
      default:
        (type) satisfies never; // `type satisfies never;` alone would parse as a type alias
        return;
    }
    this.length += NUMBER_BYTES[type];
  }

  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.number("u64", bytes.length);
    this.room(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }

  item(type: GgufItemType, v: number | boolean | string, key: string): void {
    if (type === "string") {
      if (typeof v !== "string") throw new InputError(`metadata "${key}": expected a string, got ${typeof v}`);
      this.string(v);
    } else if (type === "bool") {
      if (typeof v !== "boolean") throw new InputError(`metadata "${key}": expected a boolean, got ${typeof v}`);
      this.number("u8", v ? 1 : 0);
    } else {
      if (typeof v !== "number" || !Number.isFinite(v))
        throw new InputError(`metadata "${key}": expected a number, got ${v}`);
      this.number(type, v);
    }
  }

  value(key: string, v: GgufValue): void {
    this.number("u32", VALUE_TYPES[v.type]);
    if (v.type !== "array") {
      this.item(v.type, v.value, key);
      return;
    }
    this.number("u32", VALUE_TYPES[v.itemType]);
    this.number("u64", v.value.length);
    for (const x of v.value) this.item(v.itemType, x, key);
  }

  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function padded(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Bytes of one tensor in its file type. */
function encodeTensor(t: GgufTensorToWrite, file: string): Uint8Array {
  const src = t.data();
  const n = t.shape.reduce((p, s) => p * s, 1);
  if (src.length !== n) throw new InputError(`tensor "${t.name}" has ${src.length} elements, shape needs ${n}`, file);
  switch (t.type) {
    case "F32": {
      const a = src instanceof Float32Array ? src : Float32Array.from(src);
      return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    }
    case "F16": {
      const a = new Uint16Array(n);
      for (let i = 0; i < n; i++) a[i] = f32ToF16(src[i]);
      return new Uint8Array(a.buffer);
    }
    default:
      return t.type satisfies never;
  }
}

/** Called after each tensor is written: bytes written so far and in all. */
export type WriteProgress = (bytes: number, total: number) => void;

/** Writes a GGUF file atomically, streaming tensors one at a time. */
export function writeGguf(
  file: string,
  metadata: GgufMetadata,
  tensors: GgufTensorToWrite[],
  opts: { alignment?: number; progress?: WriteProgress } = {},
): void {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (alignment !== GGUF_DEFAULT_ALIGNMENT)
    metadata = new Map([...metadata, ["general.alignment", gguf.u32(alignment)]]);
  const names = new Set<string>();
  const w = new ByteWriter();
  w.number("u32", MAGIC);
  w.number("u32", VERSION);
  w.number("u64", tensors.length);
  w.number("u64", metadata.size);
  for (const [key, v] of metadata) {
    w.string(key);
    w.value(key, v);
  }
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new InputError(`tensor "${t.name}" appears twice`, file);
    names.add(t.name);
    w.string(t.name);
    w.number("u32", t.shape.length);
    for (const d of [...t.shape].reverse()) w.number("u64", d);
    w.number("u32", GGML_TYPES[t.type]);
    w.number("u64", offset);
    offset += padded(t.shape.reduce((p, s) => p * s, 1) * GGML_BYTES[t.type], alignment);
  }
  w.pad(alignment);
  const total = w.length + offset;
  atomicWrite(file, (fd) => {
    writeAllSync(fd, w.bytes());
    let done = w.length;
    for (const t of tensors) {
      const bytes = encodeTensor(t, file);
      writeAllSync(fd, bytes);
      const pad = padded(bytes.length, alignment) - bytes.length;
      if (pad > 0) writeAllSync(fd, new Uint8Array(pad));
      done += bytes.length + pad;
      opts.progress?.(done, total);
    }
  });
}

// --- reading ---

/** Reads a file front to back through a window, so a multi-gigabyte model's header is read without its tensors. */
class ByteReader {
  private buf = Buffer.alloc(1 << 20);
  private start = 0; // file offset of buf[0]
  private end = 0; // file offset just past the valid bytes of buf
  pos = 0; // file offset of the next byte

  constructor(
    private readonly fd: number,
    readonly size: number,
    readonly file: string,
  ) {}

  private need(n: number, what: string): void {
    if (this.pos + n > this.size) {
      throw new InputError(
        `truncated: ${what} at byte ${this.pos} needs ${n} bytes, the file has ${this.size}`,
        this.file,
        "the file is incomplete or not a GGUF file",
      );
    }
    if (this.pos + n <= this.end) return;
    if (n > this.buf.length) this.buf = Buffer.alloc(n);
    this.start = this.pos;
    this.end = this.pos;
    const want = Math.min(this.buf.length, this.size - this.pos);
    while (this.end - this.start < want) {
      const got = fs.readSync(this.fd, this.buf, this.end - this.start, want - (this.end - this.start), this.end);
      if (got === 0) break;
      this.end += got;
    }
    if (this.pos + n > this.end) throw new InputError(`short read at byte ${this.pos}`, this.file);
  }

  number(type: GgufNumberType, what: string): number {
    this.need(NUMBER_BYTES[type], what);
    const b = this.buf;
    const at = this.pos - this.start;
    this.pos += NUMBER_BYTES[type];
    switch (type) {
      case "u8":
        return b.readUInt8(at);
      case "i8":
        return b.readInt8(at);
      case "u16":
        return b.readUInt16LE(at);
      case "i16":
        return b.readInt16LE(at);
      case "u32":
        return b.readUInt32LE(at);
      case "i32":
        return b.readInt32LE(at);
      case "f32":
        return b.readFloatLE(at);
      case "f64":
        return b.readDoubleLE(at);
      case "u64":
      case "i64": {
        const v = type === "u64" ? b.readBigUInt64LE(at) : b.readBigInt64LE(at);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new InputError(`${what}: ${v} is beyond 2^53`, this.file, "the file is corrupt");
        }
        return Number(v);
      }
      default:
        return type satisfies never;
    }
  }

  string(what: string): string {
    const n = this.number("u64", `${what} length`);
    this.need(n, what);
    const s = this.buf.toString("utf8", this.pos - this.start, this.pos - this.start + n);
    this.pos += n;
    return s;
  }

  item(type: GgufItemType, what: string): number | boolean | string {
    if (type === "string") return this.string(what);
    if (type === "bool") return this.number("u8", what) !== 0;
    return this.number(type, what);
  }

  valueType(what: string): keyof typeof VALUE_TYPES {
    const code = this.number("u32", what);
    const t = TYPE_BY_CODE.get(code);
    if (t === undefined) throw new InputError(`${what}: unknown value type ${code}`, this.file, "the file is corrupt");
    return t;
  }

  value(key: string): GgufValue {
    const type = this.valueType(`metadata "${key}" type`);
    if (type === "string") return { type, value: this.string(`metadata "${key}"`) };
    if (type === "bool") return { type, value: this.number("u8", `metadata "${key}"`) !== 0 };
    if (type !== "array") return { type, value: this.number(type, `metadata "${key}"`) };
    const itemType = this.valueType(`metadata "${key}" item type`);
    if (itemType === "array") throw new InputError(`metadata "${key}": nested arrays are not supported`, this.file);
    const n = this.number("u64", `metadata "${key}" count`);
    const minItem = itemType === "string" ? 8 : itemType === "bool" ? 1 : NUMBER_BYTES[itemType];
    if (n * minItem > this.size - this.pos)
      throw new InputError(`metadata "${key}": ${n} items run past the end`, this.file);
    const value: (number | boolean | string)[] = new Array(n);
    for (let i = 0; i < n; i++) value[i] = this.item(itemType, `metadata "${key}"[${i}]`);
    return { type, itemType, value };
  }
}

/** Reads a GGUF file's metadata and tensor directory (not the tensor data), checking what it reads. */
export function readGguf(file: string): GgufFile {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    throw new InputError(`cannot open: ${(e as Error).message}`, file);
  }
  try {
    const r = new ByteReader(fd, fs.fstatSync(fd).size, file);
    const magic = r.number("u32", "magic");
    if (magic !== MAGIC) throw new InputError("not a GGUF file (bad magic)", file);
    const version = r.number("u32", "version");
    if (version !== 2 && version !== 3)
      throw new InputError(`GGUF version ${version} is not supported`, file, "versions 2 and 3 are");
    const nTensors = r.number("u64", "tensor count");
    const nKv = r.number("u64", "metadata count");
    if (nKv > r.size || nTensors > r.size) throw new InputError(`counts ${nTensors}/${nKv} exceed the file size`, file);
    const metadata: GgufMetadata = new Map();
    for (let i = 0; i < nKv; i++) {
      const key = r.string(`metadata key ${i}`);
      metadata.set(key, r.value(key));
    }
    const align = metadata.get("general.alignment");
    const alignment = align === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(align.value);
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new InputError(`general.alignment ${alignment} is not a power of 2`, file);
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = r.string(`tensor ${i} name`);
      const nDims = r.number("u32", `tensor "${name}" rank`);
      if (nDims > 4) throw new InputError(`tensor "${name}" has ${nDims} dimensions, at most 4`, file);
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(r.number("u64", `tensor "${name}" dims`));
      const type = r.number("u32", `tensor "${name}" type`);
      const offset = r.number("u64", `tensor "${name}" offset`);
      if (offset % alignment !== 0)
        throw new InputError(`tensor "${name}" offset ${offset} is not aligned to ${alignment}`, file);
      tensors.push({ name, shape: ne.reverse(), type, offset });
    }
    const dataOffset = padded(r.pos, alignment);
    for (const t of tensors) {
      const bytes = DEQUANTIZABLE.includes(ggmlTypeName(t.type)) ? ggmlTensorBytes(t.type, t.shape, t.name, file) : 0;
      if (dataOffset + t.offset + bytes > r.size) {
        throw new InputError(
          `tensor "${t.name}" runs past the end of the ${r.size}-byte file`,
          file,
          "the file is truncated",
        );
      }
    }
    return { file, version, metadata, tensors, alignment, dataOffset };
  } finally {
    fs.closeSync(fd);
  }
}

/** The raw bytes of one tensor of a GGUF file (any type import reads; see gguf-quants.ts). */
export function readGgufTensorBytes(g: GgufFile, t: GgufTensorInfo): Uint8Array {
  const bytes = new Uint8Array(ggmlTensorBytes(t.type, t.shape, t.name, g.file));
  const fd = fs.openSync(g.file, "r");
  try {
    let done = 0;
    while (done < bytes.length) {
      const got = fs.readSync(fd, bytes, done, bytes.length - done, g.dataOffset + t.offset + done);
      if (got === 0) throw new InputError(`tensor "${t.name}": short read`, g.file, "the file is truncated");
      done += got;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/** Reads one tensor of a GGUF file as float32, dequantizing it (F32, F16, BF16, Q4_0 ... Q6_K). */
export function readGgufTensor(g: GgufFile, name: string): Float32Array {
  const t = g.tensors.find((x) => x.name === name);
  if (!t) throw new InputError(`no tensor "${name}"`, g.file);
  const n = t.shape.reduce((p, s) => p * s, 1);
  return dequantize(t.type, readGgufTensorBytes(g, t), n, t.name, g.file);
}

/** The tokenizer of a GGUF file's vocabulary (a model, or a vocab-only GGUF): llama.cpp's ids, as a TextTokenizer. */
export function loadGgufTokenizer(file: string): TextTokenizer {
  const { json, config } = tokenizerFilesFromGguf(readGguf(file).metadata, file);
  return new TextTokenizer(json, config, file);
}

// --- model export ---

export type GgufArch = "llama" | "qwen2";

export interface GgufExportOptions {
  dtype?: "f32" | "f16"; // matrices' type; norms, biases and rope_freqs stay F32. Default f32
  name?: string; // general.name, default "stepwise"
  progress?: WriteProgress;
}

/** The GGUF architecture of a config: Llama, SmolLM2 and Mistral (no sliding window) are "llama". */
export function ggufArch(model: Llama): GgufArch {
  const mt = model.config.model_type ?? "llama";
  switch (mt) {
    case "llama":
    case "mistral":
      return "llama";
    case "qwen2":
      return "qwen2";
    default:
      return mt satisfies never;
  }
}

/** Checks that llama.cpp's graph for `arch` computes what our model computes; throws naming what it cannot. */
function checkExportable(model: Llama, arch: GgufArch): void {
  const c = model.config;
  const D = model.headDim;
  const fail = (what: string, hint: string) =>
    new InputError(`cannot export to GGUF arch "${arch}": ${what}`, undefined, hint);
  if (arch === "qwen2") {
    if (D * c.num_attention_heads !== c.hidden_size) {
      throw fail(
        `head_dim ${D} * heads ${c.num_attention_heads} != hidden_size ${c.hidden_size}`,
        "llama.cpp's qwen2 graph assumes head_dim = hidden_size / num_attention_heads",
      );
    }
    if (c.attention_out_bias) throw fail("o_proj bias", "llama.cpp's qwen2 graph has no attention output bias");
    if (c.rope_scaling?.rope_type === "llama3")
      throw fail("llama3 rope scaling", "llama.cpp's qwen2 graph reads no rope_freqs");
  }
}

/** GGUF hyperparameter metadata of a model (general.* and {arch}.*). */
export function ggufModelMetadata(model: Llama, opts: GgufExportOptions = {}): GgufMetadata {
  const c = model.config;
  const arch = ggufArch(model);
  const D = model.headDim;
  const m: GgufMetadata = new Map();
  m.set("general.architecture", gguf.str(arch));
  m.set("general.name", gguf.str(opts.name ?? "stepwise"));
  m.set("general.file_type", gguf.u32((opts.dtype ?? "f32") === "f16" ? 1 : 0)); // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16
  m.set(`${arch}.vocab_size`, gguf.u32(c.vocab_size));
  m.set(`${arch}.context_length`, gguf.u32(c.max_position_embeddings));
  m.set(`${arch}.embedding_length`, gguf.u32(c.hidden_size));
  m.set(`${arch}.block_count`, gguf.u32(c.num_hidden_layers));
  m.set(`${arch}.feed_forward_length`, gguf.u32(c.intermediate_size));
  m.set(`${arch}.attention.head_count`, gguf.u32(c.num_attention_heads));
  m.set(`${arch}.attention.head_count_kv`, gguf.u32(c.num_key_value_heads));
  m.set(`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rms_norm_eps));
  m.set(`${arch}.rope.freq_base`, gguf.f32(c.rope_theta));
  m.set(`${arch}.rope.dimension_count`, gguf.u32(D));
  if (D * c.num_attention_heads !== c.hidden_size) {
    m.set(`${arch}.attention.key_length`, gguf.u32(D));
    m.set(`${arch}.attention.value_length`, gguf.u32(D));
  }
  if (c.rope_scaling?.rope_type === "linear") {
    m.set(`${arch}.rope.scaling.type`, gguf.str("linear"));
    m.set(`${arch}.rope.scaling.factor`, gguf.f32(c.rope_scaling.factor));
  }
  return m;
}

/**
 * Hugging Face rotary layout -> llama.cpp "llama" layout for a q or k projection (weight rows or bias). HF rotates
 * pairs (i, i + D/2) of each head; llama.cpp rotates adjacent pairs (2i, 2i + 1). Row h*D + s*D/2 + i moves to
 * h*D + 2i + s, so that llama.cpp's pair i holds HF's pair i.
 */
export function permuteRotaryRows(src: ArrayLike<number>, heads: number, D: number, cols: number): Float32Array {
  const out = new Float32Array(heads * D * cols);
  const half = D / 2;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const from = (h * D + s * half + i) * cols;
        const to = (h * D + 2 * i + s) * cols;
        for (let j = 0; j < cols; j++) out[to + j] = src[from + j];
      }
    }
  }
  return out;
}

/** The inverse of permuteRotaryRows: llama.cpp "llama" layout -> Hugging Face rotary layout (for import). */
export function unpermuteRotaryRows(src: ArrayLike<number>, heads: number, D: number, cols: number): Float32Array {
  const out = new Float32Array(heads * D * cols);
  const half = D / 2;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const from = (h * D + 2 * i + s) * cols;
        const to = (h * D + s * half + i) * cols;
        for (let j = 0; j < cols; j++) out[to + j] = src[from + j];
      }
    }
  }
  return out;
}

/** A parameter's values as floats (storage-only f16/bf16 parameters are widened). */
function floats(p: Tensor): ArrayLike<number> {
  const a: HostArray = p.toArray();
  if (p.dtype === "f16" || p.dtype === "bf16") {
    const conv = p.dtype === "f16" ? f16ToF32 : bf16ToF32;
    return Float32Array.from(a as Uint16Array, (h) => conv(h));
  }
  return a;
}

/** The model's tensors under llama.cpp's names, in its order, permuted where arch "llama" needs it. */
export function ggufTensors(model: Llama, opts: GgufExportOptions = {}): GgufTensorToWrite[] {
  const c = model.config;
  const arch = ggufArch(model);
  const D = model.headDim;
  const matType: GgmlTypeName = (opts.dtype ?? "f32") === "f16" ? "F16" : "F32";
  const out: GgufTensorToWrite[] = [];
  const add = (name: string, p: Tensor, type: GgmlTypeName, rotaryHeads = 0) => {
    const cols = p.rank === 2 ? p.shape[1] : 1;
    const data =
      rotaryHeads > 0 && arch === "llama" ? () => permuteRotaryRows(floats(p), rotaryHeads, D, cols) : () => floats(p);
    out.push({ name, shape: p.shape, type, data });
  };
  add("token_embd.weight", model.embed, matType);
  if (c.rope_scaling?.rope_type === "llama3") {
    const base = ropeInvFreq({ rope_theta: c.rope_theta }, D);
    const scaled = ropeInvFreq(c, D);
    const factors = Float32Array.from(base, (f, i) => f / scaled[i]); // llama.cpp divides each frequency by these
    out.push({ name: "rope_freqs.weight", shape: [D / 2], type: "F32", data: () => factors });
  }
  model.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, l.inputNorm, "F32");
    add(`${b}attn_q.weight`, l.q, matType, c.num_attention_heads);
    add(`${b}attn_k.weight`, l.k, matType, c.num_key_value_heads);
    add(`${b}attn_v.weight`, l.v, matType);
    if (l.qBias) add(`${b}attn_q.bias`, l.qBias, "F32", c.num_attention_heads);
    if (l.kBias) add(`${b}attn_k.bias`, l.kBias, "F32", c.num_key_value_heads);
    if (l.vBias) add(`${b}attn_v.bias`, l.vBias, "F32");
    add(`${b}attn_output.weight`, l.o, matType);
    if (l.oBias) add(`${b}attn_output.bias`, l.oBias, "F32");
    add(`${b}ffn_norm.weight`, l.postNorm, "F32");
    add(`${b}ffn_gate.weight`, l.gate, matType);
    add(`${b}ffn_up.weight`, l.up, matType);
    add(`${b}ffn_down.weight`, l.down, matType);
  });
  add("output_norm.weight", model.norm, "F32");
  if (!c.tie_word_embeddings) add("output.weight", model.lmHead, matType); // absent: llama.cpp reuses token_embd
  return out;
}

/**
 * Writes a model and its tokenizer as one GGUF file (atomically) that llama.cpp loads and runs: the same
 * next-token distribution as our forward, to float rounding (F32), or to f16 weight rounding (F16).
 */
export function exportGguf(
  model: Llama,
  tokenizer: TextTokenizer,
  file: string,
  opts: GgufExportOptions = {},
): { arch: GgufArch; tensors: number } {
  const dtype = opts.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16")
    throw new InputError(`unknown GGUF dtype "${dtype}"`, undefined, "use f32 or f16");
  const arch = ggufArch(model);
  checkExportable(model, arch);
  const metadata = ggufModelMetadata(model, opts);
  for (const [k, v] of ggufTokenizerMetadata(tokenizer, model.config.vocab_size)) metadata.set(k, v);
  const tensors = ggufTensors(model, opts);
  writeGguf(file, metadata, tensors, { progress: opts.progress });
  return { arch, tensors: tensors.length };
}
