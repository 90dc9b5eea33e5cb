"""Per-channel robust scaling and clipping over a whole recording (spec 1.5.3).

Unlike the reference, the statistics are returned so they can be stored with every segment and
the scaling can be undone: `x_original = x * scale + center`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class NormalizationConfig:
    """`method`: "robust" ((x - median) / IQR), "standard" (z-score) or "none"."""

    method: str = "robust"
    clip_std_factor: float | None = 5.0  # clip each channel to mean +- k*std after scaling
    quantile_range: tuple[float, float] = (25.0, 75.0)

    def __post_init__(self):
        if self.method not in ("robust", "standard", "none"):
            raise ValueError(f"normalization method must be robust/standard/none, got {self.method!r}")
        if self.clip_std_factor is not None and self.clip_std_factor <= 0:
            raise ValueError("clip_std_factor must be positive or null")
        low, high = self.quantile_range
        if not 0 <= low < high <= 100:
            raise ValueError(f"quantile_range must satisfy 0 <= low < high <= 100, got {self.quantile_range}")
        self.quantile_range = (float(low), float(high))


@dataclass
class NormalizationStats:
    center: np.ndarray  # (C,) in the channel's SI unit
    scale: np.ndarray  # (C,)
    clipped_fraction: float

    def invert(self, data: np.ndarray) -> np.ndarray:
        return data * self.scale[:, None] + self.center[:, None]


def normalize_recording(data: np.ndarray, config: NormalizationConfig, *, source: str = "recording"):
    """Scale `(C, T)` data per channel, then clip. Returns `(float32 data, NormalizationStats)`."""
    data = np.asarray(data, dtype=np.float64)
    n_channels = data.shape[0]
    if config.method == "robust":
        low, median, high = np.percentile(data, [config.quantile_range[0], 50.0, config.quantile_range[1]], axis=1)
        center, scale = median, high - low
    elif config.method == "standard":
        center, scale = data.mean(axis=1), data.std(axis=1)
    else:
        center, scale = np.zeros(n_channels), np.ones(n_channels)
    flat = scale <= 0
    if flat.all():
        raise ValueError(f"{source}: every channel has zero spread ({config.method} scale is 0); the recording is flat")
    # Flat channels (e.g. kept bad channels) would divide by zero: leave them unscaled at zero.
    scale = np.where(flat, 1.0, scale)
    out = (data - center[:, None]) / scale[:, None]
    clipped = 0.0
    if config.clip_std_factor is not None:
        mean, std = out.mean(axis=1, keepdims=True), out.std(axis=1, keepdims=True)
        low, high = mean - config.clip_std_factor * std, mean + config.clip_std_factor * std
        clipped = float(((out < low) | (out > high)).mean())
        out = np.clip(out, low, high)
    stats = NormalizationStats(center.astype(np.float64), scale.astype(np.float64), clipped)
    return out.astype(np.float32), stats
