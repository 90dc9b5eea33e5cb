"""Causal 1-D convolutions that can run on a whole window or chunk by chunk with carried state.

Both classes follow EnCodec's padding rules (as brain-gen's SEANet does): a causal convolution
pads `(k - 1) * dilation - (stride - 1)` zeros on the left and just enough on the right for the
last frame to be complete; a causal transposed convolution trims `k - stride` samples from the
right. Weight names (`conv.conv.weight`, `convtr.convtr.weight`) match the reference.

Streaming (encoder side): pass a `dict` as `state`. The convolution then takes its left context from the state
(zeros the first time, which is exactly the left padding of a whole-window call) and stores the
last input samples for the next chunk, so chunked and whole-window outputs agree exactly as long
as every chunk is a multiple of the stride.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _ConvHolder(nn.Module):
    """Keeps the `conv.conv.weight` nesting of the reference's NormConv1d (norms were never applied)."""

    def __init__(self, conv: nn.Module, attr: str):
        super().__init__()
        self.add_module(attr, conv)


def extra_padding_for_full_frames(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding so that the last (partial) frame of a strided convolution is computed."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


class StreamingConv1d(nn.Module):
    """Causal `Conv1d`: output length `ceil(L / stride)`, frame i sees inputs `<= (i + 1) * stride - 1`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.conv = _ConvHolder(
            nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, bias=bias), "conv"
        )
        self.stride = stride
        self.kernel_size = kernel_size
        self.padding_total = (kernel_size - 1) * dilation - (stride - 1)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        conv = self.conv.conv
        if state is None:
            extra = extra_padding_for_full_frames(x.shape[-1], self.kernel_size, self.stride, self.padding_total)
            return conv(F.pad(x, (self.padding_total, extra)))
        if x.shape[-1] % self.stride:
            raise ValueError(
                f"streaming chunks must be a multiple of the stride {self.stride} at every layer, got "
                f"{x.shape[-1]} samples"
            )
        context = state.get(self)
        if context is None:
            context = x.new_zeros(*x.shape[:-1], self.padding_total)
        full = torch.cat([context, x], dim=-1)
        state[self] = full[..., full.shape[-1] - self.padding_total :]
        return conv(full)


class StreamingConvTranspose1d(nn.Module):
    """Causal `ConvTranspose1d`: output length `L * stride`, the `k - stride` overlap trimmed on the right.

    Decoding runs window by window (windows are independent), so this layer needs no streaming state.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__()
        self.convtr = _ConvHolder(
            nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, bias=bias), "convtr"
        )
        self.padding_total = kernel_size - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convtr.convtr(x)
        return y[..., : y.shape[-1] - self.padding_total]
