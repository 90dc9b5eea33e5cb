"""`STSensorGridConv`: STConvBlock's causal 3-D convolution over the sensor grid.

Each channel's token is placed at its grid cell (`config.row_idx` / `col_idx`, never read from a file), a 3-D
convolution runs over (time, row, column) with only past steps on its time axis, and the cells are read back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache

from .configuration_stgpt2meg import STGPT2MEGConfig


def per_step_group_norm(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """GroupNorm of `(B, E, T, H, W)` with statistics per time step (a norm over time would see the future)."""
    steps = x.shape[2]
    flat = rearrange(x, "b e t h w -> (b t) e h w")
    return rearrange(norm(flat), "(b t) e h w -> b e t h w", t=steps)


class STSensorGridConv(nn.Module):
    """`(B, C, T, E)` -> same: grid <- tokens, `x + Drop(pw(GELU(GN(conv3d(causal_pad(x))))))`, tokens <- grid.

    Cells without a channel hold zeros. With a cache, slot `slot` keeps the block's past inputs so a cached step
    convolves over the `kT - 1` steps before it.
    """

    def __init__(self, config: STGPT2MEGConfig):
        super().__init__()
        width = config.d_model
        self.kernel = tuple(config.conv_kernel)
        self.image_size = config.image_size
        self.register_buffer("row_idx", torch.tensor(config.row_idx, dtype=torch.long), persistent=False)
        self.register_buffer("col_idx", torch.tensor(config.col_idx, dtype=torch.long), persistent=False)
        self.conv3d = nn.Conv3d(width, width, kernel_size=self.kernel)
        self.pw = nn.Conv3d(width, width, kernel_size=1)
        self.gn = nn.GroupNorm(width // 8, width)
        self.act = nn.GELU()
        self.drop = nn.Dropout(config.conv_dropout)
        self._config_cells = (list(config.row_idx), list(config.col_idx))

    def reset_brain_gen_parameters(self) -> None:
        # Only the (derived, unsaved) cell indices: the convolutions and the norm are reset as modules of their own.
        rows, cols = self._config_cells
        init.copy_(self.row_idx, torch.tensor(rows, dtype=torch.long))
        init.copy_(self.col_idx, torch.tensor(cols, dtype=torch.long))

    def _to_grid(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, steps, width = x.shape
        grid = x.new_zeros(batch, width, steps, self.image_size, self.image_size)
        # Of channels sharing a cell the last one writes it (a scatter with repeated indices has no defined winner).
        cells = self.row_idx * self.image_size + self.col_idx
        order = torch.arange(cells.numel(), device=cells.device)
        overwritten = ((cells.unsqueeze(0) == cells.unsqueeze(1)) & (order.unsqueeze(0) > order.unsqueeze(1))).any(1)
        writes = ~overwritten
        grid[..., self.row_idx[writes], self.col_idx[writes]] = rearrange(x, "b c t e -> b e t c")[..., writes]
        return grid

    def forward(self, x: torch.Tensor, cache: Cache | None = None, slot: int | None = None) -> torch.Tensor:
        steps = x.shape[2]
        past = 0
        inputs = x
        if cache is not None:
            # The slot holds every past input `(B, C, T, E)`; the convolution needs the last kT - 1 steps of them.
            history = cache.update(x, x[..., :0], slot)[0]
            inputs = history[:, :, -(steps + self.kernel[0] - 1) :]
            past = inputs.shape[2] - steps
        grid = self._to_grid(inputs)
        k_t, k_h, k_w = self.kernel
        padded = F.pad(grid, (k_w // 2, k_w // 2, k_h // 2, k_h // 2, k_t - 1 - past, 0))
        y = self.drop(self.pw(self.act(per_step_group_norm(self.gn, self.conv3d(padded)))))
        y = y + grid[:, :, past:]
        return rearrange(y[..., self.row_idx, self.col_idx], "b e t c -> b c t e")
