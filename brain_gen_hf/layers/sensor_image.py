"""Sensor images: how channels sit on the `(H, W)` token grid that TASA3D and Wavenet3D read.

Channel c lives at pixel `(row_idx[c], col_idx[c])` (`brain_gen_hf.data.grid_indices` places them from 2-D sensor
positions); every other pixel holds one fill token. Channels that share a pixel (nearby sensors on a coarse grid)
share its value: the image holds the last of them, as `ImageCollator` writes it, and each reads the pixel back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..forecasting.sampling import choose_next, forecast_progress
from .mulaw_signal import signal_to_mulaw
from .mulaw_token_config import check_sensor_pixels


class SensorImage:
    """The channels <-> pixels map of one token image.

    `pixels` are the distinct sensor pixels (flat `row * W + col`), `writer[p]` the channel whose value pixel p
    holds (the last channel there), `reader[c]` the pixel channel c reads.
    """

    def __init__(
        self,
        row_idx: Sequence[int],
        col_idx: Sequence[int],
        image_hw: Sequence[int],
        fill_token: int,
        device: torch.device | str | None = None,
    ):
        self.height, self.width = int(image_hw[0]), int(image_hw[1])
        self.fill_token = int(fill_token)
        flat = [r * self.width + c for r, c in zip(row_idx, col_idx)]
        last_writer = {pixel: channel for channel, pixel in enumerate(flat)}
        pixels = sorted(last_writer)
        slot = {pixel: i for i, pixel in enumerate(pixels)}
        self.pixels = torch.tensor(pixels, dtype=torch.long, device=device)
        self.writer = torch.tensor([last_writer[p] for p in pixels], dtype=torch.long, device=device)
        self.reader = torch.tensor([slot[p] for p in flat], dtype=torch.long, device=device)

    @classmethod
    def for_forecast(
        cls,
        config,
        image_hw: Sequence[int] | None,
        signal: torch.Tensor,
        row_idx=None,
        col_idx=None,
        *,
        image_hw_name: str,
    ) -> SensorImage:
        """The map for a `(B, C, T)` signal: `row_idx`/`col_idx` given to `forecast`, else the config's.

        Raises `ValueError` naming what is missing (the pixels, the image size) or what disagrees.
        """
        given = row_idx is not None or col_idx is not None
        if not given:
            row_idx, col_idx = config.row_idx, config.col_idx
        if row_idx is None:
            raise ValueError(
                f"{type(config).__name__} has no channel layout: a signal forecast needs the pixel of "
                "every channel. Pass `row_idx` and `col_idx` (C entries each, e.g. from "
                "brain_gen_hf.data.grid_indices(layout.pos_2d, image_size) or an ImageCollator) or set "
                "`config.row_idx`/`config.col_idx`"
            )
        if image_hw is None:
            raise ValueError(
                f"the token image size is unknown: set `config.{image_hw_name}` (H, W) to forecast from a signal"
            )
        rows, cols = check_sensor_pixels(row_idx, col_idx, image_hw)
        num_channels = signal.shape[1]
        if len(rows) != num_channels:
            where = "`row_idx`/`col_idx`" if given else "`config.row_idx`/`config.col_idx`"
            raise ValueError(
                f"input_values has {num_channels} channels but {where} place {len(rows)}; pass a signal "
                "with one row per placed channel"
            )
        fill = config.fill_token
        if fill is None:
            fill = int(signal_to_mulaw(torch.zeros(1), config.quant_levels, config.mulaw_max_value)[0])
        return cls(rows, cols, image_hw, fill, device=signal.device)

    def to_image(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(B, C, T)` channel tokens -> `(B, H, W, T)` token image, fill elsewhere."""
        batch, _, steps = tokens.shape
        image = tokens.new_full((batch, self.height * self.width, steps), self.fill_token)
        image[:, self.pixels] = tokens[:, self.writer]
        return image.view(batch, self.height, self.width, steps)

    def at_pixels(self, frame: torch.Tensor) -> torch.Tensor:
        """`(B, H, W, ...)` -> `(B, P, ...)`: the values at the distinct sensor pixels."""
        flat = frame.reshape(frame.shape[0], self.height * self.width, *frame.shape[3:])
        return flat[:, self.pixels]

    def to_channels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(B, P, ...)` per sensor pixel -> `(B, C, ...)` per channel."""
        return pixel_values[:, self.reader]


def roll_out_frames(
    image: SensorImage,
    context: torch.Tensor,
    horizon: int,
    next_logits,
    generation_config,
    logits_processor,
    *,
    progress: bool | None,
    desc: str,
) -> torch.Tensor:
    """Frame-by-frame forecast over a token image.

    `context (B, H, W, T)`; `next_logits(images (B, H, W, t)) -> (B, H, W, Q)`, the logits of frame t. Each
    frame's sensor pixels are chosen with `choose_next` (the other pixels keep the fill token, as in training
    images). Returns the chosen tokens per channel, `(B, C, horizon)`.
    """
    batch, height, width, steps = context.shape
    images = context.new_full((batch, height, width, steps + horizon), image.fill_token)
    images[..., :steps] = context
    flat = images.view(batch, height * width, steps + horizon)
    pixels = image.pixels
    with forecast_progress(horizon, desc, progress) as bar:
        for t in range(steps, steps + horizon):
            logits = image.at_pixels(next_logits(images[..., :t]))  # (B, P, Q)
            flat[:, pixels, t] = choose_next(logits, generation_config, logits_processor)
            bar.update(1)
    return image.to_channels(flat[:, pixels, steps:])
