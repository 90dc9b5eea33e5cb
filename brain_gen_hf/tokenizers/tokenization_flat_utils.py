"""Base class of the flat signal tokenizers: mu-law amplitude bins as the tokens of a HF tokenizer.

The HF side is an ordinary `tokenizers.Tokenizer`: a WordLevel model over one private-use
character per token (see `symbols.py`), a pre-tokenizer that isolates every character and a
`Fuse` decoder. So `tokenizer(text)["input_ids"]`, `tokenizer.decode(ids)`, `save_pretrained`,
`push_to_hub` and `AutoTokenizer.from_pretrained` all work as for any text tokenizer, where the
text is the string form of a flattened signal (`signal_to_text`).

The signal side (`encode_signal`, `decode_signal`, `flatten`, `unflatten`, `tokens_per_step`,
`strip_forecast`) works on arrays directly and never goes through strings, which is what makes
bulk tokenisation fast; `encode_signal(..., fast=False)` runs the string path instead and gives
identical ids.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import ClassVar

import torch
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import TokenizersBackend

from .loading import NamedFileErrorsMixin
from .signal_utils import (
    as_tensor,
    bins_to_signal,
    check_bin_range,
    check_token_ids,
    signal_to_bin_grid,
    to_family,
)
from .symbols import MAX_SYMBOLS, ids_to_text, symbol_vocab

# Keyword arguments FlatGPT injects into every tokenizer constructor; the amplitude
# tokenizers have no use for them.
_FLATGPT_INJECTED_KWARGS = ("temporal_reduction", "spatial_reduction", "hidden_size")


def build_symbol_backend(vocab: dict[str, int]) -> Tokenizer:
    """A `tokenizers.Tokenizer` mapping each symbol character to its id (and back, unspaced)."""
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))  # no [UNK] in vocab: unknown chars raise
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return backend


class FlatSignalTokenizer(NamedFileErrorsMixin, TokenizersBackend):
    """Shared machinery; subclasses define the flattening order (`_flatten_grid`, `_unflatten_ids`).

    Args:
        mu (`int`, defaults to 255): mu-law parameter; the amplitude vocabulary is `mu + 1` bins.
        num_channels (`int`, *optional*): channels per time step (C, or C*W for a (T, C, W) grid).
            Needed to decode and to strip forecasts; saved in `tokenizer_config.json`.
    """

    model_input_names: ClassVar[list[str]] = ["input_ids"]
    model = WordLevel  # tells `from_pretrained` how to read the vocabulary of tokenizer.json

    def __init__(self, vocab: dict[str, int] | None = None, mu: int = 255, num_channels: int | None = None, **kwargs):
        if isinstance(mu, bool) or not isinstance(mu, int) or mu < 1:
            raise ValueError(f"mu must be a positive integer, got {mu!r}.")
        if num_channels is not None and (
            isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1
        ):
            raise ValueError(f"num_channels must be a positive integer or None, got {num_channels!r}.")
        self.mu = mu
        self.num_channels = num_channels
        expected_vocab = symbol_vocab(self._num_symbols())
        self._check_vocab(vocab, expected_vocab)
        # `from_pretrained` may hand over tokenizer.json, which then replaces this backend.
        self._tokenizer = build_symbol_backend(expected_vocab)
        super().__init__(mu=mu, num_channels=num_channels, **kwargs)
        self._check_vocab(self._tokenizer.get_vocab(with_added_tokens=False), expected_vocab)

    def _check_vocab(self, vocab: dict[str, int] | None, expected_vocab: dict[str, int]) -> None:
        if vocab is not None and dict(vocab) != expected_vocab:
            raise ValueError(
                f"The saved vocabulary ({len(vocab)} entries) does not match {type(self).__name__} with "
                f"mu={self.mu} ({len(expected_vocab)} symbols): tokenizer.json and tokenizer_config.json disagree."
            )

    # ---------------------------------------------------------------- subclass hooks

    def _num_symbols(self) -> int:
        """Vocabulary size: the `mu + 1` amplitude bins (subclasses may add symbols)."""
        if self.mu + 1 > MAX_SYMBOLS:
            raise ValueError(f"mu={self.mu} needs more than the {MAX_SYMBOLS} available token symbols.")
        return self.mu + 1

    def _flatten_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """int64 bin grid (B, T, C, W) -> token ids."""
        raise NotImplementedError

    def _unflatten_ids(self, ids: torch.Tensor, num_channels: int) -> torch.Tensor:
        """Validated int64 token ids -> bins (B, T, C)."""
        raise NotImplementedError

    def tokens_per_step(self, num_channels: int | None = None) -> int:
        """Tokens generated per raw time step (for a rollout of `n` steps generate `n * tokens_per_step`)."""
        raise NotImplementedError

    def strip_forecast(self, seq, tokens_per_step: int | None = None):
        """Generated token ids -> the reference's forecast layout for this tokenizer."""
        raise NotImplementedError

    def continuation_to_bins(self, ids: torch.Tensor, num_channels: int | None = None) -> torch.Tensor:
        """Token ids generated right after an encoded context -> bins `(B, steps, C)`, on the ids' device.

        The tensor fast path a language model decodes its rollout with: whole time steps only (a partial step
        raises), regrouped by position; `num_channels` comes from the argument or the tokenizer's config, never
        from an earlier call.
        """
        raise NotImplementedError

    # ---------------------------------------------------------------- construction helpers

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`transformers`' loading, plus: a FlatGPT LM folder saved without tokenizer files gives the tokenizer its
        config describes (the class, mu and channel count it was trained with), not this class's defaults."""
        lm_config = _amplitude_lm_config(pretrained_model_name_or_path, kwargs.get("subfolder") or "")
        if lm_config is not None:
            from ..models.flatgpt.tokenization_flatgpt import tokenizer_from_lm_config

            return tokenizer_from_lm_config(lm_config)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_model_kwargs(cls, **model_kwargs):
        """Build from the keyword arguments the reference FlatGPT passes to its `tok_class`.

        `input_shape` (T, C, W) sets `num_channels = C * W`; `vocab_size` is checked against the
        tokenizer's vocabulary; `temporal_reduction`, `spatial_reduction` and `hidden_size` are
        accepted and ignored (the flat tokenizers do not reduce anything).
        """
        kwargs = dict(model_kwargs)
        for name in _FLATGPT_INJECTED_KWARGS:
            kwargs.pop(name, None)
        input_shape = kwargs.pop("input_shape", None)
        if input_shape is not None:
            if len(input_shape) < 2:
                raise ValueError(f"input_shape must be (T, C, ...), got {input_shape!r}.")
            kwargs.setdefault("num_channels", int(math.prod(input_shape[1:])))
        vocab_size = kwargs.pop("vocab_size", None)
        tokenizer = cls(**kwargs)
        if vocab_size is not None and vocab_size != len(tokenizer):
            raise ValueError(f"vocab_size={vocab_size} does not match {cls.__name__}'s {len(tokenizer)} tokens.")
        return tokenizer

    # ---------------------------------------------------------------- channel bookkeeping

    def resolve_num_channels(self, num_channels: int | None = None) -> int:
        channels = num_channels if num_channels is not None else self.num_channels
        if channels is None:
            raise ValueError(
                f"{type(self).__name__} does not know the number of channels: pass num_channels=... or set "
                "`num_channels` when creating the tokenizer (it is saved in tokenizer_config.json)."
            )
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"num_channels must be a positive integer, got {channels!r}.")
        return channels

    def _check_grid_channels(self, grid: torch.Tensor) -> None:
        per_step = grid.shape[2] * grid.shape[3]
        if self.num_channels is not None and per_step != self.num_channels:
            raise ValueError(
                f"The signal has {per_step} channels per time step but this tokenizer is configured for "
                f"num_channels={self.num_channels}."
            )

    # ---------------------------------------------------------------- array API

    def flatten(self, bins):
        """Bin grid (B, T, C, W) or (B, T, C) -> token ids, in the reference's order (no mu-law)."""
        tensor, was_torch = as_tensor(bins)
        if torch.is_floating_point(tensor) or tensor.dtype == torch.bool or torch.is_complex(tensor):
            raise ValueError(f"flatten expects integer bins, got dtype {tensor.dtype}; use encode_signal for floats.")
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(-1)
        if tensor.ndim != 4 or tensor.numel() == 0:
            raise ValueError(
                f"flatten expects a non-empty bin grid (B, T, C, W) or (B, T, C), got shape {tuple(tensor.shape)}."
            )
        check_bin_range(tensor, self.mu)
        self._check_grid_channels(tensor)
        return to_family(self._flatten_grid(tensor.long()), was_torch)

    def unflatten(self, ids, num_channels: int | None = None):
        """Token ids -> bins (B, T, C); the exact inverse of `flatten` (with W folded into C)."""
        tensor, was_torch = check_token_ids(ids, len(self))
        return to_family(self._unflatten_ids(tensor, self.resolve_num_channels(num_channels)), was_torch)

    def encode_signal(self, x, fast: bool = True):
        """Tokenize a signal.

        Args:
            x: float signal (B, C, T) or (C, T) (mu-law quantised here), integer bins in the same
                layout, or an integer bin grid (B, T, C, W) as the reference datasets produce.
            fast: `True` flattens with array operations; `False` tokenizes the string form with
                the HF `tokenizers` backend (same ids, much slower; kept to prove the equivalence).

        Returns:
            int64 token ids (torch for torch input, numpy otherwise), laid out as `flatten` does.
        """
        grid, was_torch = signal_to_bin_grid(x, self.mu)
        self._check_grid_channels(grid)
        ids = self._flatten_grid(grid)
        if not fast:
            texts = [ids_to_text(row) for row in ids.cpu().numpy()]
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
            ids = torch.tensor([encoding.ids for encoding in encodings], dtype=torch.long, device=ids.device)
        return to_family(ids, was_torch)

    def signal_to_text(self, x) -> list[str]:
        """The string form of `encode_signal(x)`: one string per row of token ids."""
        grid, _ = signal_to_bin_grid(x, self.mu)
        self._check_grid_channels(grid)
        return [ids_to_text(row) for row in self._flatten_grid(grid).cpu().numpy()]

    def decode_signal(self, ids, num_channels: int | None = None):
        """Token ids -> float32 signal (B, C, T) in [-1, 1] (inverse mu-law of the bins)."""
        tensor, was_torch = check_token_ids(ids, len(self))
        bins = self._unflatten_ids(tensor, self.resolve_num_channels(num_channels))
        return to_family(bins_to_signal(bins, self.mu), was_torch)

    # ---------------------------------------------------------------- reference-compatible names

    def forecast_tokens_per_step(self, encoded=None, raw_input=None, reduced_shape=None) -> int:
        """The reference FlatGPT hook: tokens per step from the (T', H', W') token grid if given."""
        if reduced_shape is not None:
            return self.tokens_per_step(int(math.prod(reduced_shape[1:])))
        return self.tokens_per_step()

    def forecast_strip_tokens(self, seq, tokens_per_step: int | None = None):
        """The reference FlatGPT hook; one argument is enough (the reference's Delimited needed two)."""
        return self.strip_forecast(seq, tokens_per_step)


def _amplitude_lm_config(name_or_path, subfolder: str):
    """The config of an amplitude FlatGPT LM saved in a local folder without tokenizer files, else None."""
    folder = Path(name_or_path, subfolder)
    config_file = folder / "config.json"
    if not folder.is_dir() or (folder / "tokenizer_config.json").is_file() or not config_file.is_file():
        return None
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None  # not ours to judge: transformers' own loading names the problem
    from ..models.flatgpt.tokenization_flatgpt import AMPLITUDE_LM_TYPES

    if model_type not in AMPLITUDE_LM_TYPES:
        return None
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)
