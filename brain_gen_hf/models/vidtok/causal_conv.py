"""Convolutions that are causal in time: the left context is the first frame repeated, never zeros.

Repeating the first frame (rather than zero padding) keeps the first outputs on the scale of the signal; the
spatial axes are zero-padded to keep their size ("same" padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init


def repeat_first_frame(x: torch.Tensor, frames: int, dim: int = 2) -> torch.Tensor:
    """`x` with its first time step repeated `frames` times in front (along `dim`)."""
    if frames <= 0:
        return x
    first = x.narrow(dim, 0, 1)
    sizes = [-1] * x.ndim
    sizes[dim] = frames
    return torch.cat([first.expand(*sizes), x], dim=dim)


class ZeroInitConv1d(nn.Conv1d):
    """A `Conv1d` whose weights and bias start at zero (a residual branch that starts as the identity)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    def reset_brain_gen_parameters(self) -> None:
        init.zeros_(self.weight)
        init.zeros_(self.bias)


class CausalConv1d(nn.Module):
    """`Conv1d` over `(N, C, T)` whose output at t reads inputs up to t only (`zero_init`: weights start at zero)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        zero_init: bool = False,
    ):
        super().__init__()
        self.time_pad = dilation * (kernel_size - 1) + 1 - stride
        conv = ZeroInitConv1d if zero_init else nn.Conv1d
        self.conv = conv(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(repeat_first_frame(x, self.time_pad))


class CausalConv3d(nn.Module):
    """`Conv3d` over `(B, C, T, H, W)`: causal in T (first frame repeated), zero "same" padding in H and W."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        dilation: int | tuple[int, int, int] = 1,
    ):
        super().__init__()
        kernel_size, stride, dilation = (_triple(v) for v in (kernel_size, stride, dilation))
        if kernel_size[1] % 2 == 0 or kernel_size[2] % 2 == 0:
            raise ValueError(f"spatial kernel sizes must be odd for 'same' padding, got {kernel_size}")
        pads = [d * (k - 1) + 1 - s for k, s, d in zip(kernel_size, stride, dilation)]
        self.time_pad = pads[0]
        height, width = pads[1], pads[2]
        self.spatial_padding = (width // 2, width - width // 2, height // 2, height - height // 2, 0, 0)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(repeat_first_frame(x, self.time_pad), self.spatial_padding)
        return self.conv(x)


def _triple(value) -> tuple[int, int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value, value)
