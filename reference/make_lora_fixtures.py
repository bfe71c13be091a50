"""Writes the PEFT LoRA fixtures that stepwise's LoRA tests (src/model/lora.test.ts) check against.

Run by hand from the repository root after make_fixtures.py (the outputs are committed):

    pip install torch==2.13.0 transformers safetensors peft
    python3 reference/make_lora_fixtures.py

For each adapter below, on the tiny random models of make_fixtures.py and their fixed batch (batch.json there),
it writes under src/model/fixtures/NAME/:

  adapter/                adapter_config.json + adapter_model.safetensors from peft's save_pretrained (f32), with
                          base_model_name_or_path rewritten to the base folder relative to the adapter folder
  expected.json           the loss in float64 and float32, the scale of each adapted module, the versions used
  reference.safetensors   "logits" (B, T, V) float64 and "grad.<PEFT tensor name>" of every lora_A / lora_B, float64:
                          the f32 weights run in float64 with make_fixtures.py's float64 rotary tables, RMSNorm and
                          attention (so the base part is the same computation its fixtures pin); "logits_f32": stock
                          HF eager attention in float32

lora_A keeps peft's kaiming-uniform draw; lora_B, zero at creation, is set to N(0, 0.2) so the adapter changes the
logits and lora_A gets a gradient. Everything runs in eval mode: lora_dropout is in the config (and must be read)
but inactive, as it is in stepwise outside training.

  llama-tiny-lora   all seven projections, r 4, alpha 8 (scale 2), dropout 0.1
  qwen2-tiny-lora   q_proj, v_proj, down_proj, r 3, alpha 5, rsLoRA (alpha / sqrt(r)), rank_pattern
                    {"down_proj": 2}, alpha_pattern {"layers.1.self_attn.q_proj": 7}: per-module ranks and scales on
                    a model with q/k/v biases and tied embeddings
"""

import json
import os
import sys

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM, Qwen2ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import ROOT, use_f64_everywhere  # noqa: E402  (also registers the "f64_eager" attention)


def load_batch(base_name):
    with open(os.path.join(ROOT, base_name, "batch.json")) as f:
        b = json.load(f)
    return tuple(torch.tensor(b[k]) for k in ("input_ids", "attention_mask", "position_ids", "labels"))


def run(model, ids, mask, pos, labels):
    """Logits, HF's loss written out (shift, ignore -100, mean) and the gradients of the LoRA weights, by the names
    peft saves them under (the adapter name ".default" dropped)."""
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    V = logits.shape[-1]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    loss.backward()
    grads = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert "lora_" in n, f"a base parameter requires grad: {n}"
            grads[n.replace(".default.", ".")] = p.grad.detach().clone()
        else:
            assert p.grad is None, n
    return logits.detach(), loss.item(), grads


def fixture(name, base_name, cls, lora, seed):
    base_dir = os.path.join(ROOT, base_name, "model")
    folder = os.path.join(ROOT, name)
    adapter_dir = os.path.join(folder, "adapter")
    os.makedirs(folder, exist_ok=True)
    ids, mask, pos, labels = load_batch(base_name)

    torch.manual_seed(seed)
    model = cls.from_pretrained(base_dir, attn_implementation="eager")
    pm = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    pm.save_pretrained(adapter_dir, safe_serialization=True)
    os.remove(os.path.join(adapter_dir, "README.md"))  # peft's model card: not read by anyone
    config_file = os.path.join(adapter_dir, "adapter_config.json")
    with open(config_file) as f:
        config = json.load(f)
    config["base_model_name_or_path"] = os.path.relpath(base_dir, adapter_dir)  # portable, not this machine's path
    config["target_modules"] = sorted(config["target_modules"])  # a set in peft: its order varies from run to run
    with open(config_file, "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True))  # as peft writes it
    pm.eval()
    logits32, loss32, _ = run(pm, ids, mask, pos, labels)

    model64 = cls.from_pretrained(base_dir, attn_implementation="f64_eager").double().eval()
    use_f64_everywhere(model64)
    pm64 = PeftModel.from_pretrained(model64, adapter_dir, is_trainable=True).double().eval()
    lora_dtypes = {p.dtype for n, p in pm64.named_parameters() if "lora_" in n}
    assert lora_dtypes == {torch.float64}, lora_dtypes
    logits, loss, grads = run(pm64, ids, mask, pos, labels)

    tensors = {"logits": logits.contiguous(), "logits_f32": logits32.contiguous()}
    for n, gr in grads.items():
        tensors[f"grad.{n}"] = gr.contiguous()
    save_file(tensors, os.path.join(folder, "reference.safetensors"), metadata={"format": "pt"})
    scales = {}
    for n, m in pm64.named_modules():
        if hasattr(m, "scaling") and isinstance(m.scaling, dict) and "default" in m.scaling:
            scales[n.removeprefix("base_model.model.")] = m.scaling["default"]
    expected = {
        "base": base_name,
        "loss": loss,
        "loss_f32": loss32,
        "scales": scales,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, x)) for d, _, xs in os.walk(folder) for x in xs)
    print(f"{name}: loss {loss:.6f} (f32 {loss32:.6f}), {len(grads)} LoRA gradients, {size / 1024:.0f} KiB")


def main():
    torch.set_num_threads(1)
    fixture("llama-tiny-lora", "llama-tiny", LlamaForCausalLM, dict(
        r=4, lora_alpha=8, lora_dropout=0.1,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]), seed=11)
    fixture("qwen2-tiny-lora", "qwen2-tiny", Qwen2ForCausalLM, dict(
        r=3, lora_alpha=5, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=True,
        rank_pattern={"down_proj": 2}, alpha_pattern={"layers.1.self_attn.q_proj": 7}), seed=12)


if __name__ == "__main__":
    main()
