"""Gaussian-interpolated sensor images: channel signals `(C, T)` <-> one smooth `(H, W)` map per time step.

Every channel sits at a pixel of an `image_size` square grid (`grid_indices`: min-max scaled 2-D layout positions);
pixel `p` of frame `t` is the Gaussian-weighted mean of the channels near it:

    img[t, p] = sum_c x_c(t) w_c(p) / max(sum_c w_c(p), 1e-6),   w_c(p) = exp(-d(c, p)^2 / (2 sigma^2)),

with `w_c(p) = 0` beyond `r_max = r_max_factor * sigma` and `sigma = sigma_scale * max(1, median nearest-neighbour
pixel distance between the channels)`, a smoothing scale set by the layout. The read-back is the weighted mean of the
image under each channel's kernel, `x_c(t) = sum_p img[t, p] w_c(p) / sum_p w_c(p)` (an approximation, not an exact
inverse). These are the images Vidtok/VidtokRVQ read (the reference's `ChunkDatasetInterpolatedImage`).
"""

from __future__ import annotations

import numpy as np
import torch

from .collators import _stack, grid_indices


def median_nearest_neighbour(pixels: np.ndarray) -> float:
    """Median over channels of the distance to the nearest other channel (pixel units), at least 1."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if len(pixels) < 2:
        return 1.0
    d2 = ((pixels[:, None, :] - pixels[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return max(float(np.sqrt(np.median(d2.min(axis=1)))), 1.0)


class GaussianSensorImages:
    """The channels <-> image map of one channel layout (see the module docstring).

    Args:
        pos_2d: `(C, 2)` layout positions (any units: they are min-max scaled onto the grid).
        image_size: H = W of the images.
        sigma_scale, r_max_factor: kernel width relative to the median nearest-neighbour distance, and its cut-off
            radius in kernel widths.
    """

    def __init__(self, pos_2d, image_size: int = 32, sigma_scale: float = 0.75, r_max_factor: float = 4.0):
        pos_2d = np.asarray(pos_2d, dtype=np.float64)
        if pos_2d.ndim != 2 or pos_2d.shape[1] != 2 or len(pos_2d) == 0:
            raise ValueError(f"pos_2d must be (C, 2) channel positions, got shape {pos_2d.shape}")
        if not np.isfinite(pos_2d).all():
            raise ValueError("pos_2d contains NaN/inf positions")
        if not (isinstance(image_size, int) and image_size >= 1):
            raise ValueError(f"image_size must be an int >= 1, got {image_size!r}")
        if not sigma_scale > 0 or not r_max_factor >= 0:
            raise ValueError(f"sigma_scale must be > 0 and r_max_factor >= 0, got {sigma_scale}, {r_max_factor}")
        self.image_size = image_size
        self.row_idx, self.col_idx = grid_indices(pos_2d, image_size)
        pixels = np.stack([self.row_idx, self.col_idx], axis=1)
        self.sigma = float(sigma_scale * median_nearest_neighbour(pixels))
        self.r_max = float(r_max_factor * self.sigma)
        rows, cols = torch.meshgrid(torch.arange(image_size), torch.arange(image_size), indexing="ij")
        centres = torch.from_numpy(pixels).float()
        d2 = (rows[None] - centres[:, 0, None, None]) ** 2 + (cols[None] - centres[:, 1, None, None]) ** 2
        weights = torch.exp(-0.5 * d2 / self.sigma**2)
        if self.r_max > 0:
            weights = torch.where(d2 <= self.r_max**2, weights, torch.zeros_like(weights))
        self.weights = weights  # (C, H, W)
        self.pixel_weight = weights.sum(dim=0).clamp_min(1e-6)  # (H, W)
        self.channel_weight = weights.sum(dim=(1, 2)).clamp_min(1e-6)  # (C,)

    @property
    def num_channels(self) -> int:
        return self.weights.shape[0]

    def signal_to_images(self, signal: torch.Tensor) -> torch.Tensor:
        """`(B, C, T)` (or `(C, T)`) -> `(B, T, H, W)` (or `(T, H, W)`)."""
        if signal.ndim not in (2, 3) or signal.shape[-2] != self.num_channels:
            raise ValueError(
                f"signal must be (B, {self.num_channels}, T) or ({self.num_channels}, T), got {tuple(signal.shape)}"
            )
        weights = self.weights.to(signal.device, signal.dtype)
        images = torch.einsum("...ct,chw->...thw", signal, weights)
        return images / self.pixel_weight.to(signal.device, signal.dtype)

    def images_to_signal(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, T, H, W)` (or `(T, H, W)`) -> `(B, C, T)` (or `(C, T)`): each channel's kernel-weighted mean."""
        size = self.image_size
        if images.ndim not in (3, 4) or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(f"images must be (B, T, {size}, {size}) or (T, {size}, {size}), got {tuple(images.shape)}")
        weights = self.weights.to(images.device, images.dtype)
        signal = torch.einsum("...thw,chw->...ct", images, weights)
        return signal / self.channel_weight.to(images.device, images.dtype)[:, None]


def standardize_window(signal: torch.Tensor, min_std: float = 1e-6) -> torch.Tensor:
    """Each window `(B, C, T)` z-scored as a whole: one mean and one (unbiased) std over all its channels and steps."""
    flat = signal.flatten(1)
    mean = flat.mean(dim=1)[:, None, None]
    std = flat.std(dim=1).clamp_min(min_std)[:, None, None]
    return (signal - mean) / std


class GaussianSensorImageCollator:
    """Window items -> `input_values (B, 1, T, H, W)` sensor-image videos (Vidtok, VidtokRVQ).

    `normalize=True` z-scores every window as a whole before the interpolation (the reference's option). Missing
    channels of a window are zeros in the signal, as in the other collators.
    """

    model_inputs = ("input_values",)

    def __init__(
        self,
        layout,
        image_size: int = 32,
        sigma_scale: float = 0.75,
        r_max_factor: float = 4.0,
        normalize: bool = False,
        min_std: float = 1e-6,
    ):
        self.images = GaussianSensorImages(layout.pos_2d, image_size, sigma_scale, r_max_factor)
        self.normalize, self.min_std = normalize, float(min_std)

    def __call__(self, items) -> dict:
        signal = _stack(items, "signal").float()
        if self.normalize:
            signal = standardize_window(signal, self.min_std)
        return {"input_values": self.images.signal_to_images(signal).unsqueeze(1)}
