"""BrainOmni's factorised spatial/temporal transformer block over `(B, C, W, D)` token grids.

Reproduced from the reference because trained weights depend on it:

* Rotary embedding over the **whole attention width**: `freq_j = base^(-2j / width)`, j < width / 2, split
  into contiguous bands per head (head h rotates with frequencies h*hd/2 ... (h+1)*hd/2 - 1), rotating adjacent
  feature pairs (2i, 2i+1).
* The block feeds features `[:D/2]` to causal attention over time (per latent channel) and `[D/2:]` to
  non-causal attention over the channels (per time step, RoPE over the channel index), then concatenates the
  results as `[spatial, temporal]` (swapped relative to where they came from).

Temporal attention can run incrementally with a transformers `Cache` (one cache layer per block). Blocks are
`GradientCheckpointingLayer`s: `gradient_checkpointing_enable()` recomputes them in the backward pass.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ...layers.brainomni_attention import FeedForward, RMSNorm, attend


def banded_rope_angles(width: int, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """`(T, width / 2)` rotation angles `t * base^(-2j / width)` (float32)."""
    freqs = 1.0 / (base ** (torch.arange(0, width, 2, device=positions.device)[: width // 2].float() / width))
    return torch.outer(positions.float(), freqs)


def apply_banded_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs of `x (N, T, H, hd)` by `angles (T, H * hd / 2)` (head h takes band h)."""
    n, t, h, hd = x.shape
    angles = angles.view(t, h, hd // 2)
    cos, sin = torch.cos(angles), torch.sin(angles)
    pairs = x.float().reshape(n, t, h, hd // 2, 2)
    real, imag = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
    return rotated.flatten(3).type_as(x)


class RotarySelfAttention(nn.Module):
    """Multi-head self-attention with the banded RoPE; optionally causal and KV-cached."""

    def __init__(self, dim: int, n_head: int, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        self.dim, self.n_head, self.dropout, self.causal = dim, n_head, dropout, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        cache=None,
        layer_idx: int | None = None,
        implementation: str | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`x (N, T, dim)` -> `(out (N, T, dim), weights (N, heads, T, past + T) or None)`; with `cache`, the T new
        positions follow the cached ones."""
        n, t, _ = x.shape
        q, k, v = self.qkv(x).split(self.dim, dim=-1)
        past = cache.get_seq_length(layer_idx) if cache is not None else 0
        angles = banded_rope_angles(self.dim, torch.arange(past, past + t, device=x.device))
        q = apply_banded_rope(q.view(n, t, self.n_head, -1), angles).transpose(1, 2)
        k = apply_banded_rope(k.view(n, t, self.n_head, -1), angles).transpose(1, 2)
        v = rearrange(v, "N T (H D) -> N H T D", H=self.n_head)
        if cache is not None:
            k, v = cache.update(k, v, layer_idx)
        mask, is_causal = None, self.causal and t > 1
        if self.causal and past and t > 1:  # new positions see the whole past and the new ones up to themselves
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            is_causal = False
        out, weights = attend(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            implementation=implementation,
            output_attentions=output_attentions,
        )
        return self.proj(rearrange(out, "N H T D -> N T (H D)")), weights


class SpatialTemporalAttentionBlock(GradientCheckpointingLayer):
    """Pre-norm block: factorised spatial/temporal attention, then a SELU feed-forward, both residual."""

    def __init__(self, dim: int, n_head: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        self.pre_attn_norm = RMSNorm(dim)
        self.time_attn = RotarySelfAttention(dim // 2, n_head // 2, dropout, causal=causal)
        self.spatial_attn = RotarySelfAttention(dim // 2, n_head // 2, dropout, causal=False)
        self.pre_ff_norm = RMSNorm(dim)
        self.ff = FeedForward(dim, dropout)

    def forward(
        self,
        x: torch.Tensor,
        cache=None,
        layer_idx: int | None = None,
        implementation: str | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """`x (B, C, W, D)` -> `(x, temporal weights (B * C, heads / 2, W, past + W), spatial weights
        (B * W, heads / 2, C, C))`, the weights `None` unless `output_attentions`; with `cache`, the W steps follow
        the cached ones."""
        attended, temporal_weights, spatial_weights = self._attend(
            self.pre_attn_norm(x), cache, layer_idx, implementation, output_attentions
        )
        x = x + attended
        return x + self.ff(self.pre_ff_norm(x)), temporal_weights, spatial_weights

    def _attend(self, x: torch.Tensor, cache, layer_idx, implementation, output_attentions):
        B, C, W, D = x.shape
        spatial, spatial_weights = self.spatial_attn(
            rearrange(x[..., D // 2 :], "B C W D -> (B W) C D"),
            implementation=implementation,
            output_attentions=output_attentions,
        )
        temporal, temporal_weights = self.time_attn(
            rearrange(x[..., : D // 2], "B C W D -> (B C) W D"),
            cache,
            layer_idx,
            implementation=implementation,
            output_attentions=output_attentions,
        )
        spatial = rearrange(spatial, "(B W) C D -> B C W D", B=B)
        temporal = rearrange(temporal, "(B C) W D -> B C W D", B=B)
        # the reference's [spatial, temporal] order
        return torch.cat([spatial, temporal], dim=-1), temporal_weights, spatial_weights
