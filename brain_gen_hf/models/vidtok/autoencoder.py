"""The causal 3-D encoder and decoder of Vidtok. Submodule names follow the reference (and VidTok's), so converted
state dicts load as they are."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    CausalResnetBlock3D,
    Downsample2d,
    FrameAttention,
    SpatialResnetBlock,
    TemporalResnetBlock,
    TimeDownsample2x,
    TimeUpsample2x,
    Upsample2d,
    make_norm,
    per_frame,
    per_pixel,
    swish,
)
from .causal_conv import CausalConv3d
from .configuration_vidtok import VidtokBaseConfig


class _Level(nn.Module):
    """One resolution level: its residual blocks and, at resampling levels, its resampler."""

    def __init__(self, blocks: list[nn.Module], resample: nn.Module | None, resample_name: str):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        if resample is not None:
            self.add_module(resample_name, resample)


class _Middle(nn.Module):
    """Causal 3-D residual block, per-frame attention, causal 3-D residual block."""

    def __init__(self, channels: int, config: VidtokBaseConfig):
        super().__init__()
        self.block_1 = CausalResnetBlock3D(channels, channels, config.dropout, config.norm_type)
        self.attn_1 = FrameAttention(channels, config.norm_type)
        self.block_2 = CausalResnetBlock3D(channels, channels, config.dropout, config.norm_type)

    def forward(self, h: torch.Tensor, config: VidtokBaseConfig, attentions: list | None = None) -> torch.Tensor:
        h = self.block_1(h)
        h = self.attn_1(h, config._attn_implementation, attentions)
        return self.block_2(h)


def _space_then_time(x: torch.Tensor, spatial: nn.Module, temporal: nn.Module) -> torch.Tensor:
    return per_pixel(temporal, per_frame(spatial, x))


class VidtokEncoder(nn.Module):
    """`(B, in_channels, T, H, W)` -> latent `(B, z_channels, T', H', W')`, causal in time."""

    def __init__(self, config: VidtokBaseConfig):
        super().__init__()
        self.config = config
        ch, mult, drop, norm = config.ch, config.ch_mult, config.dropout, config.norm_type
        self.conv_in = CausalConv3d(config.in_channels, ch, kernel_size=3)
        self.down, self.down_temporal = nn.ModuleList(), nn.ModuleList()
        width = ch
        for level, m in enumerate(mult):
            out = ch * m
            spatial = [
                SpatialResnetBlock(width if i == 0 else out, out, drop, norm) for i in range(config.num_res_blocks)
            ]
            temporal = [TemporalResnetBlock(out, drop, norm) for _ in range(config.num_res_blocks)]
            width = out
            down = Downsample2d(width, config.resamp_with_conv) if level in config.spatial_ds else None
            down_t = TimeDownsample2x(width) if level in config.tempo_ds else None
            self.down.append(_Level(spatial, down, "downsample"))
            self.down_temporal.append(_Level(temporal, down_t, "downsample"))
        self.mid = _Middle(width, config)
        self.norm_out = make_norm(width, norm)
        self.conv_out = CausalConv3d(width, config.z_channels, kernel_size=3)

    def forward(
        self, x: torch.Tensor, hidden_states: list | None = None, attentions: list | None = None
    ) -> torch.Tensor:
        """`hidden_states`: appended with the first convolution's output, each level's output and the middle's, as
        `(B, H_i, W_i, T_i, width_i)`."""
        cfg = self.config
        missing = -x.shape[2] % cfg.time_downsample_factor
        if missing:  # front padding: the causal model sees the padded frames before the first real one
            pad = (0, 0, 0, 0, missing, 0)
            x = F.pad(x, pad, mode=cfg.init_pad_mode) if cfg.init_pad_mode != "constant" else F.pad(x, pad)
        h = _record(hidden_states, self.conv_in(x))
        for level in range(len(cfg.ch_mult)):
            for spatial, temporal in zip(self.down[level].block, self.down_temporal[level].block):
                h = _space_then_time(h, spatial, temporal)
            if level in cfg.spatial_ds:
                h = per_frame(self.down[level].downsample, h)
                if level in cfg.tempo_ds:
                    h = self.down_temporal[level].downsample(h)
            h = _record(hidden_states, h)
        h = _record(hidden_states, self.mid(h, cfg, attentions))
        return self.conv_out(per_frame(lambda f: swish(self.norm_out(f)), h))


class VidtokDecoder(nn.Module):
    """Latent `(B, z_channels, T', H', W')` -> video `(B, out_ch, T, H, W)`, causal in time."""

    def __init__(self, config: VidtokBaseConfig):
        super().__init__()
        self.config = config
        ch, mult, drop, norm = config.ch, config.ch_mult, config.dropout, config.norm_type
        width = ch * mult[-1]
        self.conv_in = CausalConv3d(config.z_channels, width, kernel_size=3)
        self.mid = _Middle(width, config)
        levels = len(mult)
        up: list[nn.Module] = [None] * levels
        up_temporal: list[nn.Module] = [None] * levels
        first_frames = 1  # frames trilinear upsampling keeps apart: doubles with every temporal upsampling
        for level in reversed(range(levels)):
            out = ch * mult[level]
            spatial = []
            for _ in range(config.num_res_blocks + 1):
                spatial.append(SpatialResnetBlock(width, out, drop, norm))
                width = out
            temporal = [TemporalResnetBlock(out, drop, norm) for _ in range(config.num_res_blocks + 1)]
            upsample = Upsample2d(width, config.resamp_with_conv) if level in config.spatial_us else None
            upsample_t = None
            if level in config.tempo_us:
                upsample_t = TimeUpsample2x(width, config.interpolation_mode, first_frames)
                first_frames *= 2
            up[level] = _Level(spatial, upsample, "upsample")
            up_temporal[level] = _Level(temporal, upsample_t, "upsample")
        self.up, self.up_temporal = nn.ModuleList(up), nn.ModuleList(up_temporal)
        self.norm_out = make_norm(width, norm)
        self.conv_out = CausalConv3d(width, config.out_ch, kernel_size=3)

    def forward(self, z: torch.Tensor, attentions: list | None = None) -> torch.Tensor:
        cfg = self.config
        h = self.mid(self.conv_in(z), cfg, attentions)
        for level in reversed(range(len(cfg.ch_mult))):
            for spatial, temporal in zip(self.up[level].block, self.up_temporal[level].block):
                h = _space_then_time(h, spatial, temporal)
            if level in cfg.spatial_us:
                h = per_frame(self.up[level].upsample, h)
                if level in cfg.tempo_us:
                    h = self.up_temporal[level].upsample(h)
        h = self.conv_out(swish(per_frame(self.norm_out, h)))
        return torch.tanh(h) if cfg.tanh_out else h


def _record(hidden_states: list | None, h: torch.Tensor) -> torch.Tensor:
    """Append `h (B, C, T, H, W)` time-major with the width last, `(B, H, W, T, C)` (transformers' convention), and
    return the tensor the next stage reads: the same values, computed from the recorded view so gradients reach it."""
    if hidden_states is None:
        return h
    view = h.permute(0, 3, 4, 2, 1)
    hidden_states.append(view)
    return view.permute(0, 4, 3, 1, 2)
