"""Input checks and layout conversions shared by the signal tokenizers.

Work happens on torch tensors; numpy (or nested-list) inputs are viewed as tensors and the
results handed back as numpy, so callers get the array family they passed in.

Layouts:
    signal     float (B, C, T) or (C, T)          -> mu-law bins
    bins       integer (B, C, T) or (C, T)        already quantised, same layout as a signal
    bin grid   integer (B, T, C, W)               the reference's dataset layout (ChunkDataset3D)
"""

from __future__ import annotations

import numpy as np
import torch

from .mulaw import mulaw_decode, mulaw_encode


def as_tensor(x) -> tuple[torch.Tensor, bool]:
    """(tensor, was_torch). Lists and numpy arrays become tensors (sharing memory when possible)."""
    if isinstance(x, torch.Tensor):
        return x, True
    try:
        array = np.asarray(x)
    except ValueError as error:  # numpy >= 1.24 refuses ragged nested lists
        raise ValueError(f"Expected a rectangular numeric array; got ragged input ({error}).") from None
    if array.dtype.kind not in "biufc":  # object (ragged), strings, dates: nothing torch can hold
        raise ValueError(
            f"Expected a rectangular numeric array; got ragged or non-numeric input (dtype {array.dtype})."
        )
    return torch.from_numpy(np.ascontiguousarray(array)), False


def to_family(x: torch.Tensor, was_torch: bool):
    return x if was_torch else x.numpy()


def _is_integer(x: torch.Tensor) -> bool:
    return not (torch.is_floating_point(x) or torch.is_complex(x) or x.dtype == torch.bool)


def check_bin_range(bins: torch.Tensor, mu: int, what: str = "bins") -> None:
    if bins.numel() and (int(bins.min()) < 0 or int(bins.max()) > mu):
        raise ValueError(
            f"{what} must lie in [0, {mu}] (mu-law bins), found values in [{int(bins.min())}, {int(bins.max())}]."
        )


def signal_to_bin_grid(x, mu: int) -> tuple[torch.Tensor, bool]:
    """Any accepted signal/bins/grid input -> (int64 bin grid (B, T, C, W), was_torch)."""
    tensor, was_torch = as_tensor(x)
    if tensor.dtype == torch.bool or torch.is_complex(tensor):
        raise ValueError(f"Expected a float signal or integer bins, got dtype {tensor.dtype}.")
    if tensor.numel() == 0:
        raise ValueError(f"Cannot tokenize an empty signal (shape {tuple(tensor.shape)}).")
    integer = _is_integer(tensor)
    if integer and tensor.ndim == 4:
        check_bin_range(tensor, mu, "bin grid values")
        return tensor.long().contiguous(), was_torch
    if tensor.ndim not in (2, 3):
        kind = "bins (B, C, T), (C, T) or a bin grid (B, T, C, W)" if integer else "signal (B, C, T) or (C, T)"
        raise ValueError(f"Expected a {kind}; got a rank-{tensor.ndim} array of shape {tuple(tensor.shape)}.")
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    if integer:
        check_bin_range(tensor, mu)
        bins = tensor.long()
    else:
        bins = mulaw_encode(tensor, mu)
    return bins.transpose(1, 2).unsqueeze(-1).contiguous(), was_torch


def check_token_ids(ids, vocab_size: int) -> tuple[torch.Tensor, bool]:
    """Token ids as a 2-D int64 tensor (B, L) (a 1-D row becomes B = 1), range-checked."""
    tensor, was_torch = as_tensor(ids)
    if not _is_integer(tensor):
        raise ValueError(f"Token ids must be integers, got dtype {tensor.dtype}.")
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2:
        raise ValueError(f"Expected token ids of shape (B, L) or (L,), got shape {tuple(tensor.shape)}.")
    if tensor.shape[1] == 0 or tensor.shape[0] == 0:
        raise ValueError(f"Cannot decode an empty token sequence (shape {tuple(tensor.shape)}).")
    if int(tensor.min()) < 0 or int(tensor.max()) >= vocab_size:
        raise ValueError(
            f"Token ids must lie in [0, {vocab_size - 1}] (vocab size {vocab_size}), "
            f"found values in [{int(tensor.min())}, {int(tensor.max())}]."
        )
    return tensor.long(), was_torch


def bins_to_signal(bins: torch.Tensor, mu: int) -> torch.Tensor:
    """Bins laid out (B, T, C) -> float32 signal (B, C, T)."""
    return mulaw_decode(bins, mu).transpose(1, 2).contiguous()
