"""Batch collators: window items -> keyword arguments of the model's `forward`, named as it names them.

A batch goes to `model(**batch)` unchanged; each collator lists its keys in `model_inputs`.

- `ContinuousCollator`: `input_values (B, C, T)` float32, with `pos (B, C, 2|6)` and `sensor_type (B, C)` int64
  for models that read sensor metadata (brain tokenizers, BrainOmni forecaster, FlatGPT RVQ), and optionally
  `labels` = the window itself (BENDR, whose prediction at t only sees samples before t).
- `MuLawCollator`: `input_ids`/`labels` int64 mu-law bins (mu=255); with `shift=True` labels are aligned so
  position t holds the token at t+1 (WaveNet).
- `CodesCollator`: pretokenized brain-tokenizer `codes` -> `input_ids` and `labels` (FlatGPT RVQ; the LM shifts).
- `ClassLabelCollator`: another collator's inputs plus `labels` = each item's class index (classifiers).
- `ImageCollator`: sensors scattered on an `(H, W)` grid: `input_values (B, H, W, T)` float32 or mu-law token
  images `input_ids`/`labels`, labels at the sensor pixels only (TASA3D, Wavenet3D, image classifiers); the pixel
  of every channel is `row_idx`/`col_idx` on the collator.

Missing channels of a window are zeros in the signal; token labels mask them with -100.
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
    """`positions`: "2d" (layout coordinates, `(C, 2)`), "3d" (position ++ orientation, `(C, 6)`) or None (no
    `pos`/`sensor_type`: the model reads the signal only). `labels=True` adds `labels`, a copy of the window."""

    def __init__(self, layout: ChannelLayout, positions: str | None = "2d", labels: bool = False):
        if positions not in ("2d", "3d", None):
            raise ValueError(f"positions must be '2d', '3d' or None, got {positions!r}")
        self.pos = self.sensor_type = None
        if positions is not None:
            pos = layout.pos_2d if positions == "2d" else layout.pos_ori
            self.pos = torch.from_numpy(np.ascontiguousarray(pos, dtype=np.float32))
            self.sensor_type = torch.from_numpy(layout.sensor_type_ids)
        self.labels = labels
        self.model_inputs = (
            ("input_values",)
            + (("pos", "sensor_type") if positions is not None else ())
            + (("labels",) if labels else ())
        )

    def __call__(self, items: list[dict]) -> dict:
        signal = _stack(items, "signal")
        batch = {"input_values": signal}
        if self.pos is not None:
            size = signal.shape[0]
            batch["pos"] = self.pos.unsqueeze(0).expand(size, -1, -1)
            batch["sensor_type"] = self.sensor_type.unsqueeze(0).expand(size, -1)
        if self.labels:
            batch["labels"] = signal.clone()
        return batch


class MuLawCollator:
    """Tokens = mu-law bins of `signal / max_value` (reference `ChunkDatasetJIT`, max 5.0).

    `shift=True` returns `input_ids = q[..., :-1]`, `labels = q[..., 1:]` (next-token targets);
    `shift=False` returns the full `q` as both. Missing channels are masked out of the labels
    with -100. `labels=False` returns `input_ids` only (the full `q`)."""

    def __init__(self, mu: int = 255, max_value: float = 5.0, shift: bool = True, labels: bool = True):
        if max_value <= 0:
            raise ValueError(f"max_value must be positive, got {max_value}")
        if shift and not labels:
            raise ValueError("shift=True aligns next-token labels: it needs labels=True")
        self.mu, self.max_value, self.shift, self.labels = mu, max_value, shift, labels
        self.model_inputs = ("input_ids", "labels") if labels else ("input_ids",)

    def __call__(self, items: list[dict]) -> dict:
        signal = _stack(items, "signal")
        tokens = mulaw_encode(signal / self.max_value, mu=self.mu)
        if not self.labels:
            return {"input_ids": tokens}
        labels = tokens.masked_fill(~_stack(items, "channel_mask").unsqueeze(-1), -100)
        if self.shift:
            return {"input_ids": tokens[..., :-1].contiguous(), "labels": labels[..., 1:].contiguous()}
        return {"input_ids": tokens, "labels": labels}


class CodesCollator:
    """Pretokenized windows (`codes`: flat brain-tokenizer codes) -> `input_ids` and `labels`, both the codes:
    a causal LM shifts its labels itself."""

    model_inputs = ("input_ids", "labels")

    def __call__(self, items: list[dict]) -> dict:
        codes = torch.stack([torch.as_tensor(item["codes"]) for item in items]).long()
        return {"input_ids": codes, "labels": codes}


class ClassLabelCollator:
    """`inputs`'s batch plus `labels`: the class index each item carries under `label_key`."""

    def __init__(self, inputs, label_key: str = "label"):
        if "labels" in inputs.model_inputs:
            raise ValueError(f"{type(inputs).__name__} already emits labels; build it without them")
        self.inputs, self.label_key = inputs, label_key
        self.model_inputs = (*inputs.model_inputs, "labels")

    def __call__(self, items: list[dict]) -> dict:
        return {**self.inputs(items), "labels": torch.tensor([item[self.label_key] for item in items])}


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
    """Sparse sensor images. `quantize=True` gives mu-law token images with next-step labels; pixels without a
    sensor, and the pixels of missing channels, are -100 in the labels (the loss reads sensor pixels only, as the
    reference's postprocessor does). `labels=False` gives the full token image as `input_ids` alone (image
    classifiers).

    `pixels=(row_idx, col_idx)` places the channels where a model's config does; without it `grid_indices`
    places them from the layout's 2-D positions (square images only). `image_size` is an int or `(H, W)`.
    """

    def __init__(
        self,
        layout: ChannelLayout,
        image_size: int | tuple[int, int] = 32,
        quantize: bool = False,
        mu: int = 255,
        max_value: float = 5.0,
        labels: bool = True,
        pixels: tuple | None = None,
    ):
        height, width = (image_size, image_size) if isinstance(image_size, int) else (int(s) for s in image_size)
        self.image_size, self.height, self.width = image_size, height, width
        if pixels is None:
            if height != width:
                raise ValueError(
                    f"grid_indices places channels on square images only, got {height}x{width}: pass `pixels`"
                )
            pixels = grid_indices(layout.pos_2d, height)
        row, col = (torch.as_tensor(np.asarray(p), dtype=torch.long) for p in pixels)
        if row.shape != (len(layout.names),) or col.shape != row.shape:
            raise ValueError(
                f"`pixels` must give one row and one column per channel ({len(layout.names)}), got "
                f"{tuple(row.shape)} and {tuple(col.shape)}"
            )
        if bool((row < 0).any() or (row >= height).any() or (col < 0).any() or (col >= width).any()):
            raise ValueError(f"`pixels` fall outside the {height}x{width} image")
        if not quantize and not labels:
            raise ValueError("labels=False applies to token images: it needs quantize=True")
        self.row_idx, self.col_idx = row, col
        self.quantize, self.mu, self.max_value, self.labels = quantize, mu, max_value, labels
        if not quantize:
            self.model_inputs = ("input_values",)
        else:
            self.model_inputs = ("input_ids", "labels") if labels else ("input_ids",)

    def to_image(self, signal: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, H, W, T), zeros off-sensor."""
        batch, _, steps = signal.shape
        image = signal.new_zeros(batch, self.height, self.width, steps)
        image[:, self.row_idx, self.col_idx, :] = signal
        return image

    def from_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W, T) -> (B, C, T): read every channel back from its pixel."""
        return image[:, self.row_idx, self.col_idx, :]

    def __call__(self, items: list[dict]) -> dict:
        image = self.to_image(_stack(items, "signal"))
        if not self.quantize:
            return {"input_values": image}
        tokens = mulaw_encode(image / self.max_value, mu=self.mu)
        if not self.labels:
            return {"input_ids": tokens}
        # Written like the signal, so a pixel two channels share is kept exactly when the channel it shows is present.
        present = self.to_image(_stack(items, "channel_mask").unsqueeze(-1).float())[..., 0] > 0
        labels = tokens.masked_fill(~present.unsqueeze(-1), -100)
        return {"input_ids": tokens[..., :-1].contiguous(), "labels": labels[..., 1:].contiguous()}
