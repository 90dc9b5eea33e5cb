"""Causal SEANet encoder/decoder (EnCodec's convolutional autoencoder, as used by brain-gen's tokenizers).

Layout and submodule indices follow the reference (`model.{i}.conv.conv.weight`,
`model.{i}.block.{1,3}...`, `model.{i}.lstm...`) so converted checkpoints load unchanged. All convs
are plain (the reference's `norm="weight_norm"` was never applied) and causal: the encoder's frame
i depends on input samples `< (i + 1) * hop`, the decoder's sample t on frames `<= t // hop`.

The encoder runs either on whole windows or chunk by chunk with a `state` dict (see
`streaming_conv.py`); the LSTM carries its `(h, c)` in the same dict.

The residual blocks are `GradientCheckpointingLayer`s: `model.gradient_checkpointing_enable()` recomputes them in
the backward pass on whole windows. Streaming goes through `SEANetResnetBlock.stream`, never checkpointed: it
writes its convolutions' contexts into `state`, which a recompute would overwrite.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .streaming_conv import StreamingConv1d, StreamingConvTranspose1d


class SEANetResnetBlock(GradientCheckpointingLayer):
    """`x + conv1x1(ELU(conv_k(ELU(x))))` with a `dim // compress` bottleneck (identity skip)."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2):
        super().__init__()
        hidden = dim // compress
        self.block = nn.ModuleList(
            [
                nn.ELU(),
                StreamingConv1d(dim, hidden, kernel_size, dilation=dilation),
                nn.ELU(),
                StreamingConv1d(hidden, dim, 1),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whole windows `(N, dim, T)` (checkpointed when gradient checkpointing is on)."""
        return self.stream(x, None)

    def stream(self, x: torch.Tensor, state: dict | None) -> torch.Tensor:
        """A chunk, the convolutions' left contexts carried in `state` (see `streaming_conv.py`)."""
        h = x
        for layer in self.block:
            h = layer(h, state) if isinstance(layer, StreamingConv1d) else layer(h)
        return x + h


class SLSTM(nn.Module):
    """Unidirectional LSTM over time with a residual connection, on `(N, C, T)` tensors."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        seq = x.permute(2, 0, 1)  # (T, N, C), the reference's time-major layout
        hidden = state.get(self) if state is not None else None
        y, hidden = self.lstm(seq, hidden)
        if state is not None:
            state[self] = hidden
        return (y + seq).permute(1, 2, 0)


def _run(
    layers: nn.ModuleList,
    x: torch.Tensor,
    state: dict | None,
    stage_hook: Callable[[torch.Tensor], torch.Tensor] | None = None,
    stage_ends: frozenset[int] = frozenset(),
) -> torch.Tensor:
    for i, layer in enumerate(layers):
        if isinstance(layer, SEANetResnetBlock):
            x = layer(x) if state is None else layer.stream(x, state)
        elif isinstance(layer, (StreamingConv1d, SLSTM)):
            x = layer(x, state)
        else:
            x = layer(x)
        if stage_hook is not None and i in stage_ends:
            x = stage_hook(x)
    return x


class SEANetEncoder(nn.Module):
    """`(N, channels, L)` -> `(N, dimension, L / hop)` with `hop = prod(ratios)` (ratios applied reversed).

    Its stages are the first convolution and each downsampling convolution (`stage_ends`): `forward` passes each
    stage's output `(N, width, L_stage)` through `stage_hook` (which returns the tensor the next layer reads), how the
    tokenizers collect `output_hidden_states`.
    """

    def __init__(
        self,
        channels: int,
        dimension: int,
        n_filters: int,
        ratios: list[int],
        kernel_size: int,
        last_kernel_size: int,
        n_residual_layers: int = 1,
        lstm_layers: int = 0,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        compress: int = 2,
    ):
        super().__init__()
        self.hop_length = math.prod(ratios)
        mult = 1
        layers: list[nn.Module] = [StreamingConv1d(channels, n_filters, kernel_size)]
        for ratio in reversed(ratios):
            width = mult * n_filters
            layers += [
                SEANetResnetBlock(width, residual_kernel_size, dilation_base**j, compress)
                for j in range(n_residual_layers)
            ]
            layers += [nn.ELU(), StreamingConv1d(width, 2 * width, kernel_size=2 * ratio, stride=ratio)]
            mult *= 2
        if lstm_layers:
            layers.append(SLSTM(mult * n_filters, lstm_layers))
        layers += [nn.ELU(), StreamingConv1d(mult * n_filters, dimension, last_kernel_size)]
        self.model = nn.ModuleList(layers)
        strided = [i for i, layer in enumerate(layers) if isinstance(layer, StreamingConv1d) and layer.stride > 1]
        self.stage_ends = frozenset([0, *strided])

    def forward(
        self,
        x: torch.Tensor,
        state: dict | None = None,
        stage_hook: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        return _run(self.model, x, state, stage_hook, self.stage_ends)


class SEANetDecoder(nn.Module):
    """`(N, dimension, F)` -> `(N, channels, F * hop)`, the mirror image of `SEANetEncoder`."""

    def __init__(
        self,
        channels: int,
        dimension: int,
        n_filters: int,
        ratios: list[int],
        kernel_size: int,
        last_kernel_size: int,
        n_residual_layers: int = 1,
        lstm_layers: int = 0,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        compress: int = 2,
    ):
        super().__init__()
        self.hop_length = math.prod(ratios)
        mult = 2 ** len(ratios)
        layers: list[nn.Module] = [StreamingConv1d(dimension, mult * n_filters, kernel_size)]
        if lstm_layers:
            layers.append(SLSTM(mult * n_filters, lstm_layers))
        for ratio in ratios:
            width = mult * n_filters
            layers += [nn.ELU(), StreamingConvTranspose1d(width, width // 2, kernel_size=2 * ratio, stride=ratio)]
            layers += [
                SEANetResnetBlock(width // 2, residual_kernel_size, dilation_base**j, compress)
                for j in range(n_residual_layers)
            ]
            mult //= 2
        layers += [nn.ELU(), StreamingConv1d(n_filters, channels, last_kernel_size)]
        self.model = nn.ModuleList(layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _run(self.model, z, None)
