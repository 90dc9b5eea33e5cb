"""Batch collators: window items -> the inputs each model family expects.

- `ContinuousCollator`: `inputs (B, C, T)` float32, `pos (B, C, 2|6)`, `sensor_type (B, C)`
  int64, `channel_mask (B, C)` (tokenizers, BrainOmni/BrainTokMix, FlatGPT RVQ, NTD).
- `MuLawCollator`: `input_ids`/`labels` int64 mu-law bins (mu=255), labels aligned so position t
  holds the token at t+1 (STGPT2MEG, WaveNet).
- `ImageCollator`: sensors scattered on an `(H, W)` grid, `(B, H, W, T)` float32 or mu-law token
  images, plus `row_idx`/`col_idx` of every channel (TASA3D, Wavenet3D, image classifiers).
"""

from __future__ import annotations

import numpy as np
import torch

from ..tokenizers.mulaw import mulaw_encode
from .layouts import ChannelLayout


def _stack(items, key: str) -> torch.Tensor:
    prebuilt = getattr(items, key, None)  # WindowBatch from WindowDataset.__getitems__
    if prebuilt is not None:
        return torch.from_numpy(prebuilt)
    return torch.from_numpy(np.stack([item[key] for item in items]))


class ContinuousCollator:
    """`positions`: "2d" (layout coordinates, `(C, 2)`) or "3d" (position ++ orientation, `(C, 6)`)."""

    def __init__(self, layout: ChannelLayout, positions: str = "2d"):
        if positions not in ("2d", "3d"):
            raise ValueError(f"positions must be '2d' or '3d', got {positions!r}")
        pos = layout.pos_2d if positions == "2d" else layout.pos_ori
        self.pos = torch.from_numpy(np.ascontiguousarray(pos, dtype=np.float32))
        self.sensor_type = torch.from_numpy(layout.sensor_type_ids)

    def __call__(self, items: list[dict]) -> dict:
        inputs = _stack(items, "signal")
        batch = inputs.shape[0]
        return {
            "inputs": inputs,
            "pos": self.pos.unsqueeze(0).expand(batch, -1, -1),
            "sensor_type": self.sensor_type.unsqueeze(0).expand(batch, -1),
            "channel_mask": _stack(items, "channel_mask"),
        }


class MuLawCollator:
    """Tokens = mu-law bins of `signal / max_value` (reference `ChunkDatasetJIT`, max 5.0).

    `shift=True` returns `input_ids = q[..., :-1]`, `labels = q[..., 1:]` (next-token targets);
    `shift=False` returns the full `q` as both. Missing channels are masked out of the labels
    with -100."""

    def __init__(self, mu: int = 255, max_value: float = 5.0, shift: bool = True):
        if max_value <= 0:
            raise ValueError(f"max_value must be positive, got {max_value}")
        self.mu, self.max_value, self.shift = mu, max_value, shift

    def __call__(self, items: list[dict]) -> dict:
        signal = _stack(items, "signal")
        mask = _stack(items, "channel_mask")
        tokens = mulaw_encode(signal / self.max_value, mu=self.mu)
        labels = tokens.masked_fill(~mask.unsqueeze(-1), -100)
        if self.shift:
            return {"input_ids": tokens[..., :-1].contiguous(), "labels": labels[..., 1:].contiguous(),
                    "channel_mask": mask}
        return {"input_ids": tokens, "labels": labels, "channel_mask": mask}


def grid_indices(pos_2d: np.ndarray, image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(row_idx, col_idx) of each channel on an `image_size` grid (reference `compute_layout_indices`).

    Positions are min-max scaled per axis (a zero span counts as 1) and rounded; two channels can
    land on the same pixel, in which case the later channel wins in `ImageCollator`.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    pos = np.asarray(pos_2d, dtype=np.float64)
    span = pos.max(axis=0) - pos.min(axis=0)
    span[span == 0] = 1.0
    normalized = (pos - pos.min(axis=0)) / span
    col = np.round(normalized[:, 0] * (image_size - 1)).astype(np.int64)
    row = np.round(normalized[:, 1] * (image_size - 1)).astype(np.int64)
    return row, col


class ImageCollator:
    """Sparse sensor images. `quantize=True` gives mu-law token images with next-step labels."""

    def __init__(self, layout: ChannelLayout, image_size: int = 32, quantize: bool = False, mu: int = 255,
                 max_value: float = 5.0):
        self.image_size = image_size
        row, col = grid_indices(layout.pos_2d, image_size)
        self.row_idx, self.col_idx = torch.from_numpy(row), torch.from_numpy(col)
        self.quantize, self.mu, self.max_value = quantize, mu, max_value

    def to_image(self, signal: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, H, W, T), zeros off-sensor."""
        batch, _, steps = signal.shape
        image = signal.new_zeros(batch, self.image_size, self.image_size, steps)
        image[:, self.row_idx, self.col_idx, :] = signal
        return image

    def from_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W, T) -> (B, C, T): read every channel back from its pixel."""
        return image[:, self.row_idx, self.col_idx, :]

    def __call__(self, items: list[dict]) -> dict:
        image = self.to_image(_stack(items, "signal"))
        out = {"row_idx": self.row_idx, "col_idx": self.col_idx, "channel_mask": _stack(items, "channel_mask")}
        if not self.quantize:
            out["inputs"] = image
            return out
        tokens = mulaw_encode(image / self.max_value, mu=self.mu)
        out["input_ids"] = tokens[..., :-1].contiguous()
        out["labels"] = tokens[..., 1:].contiguous()
        return out
