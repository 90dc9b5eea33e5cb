"""Mu-law companding between float signals and integer amplitude bins.

Both functions accept torch tensors and numpy arrays (or anything `np.asarray` takes) and return
the same array family they were given; numpy inputs run through torch so the bins are identical.
The formulas follow the reference's torch version:

    encode: c = sign(x) * log1p(mu * |clip(x, ±0.999)|) / log1p(mu);  bin = int(c * mu/2 + mu/2 + 0.5)
    decode: y = 2 * bin / mu - 1;  x = sign(y) * ((1 + mu) ** |y| - 1) / mu

Values outside [-1, 1] are clipped (the reference's numpy variant wraps them around through a
uint8 cast; that is never what a caller wants).
"""

from __future__ import annotations

import math

import numpy as np

CLIP_VALUE = 0.999


def _is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def _check_mu(mu) -> int:
    if isinstance(mu, bool) or not isinstance(mu, (int, np.integer)) or mu < 1:
        raise ValueError(f"mu must be a positive integer, got {mu!r}.")
    return int(mu)


def _as_torch(x):
    """(tensor, came_from_numpy): numpy input is viewed as a tensor so both families share one
    code path; separate numpy math differs from torch's log1p by an ulp and flips a few bins."""
    import torch

    # Contiguous memory: torch's vectorised and strided kernels can differ by an ulp, and the
    # bins must not depend on how the caller's array is laid out.
    if _is_torch_tensor(x):
        return x.contiguous(), False
    array = np.asarray(x)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array)), True


def mulaw_encode(x, mu: int = 255):
    """Quantise a float signal to int64 mu-law bins in `[0, mu]`.

    Args:
        x: float tensor/array of any shape, nominally in [-1, 1]; larger magnitudes are clipped.
        mu: companding parameter; there are `mu + 1` bins.

    Returns:
        int64 bins with the shape of `x` (a torch tensor for torch input, else a numpy array).

    Raises:
        ValueError: if `x` is not floating point or holds NaN/inf.
    """
    import torch

    mu = _check_mu(mu)
    signal, from_numpy = _as_torch(x)
    if not torch.is_floating_point(signal):
        raise ValueError(f"mulaw_encode expects a floating-point signal, got dtype {signal.dtype}.")
    if not bool(torch.isfinite(signal).all()):
        raise ValueError("mulaw_encode got a signal with NaN or inf values; clean or mask them first.")
    half_mu = mu * 0.5
    clipped = signal.clamp(-CLIP_VALUE, CLIP_VALUE)
    compressed = clipped.sign() * torch.log1p(mu * clipped.abs()) * (1.0 / math.log1p(mu))
    # The values are >= 0.5, so truncation by `.long()` is the floor of the reference formula.
    bins = (compressed * half_mu + half_mu + 0.5).long()
    return bins.numpy() if from_numpy else bins


def mulaw_decode(ids, mu: int = 255):
    """Map mu-law bins back to float32 amplitudes in [-1, 1].

    Args:
        ids: integer tensor/array of bins in `[0, mu]`.
        mu: companding parameter used at encoding time.

    Raises:
        ValueError: if `ids` is not integer typed or holds a value outside `[0, mu]`.
    """
    import torch

    mu = _check_mu(mu)
    bins, from_numpy = _as_torch(ids)
    if torch.is_floating_point(bins) or torch.is_complex(bins) or bins.dtype == torch.bool:
        raise ValueError(f"mulaw_decode expects integer bins, got dtype {bins.dtype}.")
    if bins.numel() and (int(bins.min()) < 0 or int(bins.max()) > mu):
        raise ValueError(
            f"mulaw_decode got bins in [{int(bins.min())}, {int(bins.max())}]; expected values in [0, {mu}]."
        )
    scaled = 2 * (bins.float() / float(mu)) - 1
    magnitude = (1 / float(mu)) * ((1 + float(mu)) ** scaled.abs() - 1)
    signal = torch.sign(scaled) * magnitude
    return signal.numpy() if from_numpy else signal
