"""An independent oracle for `stepwise import gguf`: a tiny random llama GGUF written with the `gguf` package's own
writer (one tensor type per matrix, every importable quant type used once), and the logits transformers computes
when it loads that file itself (`from_pretrained(dir, gguf_file=...)`, which dequantizes with gguf-py and undoes
llama.cpp's q/k permutation on its own).

Writes src/model/fixtures/gguf-tiny/:
  tiny-llama.gguf  1 layer, hidden 256 (K-quant rows need 256), 4 heads of 64, 1 key/value head, vocab 256
  logits.json      {"version", "generator", "types": {tensor: type}, "input_ids": [[...]], "logits": base64 of
                   little-endian float32 (B, T, V)}

Weights: standard-normal floats * 0.05 through gguf.quants.quantize for the legacy types; for the K-quants (which
gguf-py cannot quantize) random block bytes with their f16 scale fields set small, so values stay near 0.05.

    pip install gguf==0.19.0 numpy torch transformers accelerate
    python reference/make_gguf_import_fixtures.py
"""

import base64
import json
import os
from importlib import metadata

import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.quants import GGML_QUANT_SIZES, quantize
from transformers import AutoModelForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "model", "fixtures", "gguf-tiny")
C, H, HKV, D, F, V = 256, 4, 1, 64, 256, 256
# Byte offsets and values of the f16 scale fields set in random K-quant blocks (d, and dmin where there is one).
K_SCALES = {T.Q2_K: [(80, 2e-3), (82, 1e-3)], T.Q3_K: [(108, 4e-4)], T.Q4_K: [(0, 1e-4), (2, 1e-4)],
            T.Q5_K: [(0, 5e-5), (2, 5e-5)], T.Q6_K: [(208, 2e-5)]}
TYPES = {
    "token_embd.weight": T.Q8_0, "blk.0.attn_q.weight": T.Q4_0, "blk.0.attn_k.weight": T.Q4_1,
    "blk.0.attn_v.weight": T.Q5_0, "blk.0.attn_output.weight": T.Q5_1, "blk.0.ffn_gate.weight": T.Q2_K,
    "blk.0.ffn_up.weight": T.Q3_K, "blk.0.ffn_down.weight": T.Q4_K, "output.weight": T.Q6_K,
    "blk.0.attn_norm.weight": T.F16, "blk.0.ffn_norm.weight": T.BF16, "output_norm.weight": T.F32,
}
SHAPES = {  # numpy (rows, cols), as the model holds them
    "token_embd.weight": (V, C), "blk.0.attn_q.weight": (H * D, C), "blk.0.attn_k.weight": (HKV * D, C),
    "blk.0.attn_v.weight": (HKV * D, C), "blk.0.attn_output.weight": (C, H * D), "blk.0.ffn_gate.weight": (F, C),
    "blk.0.ffn_up.weight": (F, C), "blk.0.ffn_down.weight": (C, F), "output.weight": (V, C),
    "blk.0.attn_norm.weight": (C,), "blk.0.ffn_norm.weight": (C,), "output_norm.weight": (C,),
}


def k_quant_bytes(rng: np.random.Generator, t: T, shape) -> np.ndarray:
    block, size = GGML_QUANT_SIZES[t]
    rows, cols = shape
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    for at, value in K_SCALES[t]:
        raw[:, :, at:at + 2] = np.frombuffer(np.float16(value).tobytes(), dtype=np.uint8)
    return raw.reshape(rows, -1)


def tensor(rng: np.random.Generator, name: str) -> np.ndarray:
    t, shape = TYPES[name], SHAPES[name]
    if t in K_SCALES:
        return k_quant_bytes(rng, t, shape)
    x = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    if name.endswith("norm.weight"):
        x = (1 + 0.3 * rng.standard_normal(shape)).astype(np.float32)
    return x.astype(np.float16) if t == T.F16 else x if t == T.F32 else quantize(x, t)


def write_gguf(file: str) -> None:
    rng = np.random.default_rng(20261207)
    w = GGUFWriter(file, "llama")
    w.add_name("stepwise tiny oracle")
    w.add_context_length(512)
    w.add_embedding_length(C)
    w.add_block_count(1)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(HKV)
    w.add_rope_dimension_count(D)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list([bytes([b]).hex() for b in range(V)])  # any distinct strings: the oracle uses ids
    w.add_token_types([1] * V)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for name in TYPES:
        data = tensor(rng, name)
        t = TYPES[name]
        if t in (T.F32, T.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=t)  # uint8 (rows, bytes per row)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    file = os.path.join(OUT, "tiny-llama.gguf")
    write_gguf(file)
    model = AutoModelForCausalLM.from_pretrained(OUT, gguf_file="tiny-llama.gguf", dtype=torch.float32)
    model.eval()
    ids = torch.tensor([[1, 17, 200, 3, 3, 99, 255, 0, 42, 128, 7, 64], [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float().numpy()
    doc = {
        "version": 1,
        "generator": f"gguf {metadata.version('gguf')}, transformers {metadata.version('transformers')}, "
                     f"torch {metadata.version('torch')}",
        "types": {k: v.name for k, v in TYPES.items()},
        "input_ids": ids.tolist(),
        "logits": base64.b64encode(logits.astype("<f4").tobytes()).decode("ascii"),
    }
    with open(os.path.join(OUT, "logits.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {file} ({os.path.getsize(file)} bytes) and logits.json: {logits.shape}")


if __name__ == "__main__":
    main()
