"""Test vectors for stepwise's GGUF dequantizers (src/model/gguf-quants.ts), made by the `gguf` Python package.

For each ggml tensor type the fixture holds a few blocks' raw bytes and the floats gguf.quants.dequantize gives for
them, in two kinds of cases:
  - "random bytes": uniformly random block bytes (so every bit of every field is exercised), redrawn per block
    until the block's values are finite and below 1e4 in magnitude (random f16 scales may be Inf/NaN or huge);
  - "quantized normal": standard-normal floats through gguf.quants.quantize, where the package implements it (not
    for the K-quants), i.e. blocks shaped like real model weights.

Writes src/model/fixtures/gguf-quants/quants.json: {"version", "generator", "types": {NAME: {"type", "block",
"bytes_per_block", "cases": [{"what", "blocks", "bytes": base64, "values": base64 of little-endian float32}]}}}.

    pip install gguf==0.19.0 numpy
    python reference/make_gguf_quant_fixtures.py
"""

import base64
import json
import os
from importlib import metadata

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import GGML_QUANT_SIZES, dequantize, quantize

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
VALUES_PER_CASE = 1024  # 4 K-quant blocks, 32 legacy blocks
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "model", "fixtures", "gguf-quants", "quants.json")


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def dequant_bytes(raw: np.ndarray, t: T) -> np.ndarray:
    """The package's floats for raw block bytes (F32/F16 take typed arrays, the rest bytes)."""
    if t == T.F32:
        return raw.view(np.float32).astype(np.float32)
    if t == T.F16:
        return raw.view(np.float16).astype(np.float32)
    return dequantize(raw, t).astype(np.float32).reshape(-1)


def random_blocks(rng: np.random.Generator, t: T) -> np.ndarray:
    block, size = GGML_QUANT_SIZES[t]
    out = []
    for _ in range(VALUES_PER_CASE // block):
        while True:
            raw = rng.integers(0, 256, size=size, dtype=np.uint8)
            with np.errstate(all="ignore"):  # Inf/NaN scales are expected here, and rejected
                v = dequant_bytes(raw, t)
            if np.all(np.isfinite(v)) and np.max(np.abs(v)) < 1e4:
                out.append(raw)
                break
    return np.concatenate(out)


def case(what: str, raw: np.ndarray, t: T) -> dict:
    block, size = GGML_QUANT_SIZES[t]
    assert raw.size % size == 0
    return {"what": what, "blocks": raw.size // size, "bytes": b64(raw), "values": b64(dequant_bytes(raw, t))}


def main() -> None:
    rng = np.random.default_rng(20261207)
    types = {}
    for t in TYPES:
        block, size = GGML_QUANT_SIZES[t]
        cases = [case("random bytes", random_blocks(rng, t), t)]
        x = rng.standard_normal((4, VALUES_PER_CASE // 4)).astype(np.float32)
        try:
            q = quantize(x, t)
        except NotImplementedError:
            q = None
        if q is not None:
            cases.append(case("quantized normal", np.ascontiguousarray(q).view(np.uint8).reshape(-1), t))
        types[t.name] = {"type": int(t), "block": block, "bytes_per_block": size, "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    doc = {"version": 1, "generator": f"gguf {metadata.version('gguf')}", "types": types}
    with open(OUT + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    summary = ", ".join(f"{k} ({len(v['cases'])} cases)" for k, v in types.items())
    print(f"wrote {OUT}: {summary}")


if __name__ == "__main__":
    main()
