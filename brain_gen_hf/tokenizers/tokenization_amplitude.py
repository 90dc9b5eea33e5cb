"""Amplitude tokenizers: one token per mu-law bin per channel per time step.

* `AmplitudeTokenizer` flattens a bin grid (B, T, C, W) row-major into one sequence per example,
  (B, T*C*W): all channels of step 0, then all channels of step 1, ...
* `AmplitudeMixTokenizer` makes one sequence per channel instead, (B*C*W, T), channel-major in the
  batch (row b*C*W + c*W + w is example b, channel c, slot w).
"""

from __future__ import annotations

import torch

from .signal_utils import as_tensor, to_family
from .tokenization_flat_utils import FlatSignalTokenizer


class AmplitudeTokenizer(FlatSignalTokenizer):
    """Row-major flattening of a (B, T, C, W) bin grid to (B, T*C*W) token ids.

    Example:

    ```python
    >>> tokenizer = AmplitudeTokenizer(num_channels=3)
    >>> ids = tokenizer.encode_signal(signal)         # signal (B, 3, T) floats -> (B, 3*T) ids
    >>> tokenizer.decode_signal(ids).shape            # (B, 3, T), mu-law reconstruction
    ```
    """

    def _flatten_grid(self, grid: torch.Tensor) -> torch.Tensor:
        return grid.reshape(grid.shape[0], -1)

    def _unflatten_ids(self, ids: torch.Tensor, num_channels: int) -> torch.Tensor:
        if ids.shape[1] % num_channels:
            raise ValueError(
                f"A sequence of {ids.shape[1]} tokens is not a whole number of time steps of {num_channels} channels."
            )
        return ids.reshape(ids.shape[0], -1, num_channels)

    def tokens_per_step(self, num_channels: int | None = None) -> int:
        """One token per channel: C tokens per time step."""
        return self.resolve_num_channels(num_channels)

    def strip_forecast(self, seq, tokens_per_step: int | None = None):
        """Generated ids (B, n) -> (B, n / C, C); `tokens_per_step` (= C) overrides the configured C."""
        return self.unflatten(seq, tokens_per_step)

    def continuation_to_bins(self, ids: torch.Tensor, num_channels: int | None = None) -> torch.Tensor:
        """Generated ids (B, n) -> bins (B, n / C, C)."""
        return self._unflatten_ids(ids, self.resolve_num_channels(num_channels))


class AmplitudeMixTokenizer(FlatSignalTokenizer):
    """One sequence per channel: a (B, T, C, W) bin grid becomes (B*C*W, T) token ids."""

    def _flatten_grid(self, grid: torch.Tensor) -> torch.Tensor:
        return grid.permute(0, 2, 3, 1).reshape(-1, grid.shape[1])

    def _unflatten_ids(self, ids: torch.Tensor, num_channels: int) -> torch.Tensor:
        if ids.shape[0] % num_channels:
            raise ValueError(
                f"{ids.shape[0]} sequences cannot be regrouped into examples of {num_channels} channels "
                "(AmplitudeMixTokenizer expects B*C rows)."
            )
        return ids.reshape(-1, num_channels, ids.shape[1]).transpose(1, 2)

    def tokens_per_step(self, num_channels: int | None = None) -> int:
        """Every channel is its own sequence, so one token per time step."""
        return 1

    def forecast_tokens_per_step(self, encoded=None, raw_input=None, reduced_shape=None) -> int:
        return 1

    def strip_forecast(self, seq, tokens_per_step: int | None = None):
        """Generated ids (B*C, t) -> (B, t, C) (C from the config; `tokens_per_step` is unused)."""
        tensor, was_torch = as_tensor(seq)
        if tensor.ndim != 2:
            raise ValueError(f"Expected generated ids of shape (B*C, t), got shape {tuple(tensor.shape)}.")
        return to_family(self.unflatten(tensor), was_torch)

    def continuation_to_bins(self, ids: torch.Tensor, num_channels: int | None = None) -> torch.Tensor:
        """Generated channel rows (B*C, t) -> bins (B, t, C)."""
        return self._unflatten_ids(ids, self.resolve_num_channels(num_channels))
