"""Spatial-only 3-D convolution stages over `(B, C, T, H, W)` volumes that never mix time steps."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


def time_group_norm(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """GroupNorm of `(B, C, T, ...)` computed separately for every time step.

    A plain GroupNorm pools statistics over T, which would let future frames leak into past ones.
    """
    frames = rearrange(x, "b c t ... -> (b t) c ...")
    # contiguous: the convolutions that follow pick their kernels (and rounding) by memory layout
    return rearrange(norm(frames), "(b t) c ... -> b c t ...", b=x.shape[0]).contiguous()


class DownStage3D(nn.Module):
    """Halve H and W: conv (1, 3, 3) with stride (1, 2, 2) -> per-frame GroupNorm(1) -> GELU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.norm = nn.GroupNorm(1, out_channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(time_group_norm(self.norm, self.conv(x)))


class UpStage3D(nn.Module):
    """Double H and W: transposed conv (1, 4, 4), stride (1, 2, 2), padding (0, 1, 1) -> GroupNorm(1) -> GELU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.deconv = nn.ConvTranspose3d(
            in_channels, out_channels, kernel_size=(1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1)
        )
        self.norm = nn.GroupNorm(1, out_channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(time_group_norm(self.norm, self.deconv(x)))
