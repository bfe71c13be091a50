"""The PyTorch side of `stepwise bench train`: SFT tokens/s and DPO pairs/s for one model on the CPU.

Called by src/bench/train.ts with one JSON argument:
  {"config": {HF config.json fields}, "mode": "full"|"lora", "lora_r": 8, "threads": 2, "reps": 3, "seed": 0,
   "sft": {"batch": 8, "seq": 256}, "dpo": {"pairs": 8, "prompt": 64, "completion": 96}}
Prints one JSON line: {"sft_tokens_per_s", "dpo_pairs_per_s", "torch"}.
Each figure is one optimizer step (forward, backward, AdamW) on random token ids, median of `reps` after a warm-up,
the same shapes, loss and thread count as the TypeScript side. DPO uses precomputed reference log-probs (constants),
as stepwise does by default, so the step holds the policy only.
"""

import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM


def build(spec):
    cfg = LlamaConfig(**{k: v for k, v in spec["config"].items() if k != "model_type"})
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).float()
    if spec["mode"] == "lora":
        from peft import LoraConfig, get_peft_model

        r = spec.get("lora_r", 8)
        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)


def timed(step, reps):
    step()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    spec = json.loads(sys.argv[1])
    torch.manual_seed(spec.get("seed", 0))
    torch.set_num_threads(spec["threads"])
    model, opt = build(spec)
    vocab = spec["config"]["vocab_size"]

    s = spec["sft"]
    ids = torch.randint(0, vocab, (s["batch"], s["seq"]))
    labels = ids.clone()
    labels[:, : s["seq"] // 8] = -100  # the prompt part carries no loss

    def sft_step():
        opt.zero_grad(set_to_none=False)
        logits = model(input_ids=ids).logits[:, :-1].float()
        loss = F.cross_entropy(logits.reshape(-1, vocab), labels[:, 1:].reshape(-1), ignore_index=-100)
        loss.backward()
        opt.step()

    sft = timed(sft_step, spec["reps"])

    d = spec["dpo"]
    P, T = d["pairs"], d["prompt"] + d["completion"]
    rows = torch.randint(0, vocab, (2 * P, T))
    mask = torch.zeros(2 * P, T - 1)
    mask[:, d["prompt"] - 1 :] = 1
    ref = torch.randn(2 * P) - 50.0

    def dpo_step():
        opt.zero_grad(set_to_none=False)
        logits = model(input_ids=rows).logits[:, :-1].float()
        lp = torch.gather(F.log_softmax(logits, -1), 2, rows[:, 1:].unsqueeze(2)).squeeze(2)
        seq = (lp * mask).sum(1)
        h = (seq[:P] - ref[:P]) - (seq[P:] - ref[P:])
        loss = -F.logsigmoid(0.1 * h).mean()
        loss.backward()
        opt.step()

    dpo = timed(dpo_step, spec["reps"])
    print(json.dumps({"sft_tokens_per_s": s["batch"] * s["seq"] / sft, "dpo_pairs_per_s": P / dpo,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
