"""Delimited tokenizer: amplitude tokens with a step delimiter.

A bin grid (B, T, C, W) becomes `[D, x_0, D, x_1, D, ..., x_{T-1}, D]` per example, where x_t are
the C*W bins of step t and D is the delimiter token (id `mu + 1`, so the vocabulary has mu + 2 =
257 entries): `1 + T * (C*W + 1)` tokens.

Forecasting: a generator continues right after the context's final delimiter, so generated
streams look like `[x_0, D, x_1, D, ...]`, maybe with a leading D and maybe cut inside a step.
`strip_forecast` takes what a generator has (the ids; the channel count comes from the config),
removes delimiters by position as the reference does, and drops a trailing partial step.
"""

from __future__ import annotations

import numbers

import torch

from .signal_utils import as_tensor, check_token_ids, to_family
from .tokenization_flat_utils import FlatSignalTokenizer


class DelimitedTokenizer(FlatSignalTokenizer):
    """Amplitude tokens with a delimiter before the first step and after every step.

    Args:
        mu (`int`, defaults to 255): mu-law parameter; bins are ids `0 .. mu`.
        num_channels (`int`, *optional*): channels per step; saved in tokenizer_config.json.
        delimiter_id (`int`, *optional*): must be `mu + 1` (the default); accepted for the
            reference's constructor signature.
    """

    def __init__(
        self, vocab=None, mu: int = 255, num_channels: int | None = None, delimiter_id: int | None = None, **kwargs
    ):
        if delimiter_id is not None and delimiter_id != mu + 1:
            raise ValueError(
                f"delimiter_id must be mu + 1 = {mu + 1} (the token after the {mu + 1} amplitude bins), "
                f"got {delimiter_id}."
            )
        super().__init__(vocab=vocab, mu=mu, num_channels=num_channels, **kwargs)

    @property
    def delimiter_id(self) -> int:
        return self.mu + 1

    def _num_symbols(self) -> int:
        return super()._num_symbols() + 1

    # ---------------------------------------------------------------- flattening

    def _flatten_grid(self, grid: torch.Tensor) -> torch.Tensor:
        batch, steps = grid.shape[:2]
        per_step = grid.reshape(batch, steps, -1)
        step_ends = per_step.new_full((batch, steps, 1), self.delimiter_id)
        body = torch.cat([per_step, step_ends], dim=2).reshape(batch, -1)
        return torch.cat([body.new_full((batch, 1), self.delimiter_id), body], dim=1)

    def _unflatten_ids(self, ids: torch.Tensor, num_channels: int) -> torch.Tensor:
        """Strict inverse of `_flatten_grid`; the leading delimiter is optional."""
        body = self._drop_leading_delimiter(ids)
        group = num_channels + 1
        if body.shape[1] % group:
            raise ValueError(
                f"{body.shape[1]} tokens (after the leading delimiter) are not a whole number of steps of "
                f"{num_channels} channels + 1 delimiter; use strip_forecast to drop a partial last step."
            )
        steps = body.reshape(body.shape[0], -1, group)
        if not bool((steps[:, :, -1] == self.delimiter_id).all()):
            raise ValueError(f"Expected the delimiter {self.delimiter_id} after every {num_channels} channel tokens.")
        data = steps[:, :, :-1]
        if bool((data == self.delimiter_id).any()):
            raise ValueError(f"Found the delimiter {self.delimiter_id} where a channel token was expected.")
        return data

    def _drop_leading_delimiter(self, ids: torch.Tensor) -> torch.Tensor:
        # Like the reference, a leading delimiter is only stripped when every row has one.
        if ids.shape[1] and bool((ids[:, 0] == self.delimiter_id).all()):
            return ids[:, 1:]
        return ids

    # ---------------------------------------------------------------- forecasting

    def tokens_per_step(self, num_channels: int | None = None) -> int:
        """C channel tokens plus the delimiter."""
        return self.resolve_num_channels(num_channels) + 1

    def forecast_tokens_per_step(self, encoded=None, raw_input=None, reduced_shape=None) -> int:
        """Reference order: channels from the raw (B, T, C, ...) grid, else the config, else `reduced_shape`."""
        if raw_input is not None and getattr(raw_input, "ndim", 0) >= 3:
            return self.tokens_per_step(int(torch.Size(raw_input.shape[2:]).numel()))
        if self.num_channels is None and reduced_shape is not None:
            return self.tokens_per_step(int(torch.Size(reduced_shape[1:]).numel()))
        return self.tokens_per_step()

    def strip_forecast(self, seq, tokens_per_step: int | None = None):
        """Remove delimiters from generated ids (B, n) -> channel tokens (B, steps * C).

        `tokens_per_step` defaults to `num_channels + 1` from the config. An optional leading
        delimiter is skipped; the last token of every `tokens_per_step` group is dropped (by
        position, as the reference does); a trailing partial step is dropped.
        """
        tensor, was_torch = as_tensor(seq)
        if tensor.ndim == 1:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 2:
            raise ValueError(f"Expected generated ids of shape (B, n) or (n,), got shape {tuple(tensor.shape)}.")
        group = self._group(tokens_per_step)
        if tensor.numel():
            check_token_ids(tensor, len(self))  # as decode_signal: ids outside the vocabulary are refused
        body = self._drop_leading_delimiter(tensor)
        whole_steps = body.shape[1] // group
        steps = body[:, : whole_steps * group].reshape(body.shape[0], whole_steps, group)
        return to_family(steps[:, :, :-1].reshape(body.shape[0], -1), was_torch)

    def _group(self, tokens_per_step) -> int:
        if tokens_per_step is None:
            return self.tokens_per_step()
        # int(2.5) would silently regroup the stream by 2
        if (
            isinstance(tokens_per_step, bool)
            or not isinstance(tokens_per_step, numbers.Integral)
            or tokens_per_step < 2
        ):
            raise ValueError(f"tokens_per_step must be >= 2 (channels + delimiter), an int, got {tokens_per_step!r}.")
        return int(tokens_per_step)

    def continuation_to_bins(self, ids: torch.Tensor, num_channels: int | None = None) -> torch.Tensor:
        """Generated ids `[x_0, D, x_1, D, ...]` (B, n) -> bins (B, n / (C + 1), C).

        A continuation starts right after the context's final delimiter, so every `C + 1` group is one step
        whose last slot is the delimiter's: it is dropped by position, whatever the model put there.
        """
        group = self.resolve_num_channels(num_channels) + 1
        if ids.shape[1] % group:
            raise ValueError(f"generated length {ids.shape[1]} is not a whole number of {group}-token steps")
        return ids.reshape(ids.shape[0], -1, group)[..., : group - 1]

    def strip_forecast_steps(self, seq, tokens_per_step: int | None = None):
        """Like `strip_forecast`, shaped per step: (B, steps, C)."""
        group = self._group(tokens_per_step)
        flat = self.strip_forecast(seq, group)
        return flat.reshape(flat.shape[0], -1, group - 1)
