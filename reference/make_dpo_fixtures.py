"""Writes the DPO-family fixtures that src/train/pytorch.test.ts checks: every loss of stepwise's table computed in
PyTorch (float64) on a fixed batch of preference pairs scored by the tiny Llama fixture.

Run by hand from the repository root (the outputs are committed):

    pip install torch==2.13.0 transformers safetensors
    python3 reference/make_dpo_fixtures.py

Each sequence is scored on its own (no padding), so the fixture is independent of how stepwise batches pairs.
Reference log-probs are the policy's own minus fixed seeded offsets, so margins are not zero. For each variant it
writes, under src/model/fixtures/dpo/: dpo.json (pairs, reference log-probs, beta, per variant the mean loss and
per-pair policy log-probs, rewards and margins) and grads.safetensors ("VARIANT.grad.NAME", float64) for four
parameters that the gradient reaches through every kind of layer: the embedding, a q projection, a down
projection and the final norm.

Formulas (TRL's, except where stepwise says otherwise): h = (pi_w - ref_w) - (pi_l - ref_l);
sigmoid -(1-e) log s(b h) - e log s(-b h); robust (-(1-e) log s(b h) + e log s(-b h)) / (1 - 2e); hinge relu(1 - b h);
ipo (h_avg - 1/(2b))^2 with per-token averages; sigmoid_norm -log s(b h_avg); apo_zero 1 - s(b (pi_w - ref_w)) +
s(b (pi_l - ref_l)); sft -pi_w / |y_w| (per pair). Rewards: b (pi - ref).
"""

import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import ROOT, use_f64_everywhere  # noqa: E402  (registers the f64_eager attention)

BETA = 0.3
VARIANTS = {
    "sigmoid": [("sigmoid", 1.0, 0.0)],
    "sigmoid_smooth": [("sigmoid", 1.0, 0.1)],
    "robust": [("robust", 1.0, 0.1)],
    "hinge": [("hinge", 1.0, 0.0)],
    "ipo": [("ipo", 1.0, 0.0)],
    "sigmoid_norm": [("sigmoid_norm", 1.0, 0.0)],
    "apo_zero": [("apo_zero", 1.0, 0.0)],
    "sft": [("sft", 1.0, 0.0)],
    "rpo": [("sigmoid", 1.0, 0.0), ("sft", 0.2, 0.0)],
}
GRAD_PARAMS = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
               "model.norm.weight"]


def loss_terms(name, eps, pc, pr, rc, rr, lc, lr):
    h = (pc - rc) - (pr - rr)
    hn = (pc - rc) / lc - (pr - rr) / lr
    ls = F.logsigmoid
    if name == "sigmoid":
        return -(1 - eps) * ls(BETA * h) - eps * ls(-BETA * h)
    if name == "robust":
        return (-(1 - eps) * ls(BETA * h) + eps * ls(-BETA * h)) / (1 - 2 * eps)
    if name == "hinge":
        return torch.relu(1 - BETA * h)
    if name == "ipo":
        return (hn - 1 / (2 * BETA)) ** 2
    if name == "sigmoid_norm":
        return -ls(BETA * hn)
    if name == "apo_zero":
        return 1 - torch.sigmoid(BETA * (pc - rc)) + torch.sigmoid(BETA * (pr - rr))
    if name == "sft":
        return -pc / lc
    raise ValueError(name)


def seq_logp(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    logits = model(input_ids=ids).logits[0, :-1]
    lp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
    return lp[len(prompt) - 1:].sum()


def main():
    folder = os.path.join(ROOT, "llama-tiny", "model")
    model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="f64_eager").to(torch.float64)
    use_f64_everywhere(model)
    V = model.config.vocab_size
    g = torch.Generator().manual_seed(7)
    rand = lambda n: torch.randint(3, V, (n,), generator=g).tolist()  # noqa: E731
    shapes = [(4, 5, 3), (2, 1, 6), (6, 4, 4)]  # (prompt, chosen, rejected) lengths
    pairs = [{"prompt": [1] + rand(p - 1), "chosen": rand(c), "rejected": rand(r)} for p, c, r in shapes]
    with torch.no_grad():
        offsets = torch.randn(2 * len(pairs), generator=g, dtype=torch.float64) * 2
        pol = [seq_logp(model, p["prompt"], p[k]).item() for k in ("chosen", "rejected") for p in pairs]
    n = len(pairs)
    ref_c = torch.tensor(pol[:n], dtype=torch.float64) - offsets[:n]
    ref_r = torch.tensor(pol[n:], dtype=torch.float64) - offsets[n:]
    lc = torch.tensor([len(p["chosen"]) for p in pairs], dtype=torch.float64)
    lr = torch.tensor([len(p["rejected"]) for p in pairs], dtype=torch.float64)
    out = {"beta": BETA, "pairs": pairs, "ref_chosen": ref_c.tolist(), "ref_rejected": ref_r.tolist(), "variants": {},
           "grad_params": GRAD_PARAMS, "versions": {"torch": torch.__version__}}
    grads = {}
    params = dict(model.named_parameters())
    for variant, terms in VARIANTS.items():
        model.zero_grad(set_to_none=True)
        pc = torch.stack([seq_logp(model, p["prompt"], p["chosen"]) for p in pairs])
        pr = torch.stack([seq_logp(model, p["prompt"], p["rejected"]) for p in pairs])
        per_pair = sum(w * loss_terms(name, eps, pc, pr, ref_c, ref_r, lc, lr) for name, w, eps in terms)
        loss = per_pair.mean()
        loss.backward()
        rc = BETA * (pc - ref_c).detach()
        rj = BETA * (pr - ref_r).detach()
        out["variants"][variant] = {"terms": [{"name": t, "weight": w, "label_smoothing": e} for t, w, e in terms],
                                    "loss": loss.item(), "logps_chosen": pc.tolist(), "logps_rejected": pr.tolist(),
                                    "rewards_chosen": rc.tolist(), "rewards_rejected": rj.tolist(),
                                    "margins": (rc - rj).tolist()}
        for name in GRAD_PARAMS:
            grads[f"{variant}.grad.{name}"] = params[name].grad.detach().clone().contiguous()
    dest = os.path.join(ROOT, "dpo")
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "dpo.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    save_file(grads, os.path.join(dest, "grads.safetensors"), metadata={"format": "pt"})
    print("wrote", dest, {k: round(v["loss"], 6) for k, v in out["variants"].items()})


if __name__ == "__main__":
    main()
