"""A tiny pure-PyTorch stand-in for the `flash_attn` package, used only by scripts/make_fixtures.py.

Why it exists: flash-linear-attention's softmax-attention layer (`fla/layers/attn.py`, used by the
hybrid fixtures gla-hybrid-tiny and hgrn2-hybrid-tiny) imports
`from flash_attn import flash_attn_func, flash_attn_varlen_func` and refuses to build an
`Attention` layer without them. flash-attn is not installed on the GPU machine the fixtures are
made on (and cannot be built there), so make_fixtures.py puts this folder's parent first on
sys.path before it imports fla. Nothing else in fla is replaced: the linear-attention layers still
run fla's own Triton kernels.

What it computes: exact softmax attention in float32 with plain torch ops (the inputs are cast to
float32, scores and softmax are float32, the result is cast back to the input dtype). It follows
flash-attn 2's documented semantics for the arguments fla uses:

  flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), ...)
      q [B, Tq, H, D], k and v [B, Tk, Hkv, D], H a multiple of Hkv (GQA/MQA: query head h reads
      key/value head h // (H // Hkv)). Scale D ** -0.5 unless softmax_scale is given.
      causal=True with bottom-right alignment when Tq != Tk: query i sits at key position
      p = Tk - Tq + i and sees keys j <= p. window_size=(left, right): query at key position p sees
      keys p - left <= j <= p + right (-1 = unbounded on that side). fla passes (W - 1, 0) for a
      sliding window of W keys, the query included, and (-1, -1) for none.
      A query that sees no key at all (possible only when Tq > Tk) gets an all-zero output, as in
      flash-attn ("if the row of the mask is all zero, the output will be zero").
  flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, ...)
      the same per sequence b, over q[cu_seqlens_q[b]:cu_seqlens_q[b+1]] ([total_q, H, D]) and
      k/v[cu_seqlens_k[b]:cu_seqlens_k[b+1]] ([total_k, Hkv, D]). fla uses it when an attention_mask
      is passed (make_fixtures.py passes an all-ones mask in one check).

Not supported (raise NotImplementedError): dropout_p != 0, alibi_slopes, softcap != 0,
return_attn_probs, deterministic backward, block tables / paged KV. It has no backward pass of
its own (autograd through torch ops works, but it is never used for training).

It is not fast and not meant to be: the fixtures are tiny (hidden 64, at most 100 tokens).
"""

from __future__ import annotations

import torch

__version__ = "0.0.0+glrnn-standin"
GLRNN_STANDIN = True

__all__ = ["flash_attn_func", "flash_attn_varlen_func"]


def _unsupported(dropout_p=0.0, alibi_slopes=None, softcap=0.0, return_attn_probs=False,
                 block_table=None, **_ignored):
    if dropout_p:
        raise NotImplementedError("flash_attn stand-in: dropout_p != 0 is not supported")
    if alibi_slopes is not None:
        raise NotImplementedError("flash_attn stand-in: alibi_slopes is not supported")
    if softcap:
        raise NotImplementedError("flash_attn stand-in: softcap is not supported")
    if return_attn_probs:
        raise NotImplementedError("flash_attn stand-in: return_attn_probs is not supported")
    if block_table is not None:
        raise NotImplementedError("flash_attn stand-in: block_table (paged KV) is not supported")


def _attend(q, k, v, causal, window_size, softmax_scale):
    """q [Tq, H, D], k/v [Tk, Hkv, D] -> [Tq, H, D] (float32 inside)."""
    Tq, H, D = q.shape
    Tk, Hkv = k.shape[0], k.shape[1]
    if H % Hkv != 0:
        raise ValueError(f"flash_attn stand-in: {H} query heads is not a multiple of {Hkv} key/value heads")
    dtype = q.dtype
    scale = D ** -0.5 if softmax_scale is None else float(softmax_scale)
    qf, kf, vf = q.float(), k.float(), v.float()
    group = H // Hkv
    if group > 1:
        kf = kf.repeat_interleave(group, dim=1)   # query head h -> key/value head h // group
        vf = vf.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", qf, kf) * scale          # [H, Tq, Tk]
    qpos = torch.arange(Tq, device=q.device)[:, None] + (Tk - Tq)  # bottom-right alignment
    kpos = torch.arange(Tk, device=q.device)[None, :]
    left, right = (int(window_size[0]), int(window_size[1])) if window_size is not None else (-1, -1)
    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device)
    if causal:
        allowed &= kpos <= qpos
    if left >= 0:
        allowed &= kpos >= qpos - left
    if right >= 0:
        allowed &= kpos <= qpos + right
    scores = scores.masked_fill(~allowed[None], float("-inf"))
    any_key = allowed.any(-1)                                      # [Tq]
    probs = torch.softmax(scores, dim=-1)
    probs = torch.where(any_key[None, :, None], probs, torch.zeros_like(probs))  # no key: output 0
    out = torch.einsum("hqk,khd->qhd", probs, vf)
    return out.to(dtype)


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                    softcap=0.0, alibi_slopes=None, deterministic=False, return_attn_probs=False, **kw):
    """q [B, Tq, H, D], k/v [B, Tk, Hkv, D] -> [B, Tq, H, D]; see the module docstring."""
    _unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes, softcap=softcap,
                 return_attn_probs=return_attn_probs, **kw)
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("flash_attn stand-in: flash_attn_func expects 4-d q, k, v [B, T, H, D]")
    outs = [_attend(q[b], k[b], v[b], causal, window_size, softmax_scale) for b in range(q.shape[0])]
    return torch.stack(outs, 0)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                           softcap=0.0, alibi_slopes=None, deterministic=False, return_attn_probs=False,
                           **kw):
    """q [total_q, H, D], k/v [total_k, Hkv, D] packed by cu_seqlens -> [total_q, H, D]."""
    _unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes, softcap=softcap,
                 return_attn_probs=return_attn_probs, **kw)
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError("flash_attn stand-in: flash_attn_varlen_func expects 3-d q, k, v [total, H, D]")
    cq = [int(x) for x in cu_seqlens_q.tolist()]
    ck = [int(x) for x in cu_seqlens_k.tolist()]
    if len(cq) != len(ck):
        raise ValueError("flash_attn stand-in: cu_seqlens_q and cu_seqlens_k describe different batch sizes")
    out = torch.zeros_like(q)
    for b in range(len(cq) - 1):
        if cq[b + 1] > cq[b]:
            out[cq[b]:cq[b + 1]] = _attend(q[cq[b]:cq[b + 1]], k[ck[b]:ck[b + 1]], v[ck[b]:ck[b + 1]],
                                           causal, window_size, softmax_scale)
    return out
