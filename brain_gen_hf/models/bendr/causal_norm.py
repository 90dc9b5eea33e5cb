"""Normalisation that never looks ahead in time."""

from __future__ import annotations

import torch
from torch import nn


class CumulativeGroupNorm(nn.GroupNorm):
    """GroupNorm over `(B, C, T)` whose statistics at step t pool the group's channels over steps <= t.

    A plain GroupNorm pools the whole window, so every output depends on future samples. This is the
    cumulative normalisation of Conv-TasNet (Luo & Mesgarani 2019) with GroupNorm's groups: at step t
    it equals `nn.GroupNorm` applied to `x[..., :t + 1]`, read at its last step. Parameters (`weight`,
    `bias`) are those of `nn.GroupNorm`, so GroupNorm checkpoints load unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, steps = x.shape
        grouped = x.reshape(batch, self.num_groups, channels // self.num_groups, steps)
        count = torch.arange(1, steps + 1, device=x.device, dtype=x.dtype) * grouped.shape[2]
        mean = grouped.sum(2).cumsum(-1) / count  # (B, G, T)
        # E[x^2] - E[x]^2 can dip below zero by rounding.
        var = (grouped.pow(2).sum(2).cumsum(-1) / count - mean.pow(2)).clamp_min(0)
        normed = (grouped - mean.unsqueeze(2)) * torch.rsqrt(var.unsqueeze(2) + self.eps)
        normed = normed.reshape(batch, channels, steps)
        if self.affine:
            normed = normed * self.weight[:, None] + self.bias[:, None]
        return normed
