"""1-D rotary position embedding that rotates *adjacent* channel pairs (2i, 2i+1).

This is the layout brain-gen's generic `MultiHeadAttention` uses (GPT-J style), not the rotate-half
layout of Llama/transformers; trained weights depend on it, so it is kept.
"""

from __future__ import annotations

import torch


def rope_inverse_frequencies(rotary_dim: int, base: float = 10000.0) -> torch.Tensor:
    """`base^(-2i/rotary_dim)` for i < rotary_dim/2, float32 (empty when `rotary_dim` is 0)."""
    if rotary_dim == 0:
        return torch.empty(0)
    return 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim))


def _rotate_adjacent_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((-odd, even), dim=-1).reshape_as(x)


def apply_adjacent_pair_rope(
    query: torch.Tensor, key: torch.Tensor, inv_freq: torch.Tensor, position_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first `2 * len(inv_freq)` channels of `(B, heads, L, head_dim)` queries and keys.

    Positions are `position_offset .. position_offset + L - 1`; channels past the rotary width (an odd
    head dim) pass through unchanged.
    """
    if inv_freq.numel() == 0:
        return query, key
    length, rotary_dim = query.shape[-2], 2 * inv_freq.numel()
    positions = torch.arange(position_offset, position_offset + length, device=query.device, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq.to(query.device))  # (L, rotary_dim / 2)
    cos = torch.cos(angles).repeat_interleave(2, dim=-1).to(query.dtype)
    sin = torch.sin(angles).repeat_interleave(2, dim=-1).to(query.dtype)

    def rotate(x: torch.Tensor) -> torch.Tensor:
        rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
        return torch.cat([rot * cos + _rotate_adjacent_pairs(rot) * sin, rest], dim=-1)

    return rotate(query), rotate(key)
