"""Multi-head self-attention with optional adjacent-pair RoPE (brain-gen's generic attention layer).

Submodule and buffer names (`packed_proj`, `out_proj`, `inv_freq_t`) follow the reference so converted
state dicts load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from .rotary import apply_adjacent_pair_rope, rope_inverse_frequencies


class MultiHeadAttention(nn.Module):
    """Batch-first self-attention over `(B, L, hidden_size)`.

    q, k and v come from one packed projection; RoPE (when enabled) rotates adjacent pairs of the
    first `2 * (head_dim // 2)` channels of every head with positions `0 .. L-1`.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        rope: bool = False,
        rope_base: float = 10000.0,
    ):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden size {hidden_size} is not divisible by {num_heads} attention heads")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.dropout = dropout
        self.rope = rope
        self.rope_base = rope_base
        self.packed_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.drop = nn.Dropout(dropout)
        # Derived from the config, so not saved; recomputed by `reset_brain_gen_parameters` after loading.
        self.register_buffer("inv_freq_t", self._inverse_frequencies(), persistent=False)

    def _inverse_frequencies(self) -> torch.Tensor:
        return rope_inverse_frequencies(2 * (self.head_dim // 2), self.rope_base)

    def reset_brain_gen_parameters(self) -> None:
        init.copy_(self.inv_freq_t, self._inverse_frequencies())

    def forward(
        self,
        hidden_states: torch.Tensor,
        is_causal: bool = False,
        output_attentions: bool = False,
        attn_implementation: str | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """`(B, L, hidden_size)` -> `(B, L, hidden_size)`; with `output_attentions=True` also the attention
        weights `(B, heads, L, L)`, computed eagerly (SDPA does not return them), as for
        `attn_implementation="eager"`."""
        # (B, L, 3E) -> three (B, heads, L, head_dim)
        query, key, value = (
            t.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
            for t in self.packed_proj(hidden_states).chunk(3, dim=-1)
        )
        if self.rope:
            query, key = apply_adjacent_pair_rope(query, key, self.inv_freq_t)
        dropout = self.dropout if self.training else 0.0
        weights = None
        if output_attentions or attn_implementation == "eager":
            attended, weights = _eager_attention(query, key, value, is_causal, dropout)
        else:
            attended = F.scaled_dot_product_attention(query, key, value, is_causal=is_causal, dropout_p=dropout)
        output = self.drop(self.out_proj(attended.transpose(1, 2).flatten(-2)))
        return (output, weights) if output_attentions else output


def _eager_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, is_causal: bool, dropout: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, returning the (post-dropout) weights next to the attended values."""
    scores = query @ key.transpose(-2, -1) * query.shape[-1] ** -0.5
    if is_causal:
        length = query.shape[-2]
        future = torch.ones(length, length, dtype=torch.bool, device=query.device).triu(1)
        scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
    weights = F.dropout(scores.softmax(dim=-1), p=dropout, training=dropout > 0)
    return weights @ value, weights
