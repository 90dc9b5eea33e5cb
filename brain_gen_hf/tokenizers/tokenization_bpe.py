"""BPE tokenizer over the text form of mu-law signals.

signal -> mu-law bins -> one character per bin (frequency-ranked lookup) -> words (see
`bpe_text.py`) -> a byte-pair encoding trained with `tokenizers`' `BpeTrainer`.

Words are marked with the Metaspace pre-tokenizer, so `decode` gives back the exact text and BPE
merges never cross a word. The bin -> character lookup is part of the tokenizer: it is stored in
`tokenizer_config.json` (`char_lookup_codepoints`) and as `char_lookup_codepoints.json` (the
reference's file) and restored by `from_pretrained`. Decoding writes no files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import ClassVar

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import BatchEncoding, TokenizersBackend

from .bpe_text import (
    METASPACE,
    CharToBin,
    bins_to_text,
    build_char_lookup,
    check_char_lookup,
    text_to_bins,
)
from .loading import NamedFileErrorsMixin
from .mulaw import mulaw_decode
from .signal_utils import check_token_ids, signal_to_bin_grid, to_family

CHAR_LOOKUP_FILE = "char_lookup_codepoints.json"
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


def _build_backend(vocab: dict[str, int] | None, merges: list | None) -> Tokenizer:
    backend = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token=UNK_TOKEN, fuse_unk=False, dropout=None))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    return backend


def _character_vocab(lookup: list[int]) -> dict[str, int]:
    """Untrained vocabulary: the special tokens, the word marker and one token per lookup character."""
    symbols = [PAD_TOKEN, UNK_TOKEN, METASPACE] + sorted({chr(cp) for cp in lookup})
    return {symbol: index for index, symbol in enumerate(symbols)}


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class BPETokenizer(NamedFileErrorsMixin, TokenizersBackend):
    """Byte-pair encoding of amplitude characters; create one with `train_bpe_tokenizer`.

    Args:
        vocab, merges: the BPE model (filled in from tokenizer.json by `from_pretrained`).
        char_lookup_codepoints (`list[int]`): code point of the character of every bin (mu + 1).
        char_lookup_file (`str`, *optional*): path of a `char_lookup_codepoints.json`, used when
            `char_lookup_codepoints` is not given.
        num_channels (`int`, *optional*): channels per time step (needed to decode).
        group_size (`int`, defaults to 1): time steps per word group (see `bpe_text.py`).
        mu (`int`, defaults to 255): mu-law parameter.
    """

    model = BPE
    requires_tokenizer_file = True
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]
    vocab_files_names: ClassVar[dict[str, str]] = {
        **TokenizersBackend.vocab_files_names,
        "char_lookup_file": CHAR_LOOKUP_FILE,
    }

    def __init__(
        self,
        vocab: dict[str, int] | None = None,
        merges: list | None = None,
        char_lookup_codepoints: list[int] | None = None,
        char_lookup_file: str | None = None,
        num_channels: int | None = None,
        group_size: int = 1,
        mu: int = 255,
        pad_token: str = PAD_TOKEN,
        unk_token: str = UNK_TOKEN,
        **kwargs,
    ):
        mu = _positive_int("mu", mu)
        group_size = _positive_int("group_size", group_size)
        if num_channels is not None:
            num_channels = _positive_int("num_channels", num_channels)
        file_lookup = None
        if char_lookup_file is not None and os.path.isfile(char_lookup_file):
            with open(char_lookup_file, encoding="utf-8") as handle:
                file_lookup = json.load(handle)
        if char_lookup_codepoints is None:
            char_lookup_codepoints = file_lookup
        elif file_lookup is not None and [int(cp) for cp in file_lookup] != [int(cp) for cp in char_lookup_codepoints]:
            raise ValueError(f"{CHAR_LOOKUP_FILE} and tokenizer_config.json hold different character lookups.")
        if char_lookup_codepoints is None:
            raise ValueError(
                "BPETokenizer needs its bin -> character lookup (char_lookup_codepoints); "
                "create one with train_bpe_tokenizer(...) or load a saved folder."
            )
        self.char_lookup_codepoints = check_char_lookup(char_lookup_codepoints, mu + 1)
        self.num_channels = num_channels
        self.group_size = group_size
        self.mu = mu
        self._lookup_array = np.asarray(self.char_lookup_codepoints, dtype=np.int64)
        self._char_to_bin = CharToBin(self.char_lookup_codepoints)
        if vocab is None:
            vocab, merges = _character_vocab(self.char_lookup_codepoints), []
        self._tokenizer = _build_backend(dict(vocab), [tuple(merge) for merge in merges or []])
        super().__init__(
            char_lookup_codepoints=self.char_lookup_codepoints,
            num_channels=num_channels,
            group_size=group_size,
            mu=mu,
            pad_token=pad_token,
            unk_token=unk_token,
            **kwargs,
        )

    # ---------------------------------------------------------------- saving

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        file_names = super()._save_pretrained(save_directory, file_names, legacy_format, filename_prefix)
        lookup_file = os.path.join(
            str(save_directory), (filename_prefix + "-" if filename_prefix else "") + CHAR_LOOKUP_FILE
        )
        with open(lookup_file, "w", encoding="utf-8") as handle:
            json.dump(self.char_lookup_codepoints, handle)
        return file_names + (lookup_file,)

    # ---------------------------------------------------------------- signal <-> text

    def resolve_num_channels(self, num_channels: int | None = None) -> int:
        channels = num_channels if num_channels is not None else self.num_channels
        if channels is None:
            raise ValueError(
                "BPETokenizer does not know the number of channels: pass num_channels=... or set "
                "`num_channels` when creating the tokenizer (it is saved in tokenizer_config.json)."
            )
        return _positive_int("num_channels", channels)

    def _signal_bins(self, x) -> tuple[np.ndarray, bool]:
        """Signal/bins/grid -> (int64 bins (B, C, T) numpy, was_torch), channel count checked."""
        grid, was_torch = signal_to_bin_grid(x, self.mu)
        batch, steps = grid.shape[:2]
        bins = grid.reshape(batch, steps, -1).transpose(1, 2).cpu().numpy()
        if self.num_channels is not None and bins.shape[1] != self.num_channels:
            raise ValueError(
                f"The signal has {bins.shape[1]} channels but this tokenizer is configured for "
                f"num_channels={self.num_channels}."
            )
        return bins, was_torch

    def signal_to_text(self, x) -> list[str]:
        """The text of every example of a signal (B, C, T) / (C, T) or bins / bin grid."""
        bins, _ = self._signal_bins(x)
        return [bins_to_text(example, self._lookup_array, self.group_size) for example in bins]

    def text_to_bins(self, text: str, num_channels: int | None = None, strict: bool = True) -> np.ndarray:
        """Text -> (C, T) int64 bins (see `bpe_text.text_to_bins`)."""
        return text_to_bins(text, self._char_to_bin, self.resolve_num_channels(num_channels), self.group_size, strict)

    # ---------------------------------------------------------------- signal API

    def encode_signal(self, x) -> BatchEncoding:
        """Tokenize a signal (B, C, T) / (C, T) (float, or integer bins) or a bin grid (B, T, C, W).

        Returns:
            `BatchEncoding` with `input_ids` and `attention_mask` of shape (B, L), right-padded
            with the pad token (BPE gives every example its own length); torch tensors for torch
            input, numpy arrays otherwise.
        """
        device = x.device if isinstance(x, torch.Tensor) else None
        bins, was_torch = self._signal_bins(x)
        texts = [bins_to_text(example, self._lookup_array, self.group_size) for example in bins]
        rows = [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]
        length = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for index, row in enumerate(rows):
            input_ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[index, : len(row)] = 1
        if device is not None:
            input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        return BatchEncoding(
            {"input_ids": to_family(input_ids, was_torch), "attention_mask": to_family(attention_mask, was_torch)}
        )

    def _decode_rows(self, ids, num_channels: int | None, strict: bool) -> tuple[list[np.ndarray], bool]:
        tensor, was_torch = check_token_ids(ids, len(self))
        channels = self.resolve_num_channels(num_channels)
        texts = self._tokenizer.decode_batch(tensor.tolist(), skip_special_tokens=True)
        return [text_to_bins(text, self._char_to_bin, channels, self.group_size, strict) for text in texts], was_torch

    @staticmethod
    def _to_input_family(array: np.ndarray, ids, was_torch: bool):
        """A numpy result back in the family (and on the device) of the ids it came from."""
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if was_torch:
            return tensor.to(ids.device)
        return tensor.numpy()

    def decode_signal(self, ids, num_channels: int | None = None):
        """Token ids (B, L) or (L,) (padding allowed) -> float32 signal (B, C, T).

        Raises ValueError when a row does not decode to whole time steps or rows decode to
        different lengths (decode such rows one by one).
        """
        rows, was_torch = self._decode_rows(ids, num_channels, strict=True)
        lengths = {row.shape[1] for row in rows}
        if len(lengths) != 1:
            raise ValueError(
                f"The rows decode to different numbers of time steps {sorted(lengths)}; decode them one by one."
            )
        if 0 in lengths:
            raise ValueError("The token ids decode to no complete time step.")
        return self._to_input_family(mulaw_decode(np.stack(rows)), ids, was_torch)

    # ---------------------------------------------------------------- forecasting

    def tokens_per_step(self, ids=None, num_channels: int | None = None) -> int:
        """Tokens per time step: measured on `ids` (non-padding tokens / decoded steps, rounded up,
        max over rows) when given, else the channel count (the reference's fallback)."""
        channels = self.resolve_num_channels(num_channels)
        if ids is None:
            return channels
        tensor, _ = check_token_ids(ids, len(self))
        rows, _ = self._decode_rows(tensor, channels, strict=False)
        measured = [
            math.ceil(int((row_ids != self.pad_token_id).sum()) / bins.shape[1])
            for row_ids, bins in zip(tensor, rows)
            if bins.shape[1]
        ]
        return max(measured) if measured else channels

    def strip_forecast(self, seq, tokens_per_step: int | None = None):
        """Generated ids (B, n) -> bins (B, T, C); partial last steps dropped, rows cut to the shortest.

        `tokens_per_step` is accepted for interface compatibility and not needed.
        """
        rows, was_torch = self._decode_rows(seq, None, strict=False)
        steps = min(row.shape[1] for row in rows)
        stacked = np.stack([row[:, :steps] for row in rows]).transpose(0, 2, 1)
        return self._to_input_family(stacked, seq, was_torch)

    def forecast_tokens_per_step(self, encoded=None, raw_input=None, reduced_shape=None) -> int:
        """The reference FlatGPT hook: measured on the encoded context (the reference's intent)."""
        channels = self.num_channels
        if channels is None and reduced_shape is not None:
            channels = int(math.prod(reduced_shape[1:]))
        return self.tokens_per_step(encoded, channels)

    def forecast_strip_tokens(self, seq, tokens_per_step: int | None = None):
        return self.strip_forecast(seq, tokens_per_step)

    # ---------------------------------------------------------------- training

    @classmethod
    def train_from_signals(cls, signals, vocab_size: int, **kwargs) -> BPETokenizer:
        """Alias of `train_bpe_tokenizer`."""
        return train_bpe_tokenizer(signals, vocab_size, **kwargs)


def _iter_signals(signals) -> Iterable:
    if isinstance(signals, (torch.Tensor, np.ndarray)):
        return [signals]
    return signals


def train_bpe_tokenizer(
    signals,
    vocab_size: int,
    group_size: int = 1,
    num_channels: int | None = None,
    mu: int = 255,
    min_frequency: int = 2,
    char_ranking: list[int] | None = None,
    max_token_length: int | None = None,
    show_progress: bool = False,
) -> BPETokenizer:
    """Train a `BPETokenizer` on signals.

    Args:
        signals: one signal (B, C, T) / (C, T) (float, or integer bins) or bin grid (B, T, C, W),
            or an iterable of them; all with the same channel count.
        vocab_size: final vocabulary size, including the mu + 1 characters, the word marker and
            the two special tokens.
        group_size: time steps per word group (1 = one word per time step).
        num_channels: expected channel count (default: taken from the data).
        mu: mu-law parameter for float signals.
        min_frequency: minimum pair count for a merge.
        char_ranking: code points handed to bins by decreasing frequency (default: frequent
            English letters first, see `bpe_text.default_char_ranking`).
        max_token_length: longest merged token, in characters.
    """
    mu = _positive_int("mu", mu)
    group_size = _positive_int("group_size", group_size)
    minimum = mu + 1 + 3
    if _positive_int("vocab_size", vocab_size) < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (mu + 1 characters, word marker, [PAD], [UNK]).")

    probe = BPETokenizer(char_lookup_codepoints=build_char_lookup(np.zeros(mu + 1), char_ranking), mu=mu)
    examples, counts = [], np.zeros(mu + 1, dtype=np.int64)
    for signal in _iter_signals(signals):
        bins, _ = probe._signal_bins(signal)
        if num_channels is None:
            num_channels = bins.shape[1]
        elif bins.shape[1] != num_channels:
            raise ValueError(f"All training signals need {num_channels} channels; got one with {bins.shape[1]}.")
        counts += np.bincount(bins.ravel(), minlength=mu + 1)
        examples.append(bins)
    if not examples:
        raise ValueError("train_bpe_tokenizer needs at least one signal.")

    lookup = build_char_lookup(counts, char_ranking)
    lookup_array = np.asarray(lookup, dtype=np.int64)
    texts = (bins_to_text(example, lookup_array, group_size) for bins in examples for example in bins)

    backend = _build_backend(None, None)
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD_TOKEN, UNK_TOKEN],
        initial_alphabet=[METASPACE] + [chr(cp) for cp in lookup],
        max_token_length=max_token_length,
        show_progress=show_progress,
    )
    backend.train_from_iterator(texts, trainer)
    model = json.loads(backend.to_str())["model"]
    return BPETokenizer(
        vocab=model["vocab"],
        merges=model["merges"],
        char_lookup_codepoints=lookup,
        num_channels=num_channels,
        group_size=group_size,
        mu=mu,
    )
