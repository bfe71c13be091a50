"""Writes the adapter-only PEFT fixture that src/model/adapter-only.test.ts checks against (issue #17 item 2).

Run by hand from the repository root after make_fixtures.py (the outputs are committed):

    pip install torch==2.13.0 transformers safetensors peft
    python3 reference/make_adapter_only_fixture.py

The base, make_fixtures.py's llama-tiny, is put into a throwaway Hugging Face cache as the repo
"stepwise-fixtures/llama-tiny" and loaded *by that name* with HF_HUB_OFFLINE=1, as a user loads a hub model. A LoRA
adapter on it is then saved with peft's save_pretrained, unedited, so the folder is exactly what peft writes for such
a base: adapter_config.json (base_model_name_or_path "stepwise-fixtures/llama-tiny"), adapter_model.safetensors and
peft's README.md; no config.json, no tokenizer. Under src/model/fixtures/llama-tiny-adapter-only/:

  adapter/                that folder
  expected.json           base_model_name_or_path as peft wrote it, the input ids, the versions used
  reference.safetensors   "logits" (1, T, V) float32: stock transformers eager attention with the adapter, eval mode

lora_B, zero at creation, is set to N(0, 0.2) so the adapter changes the logits.
"""

import hashlib
import json
import os
import shutil
import tempfile

REPO_ID = "stepwise-fixtures/llama-tiny"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "model", "fixtures")


def fake_cache(base_dir):
    """A hub cache holding base_dir's files as main of REPO_ID (huggingface_hub's layout, plain copies)."""
    cache = tempfile.mkdtemp(prefix="stepwise-hf-cache-")
    commit = hashlib.sha1(b"llama-tiny").hexdigest()
    repo = os.path.join(cache, "models--" + REPO_ID.replace("/", "--"))
    snap = os.path.join(repo, "snapshots", commit)
    os.makedirs(snap)
    os.makedirs(os.path.join(repo, "refs"))
    for f in os.listdir(base_dir):
        shutil.copy(os.path.join(base_dir, f), os.path.join(snap, f))
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    return cache


def main():
    cache = fake_cache(os.path.join(ROOT, "llama-tiny", "model"))
    os.environ["HF_HUB_CACHE"] = cache
    os.environ["HF_HUB_OFFLINE"] = "1"
    import peft  # imported after the environment is set: huggingface_hub reads it then
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    folder = os.path.join(ROOT, "llama-tiny-adapter-only")
    adapter_dir = os.path.join(folder, "adapter")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(ROOT, "llama-tiny", "batch.json")) as f:
        ids = json.load(f)["input_ids"][0]  # the unpadded row

    torch.manual_seed(21)
    model = AutoModelForCausalLM.from_pretrained(REPO_ID, attn_implementation="eager")
    lora = LoraConfig(task_type="CAUSAL_LM", r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"])
    pm = get_peft_model(model, lora)
    g = torch.Generator().manual_seed(21)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    pm.save_pretrained(adapter_dir, safe_serialization=True)
    pm.eval()
    with torch.no_grad():
        logits = pm(input_ids=torch.tensor([ids])).logits
    save_file({"logits": logits.contiguous()}, os.path.join(folder, "reference.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        config = json.load(f)
    expected = {
        "repo_id": REPO_ID,
        "base_model_name_or_path": config["base_model_name_or_path"],
        "input_ids": ids,
        "files": sorted(os.listdir(adapter_dir)),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    shutil.rmtree(cache)
    print(f"{folder}: {expected['files']}, base_model_name_or_path {expected['base_model_name_or_path']!r}")


if __name__ == "__main__":
    main()
