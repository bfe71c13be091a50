"""Writes the PyTorch / Hugging Face fixtures that stepwise's model tests check against.

Run by hand from the repository root (the outputs are committed):

    pip install torch==2.13.0 transformers safetensors tokenizers
    python3 reference/make_fixtures.py

For each tiny random model (a Llama with grouped-query attention, llama3 rope scaling and a head_dim that is not
hidden_size / heads; a Qwen2 with q/k/v biases, one key/value head and tied embeddings) it writes, under
src/model/fixtures/NAME/:

  model/                  the model saved by transformers' save_pretrained (config.json, model.safetensors, f32)
  batch.json              the fixed batch: input_ids, attention_mask, position_ids, labels (-100 = ignored), the
                          loss in float64 and float32, and the versions that produced them
  reference.safetensors   "logits" (B, T, V) and "grad.<parameter name>" for every parameter, float64: the model's
                          f32 weights run in float64, with HF's three float32 steps replaced by float64 ones: the
                          rotary tables (the script checks that its float64 inverse frequencies agree with HF's to
                          float32 precision), RMSNorm's statistics and eager attention's softmax; the loss is
                          written out (HF's casts logits to float32); "logits_f32": stock HF eager in float32

Tokenizers, under src/model/fixtures/tokenizers/NAME/ (tokenizer.json, tokenizer_config.json, expected.json with the
ids, ids without special tokens and decoded text of varied texts, and for the BPE ones a rendered chat):
  builtin      the built-in character tokenizer, whose tokenizer.json the TypeScript code writes (the tokenizer test
               checks the committed copy is current); encoded here with Python `tokenizers`
  chatml-bpe   a byte-level BPE with Qwen2's pre-tokenizer regex and a ChatML template (no BOS), trained here
  llama3-bpe   a byte-level BPE with Llama 3's regex, BOS added by the post-processor and written by the template

    python3 reference/make_fixtures.py [llama] [qwen2] [tokenizer]
"""

import json
import math
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "model", "fixtures")


def inv_freq_f64(config):
    """Rotary inverse frequencies in float64: HF's default and llama3 formulas (modeling_rope_utils.py)."""
    rp = config.rope_parameters
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if rp["rope_type"] == "default":
        return inv
    assert rp["rope_type"] == "llama3", rp
    factor, low, high = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    old = rp["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    out = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < old / high) * ~(wavelen > old / low)
    return torch.where(medium, smoothed, out)


def use_f64_everywhere(model):
    """Replaces HF's three float32 steps (rotary tables, RMSNorm statistics, eager softmax) with float64 ones."""
    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = lambda h, m=module: m.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + m.variance_epsilon))
    rot = model.model.rotary_emb
    inv = inv_freq_f64(model.config)
    hf = rot.inv_freq.to(torch.float64)
    assert torch.allclose(inv, hf, rtol=1e-6, atol=0), f"float64 inverse frequencies disagree with HF's: {inv} {hf}"

    def forward(x, position_ids):
        freqs = position_ids[..., None].to(torch.float64) * inv
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    rot.forward = forward


def f64_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """HF's eager attention without its float32 softmax: everything in the inputs' dtype. attention_mask is
    boolean (True = attend); a query that sees no key gets a uniform softmax (finite) instead of NaN."""
    groups = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(groups, dim=1)
    v = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, k.transpose(2, 3)) * scaling
    if attention_mask is None:
        tq, tk = scores.shape[-2:]
        attention_mask = torch.ones(tq, tk, dtype=torch.bool).tril(tk - tq)
    scores = scores.masked_fill(~attention_mask, -1e300)
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v).transpose(1, 2).contiguous(), probs


AttentionInterface.register("f64_eager", f64_attention)
AttentionMaskInterface.register("f64_eager", sdpa_mask)


def randomize(model, seed):
    """Weights large enough that logits are far from uniform: N(0, 0.15) matrices, norms 1 + N(0, 0.1), biases N(0, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def make_batch(vocab, seed, T=9, pad=3):
    """Two rows of T tokens: the first full, the second left-padded by `pad` (positions restart at its first token)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, T), generator=g)
    mask = torch.ones(2, T, dtype=torch.long)
    mask[1, :pad] = 0
    ids[1, :pad] = 0
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    labels = ids.clone()
    labels[1, : pad + 1] = -100  # pads, and the first real token: its predictor is a padded position
    return ids, mask, pos, labels


def run(model, ids, mask, pos, labels):
    """Logits, mean next-token cross-entropy and gradients. The loss is HF's (shift, ignore -100, mean) written out,
    because HF's loss function casts logits to float32, which would round a float64 run."""
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    V = logits.shape[-1]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.item(), grads


def fixture(name, cls, config, seed):
    torch.manual_seed(seed)
    config._attn_implementation = "eager"
    model = cls(config).eval()
    randomize(model, seed)
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(os.path.join(folder, "model"), safe_serialization=True)
    # drop generation_config.json: not part of what the tests read
    gen = os.path.join(folder, "model", "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)

    ids, mask, pos, labels = make_batch(config.vocab_size, seed)
    logits32, loss32, _ = run(model, ids, mask, pos, labels)

    model64 = cls.from_pretrained(os.path.join(folder, "model"), attn_implementation="f64_eager").double().eval()
    use_f64_everywhere(model64)
    logits, loss, grads = run(model64, ids, mask, pos, labels)

    tensors = {"logits": logits.contiguous(), "logits_f32": logits32.contiguous()}
    tied = getattr(config, "tie_word_embeddings", False)
    for n, g in grads.items():
        if tied and n == "lm_head.weight":
            continue
        tensors[f"grad.{n}"] = g.contiguous()
    save_file(tensors, os.path.join(folder, "reference.safetensors"), metadata={"format": "pt"})
    batch = {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "position_ids": pos.tolist(),
        "labels": labels.tolist(),
        "loss": loss,
        "loss_f32": loss32,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    with open(os.path.join(folder, "batch.json"), "w") as f:
        json.dump(batch, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, x)) for d, _, xs in os.walk(folder) for x in xs)
    print(f"{name}: loss {loss:.6f} (f32 {loss32:.6f}), {len(grads)} gradients, {size / 1024:.0f} KiB")


TEXTS = [
    "Natalia sold clips to 48 of her friends in April.\nShe sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
    "Digits: 0 7 42 1234567 3.14159 -12,345.50 1e-3 2024-01-31",
    "Whitespace   runs\t\ttabs\n\n\nnewlines  \n   trailing   ",
    "def area(r):\n    return 3.14 * r ** 2  # circle\n\nprint(area(2))",
    "I'm sure they'll say it's OK, WE'LL see; can't won't",
    "Unicode: caf\u00e9 na\u00efve \u00fcber \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4 \u0645\u0631\u062d\u0628\u0627 \U0001f600\U0001f680 \u2211x\u00b2",
    "",
    " leading space and symbols !@#$%^&*()_+{}|:\"<>?~`",
]


def write_expected(folder, encode, decode, chat=None):
    cases = []
    for text in TEXTS:
        ids = encode(text, True)
        cases.append({"text": text, "ids": ids, "ids_no_special": encode(text, False), "decoded": decode(ids)})
    out = {"tokenizers": __import__("tokenizers").__version__, "transformers": transformers.__version__, "cases": cases}
    if chat:
        out["chat"] = chat
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{os.path.basename(folder)}: {len(cases)} texts encoded")


def builtin_tokenizer_fixture():
    """Python `tokenizers` ids for the built-in tokenizer (its tokenizer.json is written by the TypeScript code)."""
    from tokenizers import Tokenizer

    folder = os.path.join(ROOT, "tokenizers", "builtin")
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.exists(path):
        print(f"skipping the built-in tokenizer: {path} not found")
        return
    tok = Tokenizer.from_file(path)
    write_expected(folder, lambda t, s: tok.encode(t, add_special_tokens=s).ids,
                   lambda ids: tok.decode(ids, skip_special_tokens=True))


QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3_CHAT = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
               " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
MESSAGES = [{"role": "system", "content": "You solve arithmetic."},
            {"role": "user", "content": "What is 12 * 7?"},
            {"role": "assistant", "content": "12 * 7 = <<12*7=84>>84\n#### 84"}]


def training_text():
    path = os.path.join(ROOT, "..", "..", "..", "..", "shared", "data", "gsm8k", "train.jsonl")
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            for i, line in enumerate(f):
                if i >= 400:
                    break
                r = json.loads(line)
                lines += [r["question"], r["answer"]]
    return lines + TEXTS * 3


def bpe_tokenizer_fixture(name, split, specials, bos, eos, chat_template):
    """A small byte-level BPE (the Qwen2 / Llama 3 design) trained here, saved by transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, chat_template=chat_template)
    folder = os.path.join(ROOT, "tokenizers", name)
    fast.save_pretrained(folder)
    chat = {
        "messages": MESSAGES,
        "rendered": fast.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True),
        "rendered_full": fast.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=False),
        "ids": list(fast.apply_chat_template(MESSAGES[:2], tokenize=True, add_generation_prompt=True, return_dict=False)),
    }
    write_expected(folder, lambda t, s: fast(t, add_special_tokens=s)["input_ids"],
                   lambda ids: fast.decode(ids, skip_special_tokens=True), chat)


def main():
    torch.set_num_threads(1)
    llama = LlamaConfig(
        vocab_size=61, hidden_size=48, intermediate_size=83, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=10, rms_norm_eps=1e-5, max_position_embeddings=128,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
    )
    qwen2 = Qwen2Config(
        vocab_size=53, hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=5,
        num_key_value_heads=1, rms_norm_eps=1e-6, max_position_embeddings=64, rope_theta=1000000.0,
        tie_word_embeddings=True, use_sliding_window=False,
    )
    only = sys.argv[1:]
    if not only or "llama" in only:
        fixture("llama-tiny", LlamaForCausalLM, llama, seed=1)
    if not only or "qwen2" in only:
        fixture("qwen2-tiny", Qwen2ForCausalLM, qwen2, seed=2)
    if not only or "tokenizer" in only:
        builtin_tokenizer_fixture()
        bpe_tokenizer_fixture("chatml-bpe", QWEN2_SPLIT, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None,
                              "<|im_end|>", CHATML)
        bpe_tokenizer_fixture("llama3-bpe", LLAMA3_SPLIT, ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                              "<|end_header_id|>", "<|eot_id|>"], "<|begin_of_text|>", "<|eot_id|>", LLAMA3_CHAT)


if __name__ == "__main__":
    main()
