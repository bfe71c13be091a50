// ggml tensor types of GGUF files and their dequantizers: raw tensor bytes -> float32 values, for import.
//
// A quantized tensor is a sequence of blocks along its rows (ne[0], the innermost dimension, is a multiple of the
// block size); a block of `block` values takes `bytes` bytes. Every multi-byte field is little-endian; d, dmin and m
// are IEEE f16. Legend per block: y the block's values (block), q the small integer codes.
//
// Plain floats: F32, F16, BF16 (the top 16 bits of an f32), one value a "block".
// Legacy quants (32 values a block; element j < 16 in the low nibble of qs[j], element j + 16 in the high one):
//   Q4_0 (18 B): d, qs[16]                       y = d * (q - 8)
//   Q4_1 (20 B): d, m, qs[16]                    y = d * q + m
//   Q5_0 (22 B): d, qh u32, qs[16]               q |= bit j of qh << 4 (bit j + 16 for element j + 16); y = d * (q - 16)
//   Q5_1 (24 B): d, m, qh u32, qs[16]            as Q5_0 with y = d * q + m
//   Q8_0 (34 B): d, qs[32] int8                  y = d * q
// K-quants (256 values a super-block of 16 or 8 sub-blocks, each with its own scale):
//   Q2_K (84 B):  scales[16], qs[64], d, dmin    scale byte: low nibble scale, high nibble min; y = d*sc*q - dmin*mn
//   Q3_K (110 B): hmask[32], qs[64], scales[12], d    16 signed 6-bit scales (stored + 32); y = d*(sc-32)*(q - 4*!hbit)
//   Q4_K (144 B): d, dmin, scales[12], qs[128]   8 (scale, min) 6-bit pairs; y = d*sc*q - dmin*mn
//   Q5_K (176 B): d, dmin, scales[12], qh[32], qs[128]    as Q4_K, a fifth bit from qh
//   Q6_K (210 B): ql[128], qh[64], scales[16] int8, d     q = 4 low bits | 2 high bits << 4; y = d*sc*(q - 32)
// The bit order inside each K-quant layout is written next to its dequantizer.

import { InputError } from "../core/errors.js";

/** ggml's type codes by name (the codes are fixed by the format; several are not importable, see DEQUANT). */
export const GGML_TYPE_CODES = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;
export type GgmlTypeCodeName = keyof typeof GGML_TYPE_CODES;

const NAME_BY_CODE = new Map<number, string>(Object.entries(GGML_TYPE_CODES).map(([k, v]) => [v, k]));

/** The name of a ggml type code ("Q4_K"), or "type N" for a code we do not know. */
export function ggmlTypeName(code: number): string {
  return NAME_BY_CODE.get(code) ?? `type ${code}`;
}

/** Decodes one block: bytes b[at, at + bytes) -> y[yo, yo + block). */
type BlockDecoder = (b: Uint8Array, at: number, y: Float32Array, yo: number) => void;

/** Decodes a whole tensor of n values (plain float types). */
type BulkDecoder = (b: Uint8Array, n: number) => Float32Array;

/** A type's block size (values, bytes) and its decoder: block by block, or a whole tensor at once. */
type Dequantizer = { block: number; bytes: number } & ({ decode: BlockDecoder } | { bulk: BulkDecoder });

// f16 through a lookup table: a model has millions of f16 scales.
const F16 = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0)
      t[h] = sign * mant * 2 ** -24; // subnormal
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
})();
const f16 = (b: Uint8Array, at: number) => F16[b[at] | (b[at + 1] << 8)];
const i8 = (x: number) => (x << 24) >> 24;

// --- plain floats (decoded a whole tensor at a time: a call per value would dominate) ---

const f32All: BulkDecoder = (b, n) => {
  const y = new Float32Array(n);
  new Uint8Array(y.buffer).set(b.subarray(0, 4 * n)); // the file is little-endian, as every platform Node runs on
  return y;
};
const f16All: BulkDecoder = (b, n) => {
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = F16[b[2 * i] | (b[2 * i + 1] << 8)];
  return y;
};
const bf16All: BulkDecoder = (b, n) => {
  const y = new Float32Array(n);
  const bits = new Uint32Array(y.buffer);
  for (let i = 0; i < n; i++) bits[i] = ((b[2 * i] << 16) | (b[2 * i + 1] << 24)) >>> 0; // bf16: an f32's top half
  return y;
};

// --- legacy quants (32 a block) ---

const q4_0: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  for (let j = 0; j < 16; j++) {
    const x = b[at + 2 + j];
    y[yo + j] = d * ((x & 0xf) - 8);
    y[yo + j + 16] = d * ((x >> 4) - 8);
  }
};

const q4_1: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  const m = f16(b, at + 2);
  for (let j = 0; j < 16; j++) {
    const x = b[at + 4 + j];
    y[yo + j] = d * (x & 0xf) + m;
    y[yo + j + 16] = d * (x >> 4) + m;
  }
};

/** The 5-bit codes of a Q5 block: 16 low/high nibbles at qs, the fifth bits in the u32 at qh. */
function q5Codes(b: Uint8Array, qh: number, qs: number, q: Int32Array): void {
  const h = (b[qh] | (b[qh + 1] << 8) | (b[qh + 2] << 16) | (b[qh + 3] << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    q[j] = (b[qs + j] & 0xf) | (((h >>> j) & 1) << 4);
    q[j + 16] = (b[qs + j] >> 4) | (((h >>> (j + 16)) & 1) << 4);
  }
}
const Q5 = new Int32Array(32);

const q5_0: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  q5Codes(b, at + 2, at + 6, Q5);
  for (let j = 0; j < 32; j++) y[yo + j] = d * (Q5[j] - 16);
};

const q5_1: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  const m = f16(b, at + 2);
  q5Codes(b, at + 4, at + 8, Q5);
  for (let j = 0; j < 32; j++) y[yo + j] = d * Q5[j] + m;
};

const q8_0: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  for (let j = 0; j < 32; j++) y[yo + j] = d * i8(b[at + 2 + j]);
};

// --- K-quants (256 a super-block) ---

/**
 * Q2_K: 16 sub-blocks of 16. Each 128-value half uses 32 bytes of qs; value 32*s + l of the half (shift s = 0..3,
 * l < 32) is bits 2s..2s+1 of qs[l]; its sub-block (16 values) takes the next scales byte in order.
 */
const q2_K: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at + 80);
  const dmin = f16(b, at + 82);
  let k = 0;
  for (let half = 0; half < 2; half++) {
    const qs = at + 16 + 32 * half;
    for (let s = 0; s < 4; s++) {
      for (let sub = 0; sub < 2; sub++) {
        const sc = b[at + k++];
        const dl = d * (sc & 0xf);
        const ml = dmin * (sc >> 4);
        for (let l = 16 * sub; l < 16 * sub + 16; l++)
          y[yo + 128 * half + 32 * s + l] = dl * ((b[qs + l] >> (2 * s)) & 3) - ml;
      }
    }
  }
};

/**
 * Q3_K scales: 16 6-bit values in 12 bytes. Low 4 bits of scale i: byte i (i < 8) low nibble, byte i - 8 high
 * nibble (i >= 8); high 2 bits: bits 2*floor(i/4).. of byte 8 + i%4. Stored with +32.
 */
function q3Scales(b: Uint8Array, at: number, out: Int32Array): void {
  for (let i = 0; i < 16; i++) {
    const low = i < 8 ? b[at + i] & 0xf : b[at + i - 8] >> 4;
    const high = (b[at + 8 + (i % 4)] >> (2 * Math.floor(i / 4))) & 3;
    out[i] = (low | (high << 4)) - 32;
  }
}
const Q3_SCALES = new Int32Array(16);

/** Q3_K: codes as Q2_K (2 bits from qs), minus 4 where bit (4*half + s) of hmask[l] is clear. */
const q3_K: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at + 108);
  q3Scales(b, at + 96, Q3_SCALES);
  let k = 0;
  for (let half = 0; half < 2; half++) {
    const qs = at + 32 + 32 * half;
    for (let s = 0; s < 4; s++) {
      const bit = 1 << (4 * half + s);
      for (let sub = 0; sub < 2; sub++) {
        const dl = d * Q3_SCALES[k++];
        for (let l = 16 * sub; l < 16 * sub + 16; l++) {
          const q = ((b[qs + l] >> (2 * s)) & 3) - (b[at + l] & bit ? 0 : 4);
          y[yo + 128 * half + 32 * s + l] = dl * q;
        }
      }
    }
  }
};

/**
 * Q4_K/Q5_K scales and mins: 8 6-bit pairs in 12 bytes. j < 4: scale = byte j & 63, min = byte j + 4 & 63;
 * j >= 4: scale = (byte j + 4 & 0xf) | (byte j - 4 >> 6) << 4, min = (byte j + 4 >> 4) | (byte j >> 6) << 4.
 */
function k4Scales(b: Uint8Array, at: number, sc: Int32Array, mn: Int32Array): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      sc[j] = b[at + j] & 63;
      mn[j] = b[at + j + 4] & 63;
    } else {
      sc[j] = (b[at + j + 4] & 0xf) | ((b[at + j - 4] >> 6) << 4);
      mn[j] = (b[at + j + 4] >> 4) | ((b[at + j] >> 6) << 4);
    }
  }
}
const K_SC = new Int32Array(8);
const K_MN = new Int32Array(8);

/** Q4_K: 4 chunks of 64 values; chunk c is the low nibbles (sub-block 2c) then high nibbles (2c + 1) of qs[32c..]. */
const q4_K: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  const dmin = f16(b, at + 2);
  k4Scales(b, at + 4, K_SC, K_MN);
  for (let c = 0; c < 4; c++) {
    const qs = at + 16 + 32 * c;
    const [d1, m1, d2, m2] = [d * K_SC[2 * c], dmin * K_MN[2 * c], d * K_SC[2 * c + 1], dmin * K_MN[2 * c + 1]];
    for (let l = 0; l < 32; l++) {
      y[yo + 64 * c + l] = d1 * (b[qs + l] & 0xf) - m1;
      y[yo + 64 * c + 32 + l] = d2 * (b[qs + l] >> 4) - m2;
    }
  }
};

/** Q5_K: as Q4_K, plus 16 where bit 2c (low nibbles) or 2c + 1 (high nibbles) of qh[l] is set. */
const q5_K: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at);
  const dmin = f16(b, at + 2);
  k4Scales(b, at + 4, K_SC, K_MN);
  for (let c = 0; c < 4; c++) {
    const qs = at + 48 + 32 * c;
    const [d1, m1, d2, m2] = [d * K_SC[2 * c], dmin * K_MN[2 * c], d * K_SC[2 * c + 1], dmin * K_MN[2 * c + 1]];
    for (let l = 0; l < 32; l++) {
      const h = b[at + 16 + l];
      y[yo + 64 * c + l] = d1 * ((b[qs + l] & 0xf) + ((h >> (2 * c)) & 1) * 16) - m1;
      y[yo + 64 * c + 32 + l] = d2 * ((b[qs + l] >> 4) + ((h >> (2 * c + 1)) & 1) * 16) - m2;
    }
  }
};

/**
 * Q6_K: two 128-value halves, each with 64 bytes of ql, 32 of qh and 8 scales. Within a half, for l < 32:
 * value l + 32r (r = 0..3) takes the low (r < 2) or high (r >= 2) nibble of ql[l + 32*(r & 1)], bits 2r..2r+1
 * of qh[l], and scale 2r + floor(l / 16).
 */
const q6_K: BlockDecoder = (b, at, y, yo) => {
  const d = f16(b, at + 208);
  for (let half = 0; half < 2; half++) {
    const ql = at + 64 * half;
    const qh = at + 128 + 32 * half;
    const sc = at + 192 + 8 * half;
    for (let l = 0; l < 32; l++) {
      for (let r = 0; r < 4; r++) {
        const lo = b[ql + l + 32 * (r & 1)];
        const q = ((r < 2 ? lo & 0xf : lo >> 4) | (((b[qh + l] >> (2 * r)) & 3) << 4)) - 32;
        y[yo + 128 * half + 32 * r + l] = d * i8(b[sc + 2 * r + (l >> 4)]) * q;
      }
    }
  }
};

/** Every type import can read, by code. */
const DEQUANT = new Map<number, Dequantizer>([
  [GGML_TYPE_CODES.F32, { block: 1, bytes: 4, bulk: f32All }],
  [GGML_TYPE_CODES.F16, { block: 1, bytes: 2, bulk: f16All }],
  [GGML_TYPE_CODES.BF16, { block: 1, bytes: 2, bulk: bf16All }],
  [GGML_TYPE_CODES.Q4_0, { block: 32, bytes: 18, decode: q4_0 }],
  [GGML_TYPE_CODES.Q4_1, { block: 32, bytes: 20, decode: q4_1 }],
  [GGML_TYPE_CODES.Q5_0, { block: 32, bytes: 22, decode: q5_0 }],
  [GGML_TYPE_CODES.Q5_1, { block: 32, bytes: 24, decode: q5_1 }],
  [GGML_TYPE_CODES.Q8_0, { block: 32, bytes: 34, decode: q8_0 }],
  [GGML_TYPE_CODES.Q2_K, { block: 256, bytes: 84, decode: q2_K }],
  [GGML_TYPE_CODES.Q3_K, { block: 256, bytes: 110, decode: q3_K }],
  [GGML_TYPE_CODES.Q4_K, { block: 256, bytes: 144, decode: q4_K }],
  [GGML_TYPE_CODES.Q5_K, { block: 256, bytes: 176, decode: q5_K }],
  [GGML_TYPE_CODES.Q6_K, { block: 256, bytes: 210, decode: q6_K }],
]);

/** Names of the types import reads. */
export const DEQUANTIZABLE: readonly string[] = [...DEQUANT.keys()].map(ggmlTypeName);

function dequantizer(type: number, tensor: string, where?: string): Dequantizer {
  const dq = DEQUANT.get(type);
  if (!dq) {
    throw new InputError(
      `tensor "${tensor}" has ggml type ${ggmlTypeName(type)} (code ${type}), which cannot be dequantized`,
      where,
      `supported types: ${DEQUANTIZABLE.join(", ")}`,
    );
  }
  return dq;
}

/**
 * Bytes of a tensor of `type` with row-major `shape` (outermost first), checking that its rows (the innermost
 * dimension) hold whole blocks. Throws naming the tensor for a type we cannot read.
 */
export function ggmlTensorBytes(type: number, shape: readonly number[], tensor: string, where?: string): number {
  const dq = dequantizer(type, tensor, where);
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  if (cols % dq.block !== 0) {
    throw new InputError(
      `tensor "${tensor}" (${ggmlTypeName(type)}): rows of ${cols} values are not whole ` + `${dq.block}-value blocks`,
      where,
      "the file is corrupt",
    );
  }
  const n = shape.reduce((p, s) => p * s, 1);
  return (n / dq.block) * dq.bytes;
}

/** Dequantizes a tensor's raw bytes (`n` values of `type`) into float32. */
export function dequantize(
  type: number,
  bytes: Uint8Array,
  n: number,
  tensor = "tensor",
  where?: string,
): Float32Array {
  const dq = dequantizer(type, tensor, where);
  if (n % dq.block !== 0 || bytes.length < (n / dq.block) * dq.bytes) {
    throw new InputError(
      `tensor "${tensor}" (${ggmlTypeName(type)}): ${bytes.length} bytes cannot hold ${n} values`,
      where,
    );
  }
  if ("bulk" in dq) return dq.bulk(bytes, n);
  const y = new Float32Array(n);
  for (let k = 0, at = 0; k < n; k += dq.block, at += dq.bytes) dq.decode(bytes, at, y, k);
  return y;
}
