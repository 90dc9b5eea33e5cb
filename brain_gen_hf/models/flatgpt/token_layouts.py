"""Flat token layouts: how a token grid `(B, T, C, W)` becomes FlatGPT's sequence and back.

These are the parameter-free flat tokenizers of brain-gen as small pure functions (the HF tokenizer classes in
`brain_gen_hf.tokenizers` wrap the same layouts for text-style use). Each layout knows

* `encode(grid)` -> codes, the model's `input_ids`;
* `tokens_per_sample(grid, config)`: sequence tokens per raw time sample (forecast horizon -> token count);
* `decode(generated)` -> the generated part back as a `(B, steps, C)` grid.
"""

from __future__ import annotations

import torch
from einops import rearrange

from ...modeling_utils import _check_index_dtype, check_has_data


def _check_grid(grid: torch.Tensor, vocab_size: int, channels: int, name: str = "token grid") -> torch.Tensor:
    if not isinstance(grid, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of token ids (B, T, C, W), got {type(grid).__name__}")
    check_has_data(grid, name)
    if grid.is_floating_point() or grid.dtype == torch.bool or grid.is_complex():
        raise ValueError(f"{name} must hold integer token ids (mu-law bins), got dtype {grid.dtype}; quantise the "
                         "signal first (e.g. brain_gen_hf.tokenizers.mulaw)")
    _check_index_dtype(grid, name)  # as `check_tokens`: smaller integer dtypes are not read as ids
    if grid.ndim == 3:
        grid = grid.unsqueeze(-1)
    if grid.ndim != 4:
        raise ValueError(f"{name} must have shape (B, T, C) or (B, T, C, W), got {tuple(grid.shape)}")
    if grid.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(grid.shape)})")
    if grid.shape[2] * grid.shape[3] != channels:
        # The sequence would be laid out for another channel count: grid positions and per-slot tables misalign.
        raise ValueError(f"{name} of shape {tuple(grid.shape)} has {grid.shape[2] * grid.shape[3]} channels per time "
                         f"step (C * W), the model's input_shape has {channels}")
    lo, hi = int(grid.min()), int(grid.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} has ids in [{lo}, {hi}], outside the vocabulary [0, {vocab_size - 1}]")
    return grid


class AmplitudeLayout:
    """Row-major flatten `(B, T, C, W) -> (B, T*C*W)`; decode regroups `C*W` tokens per time step."""

    def __init__(self, config):
        self.vocab_size = config.vocab_size
        self.channels = self.grid_channels = config.input_shape[1] * config.input_shape[2]

    def encode(self, grid: torch.Tensor) -> torch.Tensor:
        grid = _check_grid(grid, self.vocab_size, self.grid_channels)
        self.channels = grid.shape[2] * grid.shape[3]
        return grid.reshape(grid.shape[0], -1)

    def tokens_per_sample(self, config) -> float:
        reduced = config.reduced_shape
        return reduced[1] * reduced[2] / config.temporal_reduction

    def decode(self, generated: torch.Tensor) -> torch.Tensor:
        return generated.reshape(generated.shape[0], -1, self.channels)


class AmplitudeMixLayout:
    """One sequence per channel: `(B, T, C, W) -> (B*C*W, T)` (rows channel-major within each example)."""

    def __init__(self, config):
        self.vocab_size = config.vocab_size
        self.channels = self.grid_channels = config.input_shape[1] * config.input_shape[2]

    def encode(self, grid: torch.Tensor) -> torch.Tensor:
        grid = _check_grid(grid, self.vocab_size, self.grid_channels)
        self.channels = grid.shape[2] * grid.shape[3]
        return rearrange(grid, "b t c w -> (b c w) t")

    def tokens_per_sample(self, config) -> float:
        return 1.0 / config.temporal_reduction

    def decode(self, generated: torch.Tensor) -> torch.Tensor:
        return rearrange(generated, "(b c) t -> b t c", c=self.channels)


class DelimitedLayout:
    """`[D, x_0 (C tokens), D, x_1, D, ..., x_{T-1}, D]`: a delimiter before the first step and after every step."""

    def __init__(self, config):
        self.vocab_size = config.vocab_size
        self.delimiter_id = config.tokenizer_config["delimiter_id"]
        self.channels = self.grid_channels = config.input_shape[1] * config.input_shape[2]

    def encode(self, grid: torch.Tensor) -> torch.Tensor:
        grid = _check_grid(grid, self.vocab_size, self.grid_channels)
        if (grid == self.delimiter_id).any():
            raise ValueError(f"the token grid contains the delimiter id {self.delimiter_id}; signal bins must be "
                             "below it")
        B, T = grid.shape[:2]
        self.channels = grid.shape[2] * grid.shape[3]
        steps = grid.reshape(B, T, self.channels)
        delimiter = steps.new_full((B, T, 1), self.delimiter_id)
        body = torch.cat([steps, delimiter], dim=2).reshape(B, -1)
        return torch.cat([body.new_full((B, 1), self.delimiter_id), body], dim=1)

    def tokens_per_sample(self, config) -> float:
        return float(self.channels + 1)

    def decode(self, generated: torch.Tensor) -> torch.Tensor:
        """Drop the delimiter slot of every `C + 1` group (whatever the model put there)."""
        if generated.shape[1] % (self.channels + 1) != 0:
            raise ValueError(f"generated length {generated.shape[1]} is not a whole number of "
                             f"{self.channels + 1}-token steps")
        groups = generated.reshape(generated.shape[0], -1, self.channels + 1)
        return groups[..., : self.channels]


LAYOUTS = {
    "AmplitudeTokenizer": AmplitudeLayout,
    "AmplitudeMixTokenizer": AmplitudeMixLayout,
    "DelimitedTokenizer": DelimitedLayout,
}


def build_layout(config):
    return LAYOUTS[config.tokenizer_class](config)
