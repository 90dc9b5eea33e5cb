"""STGPT2MEG's spatio-temporal blocks over `(B, C, T, d_model)` token grids.

Temporal attention runs over T for every channel (causal, cached in the block's slot); spatial attention runs over
C for every time step (not causal: a step's channels see each other). The STGPT blocks add their input once more
on top of the residuals inside their attention and MLP sub-blocks (the reference's doubled identity path; trained
weights depend on it). Submodule names follow the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from transformers.cache_utils import Cache
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_stgpt2meg import STGPT2MEGConfig
from .st_attention import STAttentionBlock, build_attention
from .st_mlp import build_mlp
from .st_sensor_grid import STSensorGridConv


@dataclass
class STStepContext:
    """What every block of one forward call shares: the cache and the condition ids in both layouts."""

    cache: Cache | None = None
    temporal_condition: torch.Tensor | None = None  # (B*C, T) ids, for conditioned attention over time
    spatial_condition: torch.Tensor | None = None  # (B*T, C) ids, for conditioned attention over channels
    output_attentions: bool = False  # compute softmax attention eagerly and return its weights


BlockResult = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def _over_time(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b c t e -> (b c) t e")


def _over_channels(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b c t e -> (b t) c e")


class STBlockBase(GradientCheckpointingLayer):
    """Shared slot bookkeeping: block i's temporal keys sit in cache slot i, its conv history in slot
    `layers + i` and its conditioned-attention key conditions in slot `2 * layers + i`."""

    def __init__(self, config: STGPT2MEGConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.cond_slot_shift = 2 * config.layers

    def _temporal(self, attention: nn.Module, x: torch.Tensor, ctx: STStepContext):
        batch, channels = x.shape[:2]
        out, weights = attention(
            _over_time(x),
            is_causal=True,
            cache=ctx.cache,
            slot=self.layer_idx,
            condition_ids=ctx.temporal_condition,
            output_attentions=ctx.output_attentions,
        )
        return rearrange(out, "(b c) t e -> b c t e", b=batch, c=channels), weights

    def _spatial(self, attention: nn.Module, x: torch.Tensor, ctx: STStepContext):
        batch, _, steps = x.shape[:3]
        out, weights = attention(
            _over_channels(x),
            is_causal=False,
            condition_ids=ctx.spatial_condition,
            output_attentions=ctx.output_attentions,
        )
        return rearrange(out, "(b t) c e -> b c t e", b=batch, t=steps), weights


class STGPTBlock(STBlockBase):
    """`xt = MLP_t(Attn_t(x))`, `xs = MLP_s(Attn_s(xt))` (each with its own residual), returns `xs + x`."""

    def __init__(self, config: STGPT2MEGConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.temporal_attn = STAttentionBlock(config, self.cond_slot_shift)
        self.spatial_attn = STAttentionBlock(config)
        self.spatial_mlp = build_mlp(config)
        self.temporal_mlp = build_mlp(config)

    def forward(self, x: torch.Tensor, ctx: STStepContext) -> BlockResult:
        xt, temporal_weights = self._temporal(self.temporal_attn, x, ctx)
        xt = self.temporal_mlp(xt)
        xs, spatial_weights = self._spatial(self.spatial_attn, xt, ctx)
        xs = self.spatial_mlp(xs)
        return xs + x, temporal_weights, spatial_weights


class STGPTBlockParallel(STBlockBase):
    """`MLP(Attn_t(x) + Attn_s(x))`: both attentions read the block input (each adds it back)."""

    def __init__(self, config: STGPT2MEGConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.temporal_attn = STAttentionBlock(config, self.cond_slot_shift)
        self.spatial_attn = STAttentionBlock(config)
        self.mlp = build_mlp(config)

    def forward(self, x: torch.Tensor, ctx: STStepContext) -> BlockResult:
        xt, temporal_weights = self._temporal(self.temporal_attn, x, ctx)
        xs, spatial_weights = self._spatial(self.spatial_attn, x, ctx)
        return self.mlp(xt + xs), temporal_weights, spatial_weights


class STBlock(STBlockBase):
    """Divided space-time attention: `x + fc(Attn_t(norm(x)))`, then `+ Attn_s(norm(.))`, then `+ MLP(norm(.))`
    (the MLP adds its normalised input again: the reference's doubled MLP path)."""

    def __init__(self, config: STGPT2MEGConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        width = config.d_model
        self.norm1 = nn.RMSNorm(width)
        self.spatial_attn = build_attention(config)
        self.temporal_norm1 = nn.RMSNorm(width)
        self.temporal_attn = build_attention(config)
        self.temporal_fc = nn.Linear(width, width)
        self.norm2 = nn.RMSNorm(width)
        self.mlp = build_mlp(config)

    def forward(self, x: torch.Tensor, ctx: STStepContext) -> BlockResult:
        temporal, temporal_weights = self._temporal(self.temporal_attn, self.temporal_norm1(x), ctx)
        xt = x + self.temporal_fc(temporal)
        spatial, spatial_weights = self._spatial(self.spatial_attn, self.norm1(xt), ctx)
        x = xt + spatial
        return x + self.mlp(self.norm2(x)), temporal_weights, spatial_weights


class STConvBlock(STGPTBlock):
    """A causal 3-D convolution over the sensor grid (`cb1`), then an `STGPTBlock`."""

    def __init__(self, config: STGPT2MEGConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.cb1 = STSensorGridConv(config)
        self.conv_slot = config.layers + layer_idx

    def forward(self, x: torch.Tensor, ctx: STStepContext) -> BlockResult:
        return super().forward(self.cb1(x, ctx.cache, self.conv_slot), ctx)


BLOCK_CLASSES = {cls.__name__: cls for cls in (STGPTBlock, STGPTBlockParallel, STBlock, STConvBlock)}
