"""Loads model folders with stock Hugging Face transformers and prints their logits for one batch, as JSON.

    python3 reference/hf_logits.py '{"input_ids": [[...]], "attention_mask": [[...]]}' MODEL_DIR [MODEL_DIR ...]

Used by src/model/hub.test.ts to check that folders stepwise saves load unchanged in transformers (skipped where
Python with torch and transformers is not installed). Prints {"results": [{"folder", "logits", "config_class"}]};
a folder with a missing, unexpected or mismatched weight is an error, not a warning.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM


def logits_of(folder, ids, mask):
    model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    model.eval()
    problems = {k: [str(x) for x in v] for k, v in info.items() if v}
    if problems:
        sys.exit(f"loading {folder}: {problems}")
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    return {"folder": folder, "logits": logits.tolist(), "config_class": type(model.config).__name__}


def main():
    batch, folders = json.loads(sys.argv[1]), sys.argv[2:]
    ids = torch.tensor(batch["input_ids"])
    mask = torch.tensor(batch.get("attention_mask", [[1] * ids.shape[1]] * ids.shape[0]))
    print(json.dumps({"results": [logits_of(f, ids, mask) for f in folders]}))


if __name__ == "__main__":
    main()
