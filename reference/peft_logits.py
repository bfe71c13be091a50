"""Loads LoRA adapter folders with stock peft on their base models and prints the logits for one batch, as JSON.

    python3 reference/peft_logits.py '{"input_ids": [[...]], "attention_mask": [[...]]}' BASE_DIR ADAPTER_DIR [BASE_DIR ADAPTER_DIR ...]

Used by src/model/lora.test.ts to check that adapters stepwise saves load unchanged in peft (skipped where Python
with torch, transformers and peft is not installed). Every LoRA tensor of the loaded model must equal the file's
and the file may hold no other tensor: a missing, unexpected or misshapen weight is an error, not a warning.
Prints {"results": [{"adapter", "logits", "scales": {module: scaling}}], "peft"}.
"""

import json
import os
import sys

import peft
import torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def logits_of(base_dir, adapter_dir, ids, mask):
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    if set(saved) != set(loaded):
        sys.exit(f"adapter tensors differ: only in the file {sorted(set(saved) - set(loaded))}, "
                 f"only in the model {sorted(set(loaded) - set(saved))}")
    for name, t in saved.items():
        if t.shape != loaded[name].shape or not torch.equal(t.float(), loaded[name].float()):
            sys.exit(f"{name}: the loaded tensor differs from the file's")
    scales = {n.removeprefix("base_model.model."): m.scaling["default"] for n, m in model.named_modules()
              if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling}
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    return {"adapter": adapter_dir, "logits": logits.tolist(), "scales": scales}


def main():
    batch, dirs = json.loads(sys.argv[1]), sys.argv[2:]
    ids = torch.tensor(batch["input_ids"])
    mask = torch.tensor(batch.get("attention_mask", [[1] * ids.shape[1]] * ids.shape[0]))
    results = [logits_of(dirs[i], dirs[i + 1], ids, mask) for i in range(0, len(dirs), 2)]
    print(json.dumps({"results": results, "peft": peft.__version__}))


if __name__ == "__main__":
    main()
