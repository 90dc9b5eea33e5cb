"""Building blocks of the Vidtok autoencoder (after Microsoft's VidTok, arXiv 2412.13061).

The residual blocks are `GradientCheckpointingLayer`s (recomputed in the backward pass once gradient checkpointing
is enabled). Layouts: videos are `(B, C, T, H, W)`. "Per frame" blocks see `(B * T, C, H, W)` (2-D convolutions, spatial
attention); "per pixel" blocks see `(B * H * W, C, T)` (causal 1-D convolutions over time).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer

from .causal_conv import CausalConv1d, CausalConv3d, repeat_first_frame


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis (dim 1) of a channel-first tensor of any rank."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


def make_norm(channels: int, norm_type: str) -> nn.Module:
    if norm_type == "groupnorm":
        return nn.GroupNorm(num_groups=channels // 4, num_channels=channels, eps=1e-6)
    return ChannelLayerNorm(channels)


def per_frame(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply `fn` to every frame of `(B, C, T, H, W)` as a batch of images `(B * T, C, H, W)`."""
    batch, channels, steps, height, width = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(batch * steps, channels, height, width)
    out = fn(frames)
    return out.reshape(batch, steps, *out.shape[1:]).permute(0, 2, 1, 3, 4)


def per_pixel(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply `fn` to every pixel's time series of `(B, C, T, H, W)` as a batch `(B * H * W, C, T)`."""
    batch, channels, steps, height, width = x.shape
    series = x.permute(0, 3, 4, 1, 2).reshape(batch * height * width, channels, steps)
    out = fn(series)
    return out.reshape(batch, height, width, *out.shape[1:]).permute(0, 3, 4, 1, 2)


class SpatialResnetBlock(GradientCheckpointingLayer):
    """Residual block of 3x3 2-D convolutions on frames `(N, C, H, W)`."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, norm_type: str):
        super().__init__()
        self.norm1 = make_norm(in_channels, norm_type)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = make_norm(out_channels, norm_type)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class TemporalResnetBlock(GradientCheckpointingLayer):
    """Residual block of causal 1-D convolutions over time `(N, C, T)`; the last convolution starts at zero, so a new
    block is the identity."""

    def __init__(self, channels: int, dropout: float, norm_type: str):
        super().__init__()
        self.norm1 = make_norm(channels, norm_type)
        self.conv1 = CausalConv1d(channels, channels, kernel_size=3)
        self.norm2 = make_norm(channels, norm_type)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv1d(channels, channels, kernel_size=3, zero_init=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        return x + self.conv2(self.dropout(swish(self.norm2(h))))


class CausalResnetBlock3D(GradientCheckpointingLayer):
    """Residual block of causal 3x3x3 convolutions on videos; normalisation is per frame (no look-ahead)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, norm_type: str):
        super().__init__()
        self.norm1 = make_norm(in_channels, norm_type)
        self.conv1 = CausalConv3d(in_channels, out_channels, kernel_size=3)
        self.norm2 = make_norm(out_channels, norm_type)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(out_channels, out_channels, kernel_size=3)
        self.nin_shortcut = (
            CausalConv3d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(per_frame(lambda f: swish(self.norm1(f)), x))
        h = self.conv2(per_frame(lambda f: self.dropout(swish(self.norm2(f))), h))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class FrameAttention(nn.Module):
    """Single-head self-attention over the H * W positions of each frame (no attention across time)."""

    def __init__(self, channels: int, norm_type: str):
        super().__init__()
        self.norm = make_norm(channels, norm_type)
        self.q = CausalConv3d(channels, channels, kernel_size=1)
        self.k = CausalConv3d(channels, channels, kernel_size=1)
        self.v = CausalConv3d(channels, channels, kernel_size=1)
        self.proj_out = CausalConv3d(channels, channels, kernel_size=1)

    def forward(
        self, x: torch.Tensor, attn_implementation: str = "sdpa", attentions: list | None = None
    ) -> torch.Tensor:
        """`attentions`: appended with the map `(B * T, 1, H * W, H * W)` (eager only)."""
        h = per_frame(self.norm, x)
        batch, channels, steps, height, width = x.shape
        q, k, v = (
            layer(h).permute(0, 2, 3, 4, 1).reshape(batch, steps, height * width, channels)
            for layer in (
                self.q,
                self.k,
                self.v,
            )
        )
        if attn_implementation == "eager" or attentions is not None:
            weights = torch.softmax((q @ k.transpose(-1, -2)) * channels**-0.5, dim=-1)
            if attentions is not None:  # recorded as (B * T, heads = 1, HW, HW); the output is computed from it
                recorded = weights.reshape(batch * steps, 1, height * width, height * width)
                attentions.append(recorded)
                weights = recorded.reshape(weights.shape)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.reshape(batch, steps, height, width, channels).permute(0, 4, 1, 2, 3)
        return x + self.proj_out(out)


class Downsample2d(nn.Module):
    """Halve H and W: pad right/bottom by one and a stride-2 3x3 convolution (or 2x2 average pooling)."""

    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample2d(nn.Module):
    """Double H and W: nearest-neighbour upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x if self.conv is None else self.conv(x)


class _MixFactor(nn.Module):
    """A learned blend `sigmoid(m) * a + (1 - sigmoid(m)) * b` between a fixed resampling and a convolution."""

    def __init__(self):
        super().__init__()
        self.mix_factor = nn.Parameter(torch.tensor([2.0]))

    def reset_brain_gen_parameters(self) -> None:
        init.constant_(self.mix_factor, 2.0)

    def blend(self, fixed: torch.Tensor, learned: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.mix_factor)
        return alpha * fixed + (1 - alpha) * learned


class TimeDownsample2x(_MixFactor):
    """Halve T causally: a blend of 3-frame average pooling (after one repeated first frame) and a strided causal
    convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = CausalConv3d(channels, channels, kernel_size=3, stride=(2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Mean of frames (2t - 1, 2t, 2t + 1): an average pool (3, 1, 1) with stride 2 in time, written out because
        # CPU `avg_pool3d` has no bfloat16 kernel.
        pooled = repeat_first_frame(x, 1).unfold(2, 3, 2).mean(dim=-1)
        return self.blend(pooled, self.conv(x))


class TimeUpsample2x(_MixFactor):
    """Double T: a blend of the upsampled frames and a causal convolution of them. Trilinear upsampling keeps the
    first `num_first_frames` frames apart (interpolated on their own), so they never mix with later frames."""

    def __init__(self, channels: int, interpolation_mode: str, num_first_frames: int):
        super().__init__()
        self.conv = CausalConv3d(channels, channels, kernel_size=3)
        self.interpolation_mode = interpolation_mode
        self.num_first_frames = num_first_frames

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=[2.0, 1.0, 1.0], mode=self.interpolation_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.interpolation_mode == "nearest":
            x = self._upsample(x)
        else:
            first, rest = x[:, :, : self.num_first_frames], x[:, :, self.num_first_frames :]
            x = self._upsample(first)
            if rest.shape[2] > 0:
                x = torch.cat([x, self._upsample(rest)], dim=2)
        return self.blend(x, self.conv(x))
