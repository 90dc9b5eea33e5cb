"""Text form of a quantised signal for the BPE tokenizer (the reference's stage-3 text format).

Every amplitude bin k is written as one character, `lookup[k]`; the lookup is ranked by bin
frequency in the training data (the most frequent bin gets the first character of the ranking).
Layout for a (C, T) bin array and `group_size` g (whitespace separates words):

* g = 1: one word per time step holding its C channel characters (reference `TextProcessor`).
* g > 1: time is cut into groups of g steps; per group, one word per channel holding that
  channel's g characters, channels in order (reference `GroupedTextProcessor` / `BPEDataset`).
  A final group shorter than g is written the same way with shorter words.

Decoding ignores whitespace like the reference: the characters are concatenated and read back
in blocks of C*g (channel c = characters c*g .. c*g+g-1 of a block). Characters outside the
lookup become bin `len(lookup) // 2 - 1`, as in the reference.
"""

from __future__ import annotations

import numpy as np

from .symbols import codepoints_to_text, text_to_codepoints

METASPACE = "\u2581"  # the BPE pre-tokenizer's word marker; never a lookup character

# Frequent English letters first (what the reference ranked with `wordfreq`), then digits and
# Latin/Greek/Cyrillic letters: single code points that are not whitespace and survive NFKC.
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_EXTRA_RANGES = ((0x00C0, 0x0250), (0x0391, 0x03CA), (0x0410, 0x0450))


def default_char_ranking() -> list[int]:
    """Code points in the order they are handed to bins, most frequent bin first."""
    ranking = [ord(c) for c in _LETTERS + _LETTERS.upper() + "0123456789"]
    for start, stop in _EXTRA_RANGES:
        ranking.extend(cp for cp in range(start, stop) if chr(cp).isalpha())
    return ranking


def check_char_lookup(codepoints, num_bins: int) -> list[int]:
    """Validate a bin -> code point lookup; returns it as a list of ints."""
    lookup = [int(cp) for cp in codepoints]
    if len(lookup) != num_bins:
        raise ValueError(f"The character lookup has {len(lookup)} entries; expected one per bin ({num_bins}).")
    for cp in lookup:
        if not 0 < cp < 0x110000 or chr(cp).isspace() or chr(cp) == METASPACE:
            raise ValueError(f"Code point {cp} cannot be a lookup character (whitespace, {METASPACE!r} or invalid).")
    return lookup


def build_char_lookup(counts, char_ranking: list[int] | None = None) -> list[int]:
    """Rank bins by count (ties keep bin order) and give the r-th ranked bin the r-th character."""
    counts = np.asarray(counts)
    ranking = default_char_ranking() if char_ranking is None else [int(cp) for cp in char_ranking]
    if len(ranking) < counts.size:
        raise ValueError(f"The character ranking has {len(ranking)} characters; {counts.size} bins need one each.")
    lookup = [0] * counts.size
    for rank, bin_index in enumerate(np.argsort(-counts, kind="stable")):
        lookup[bin_index] = ranking[rank]
    return check_char_lookup(lookup, counts.size)


def bins_to_text(bins: np.ndarray, lookup: np.ndarray, group_size: int) -> str:
    """(C, T) integer bins -> text in the layout described in the module docstring."""
    chars = lookup[bins]  # (C, T) code points
    channels, steps = chars.shape
    space = ord(" ")
    if group_size == 1:
        words = np.concatenate([chars.T, np.full((steps, 1), space)], axis=1)
        return codepoints_to_text(words.reshape(-1)[:-1])
    whole = steps // group_size
    pieces = []
    if whole:
        groups = chars[:, : whole * group_size].reshape(channels, whole, group_size).transpose(1, 0, 2)
        pieces.append(np.concatenate([groups, np.full((whole, channels, 1), space)], axis=2).reshape(-1))
    if steps % group_size:
        tail = chars[:, whole * group_size :]
        pieces.append(np.concatenate([tail, np.full((channels, 1), space)], axis=1).reshape(-1))
    return codepoints_to_text(np.concatenate(pieces)[:-1])


class CharToBin:
    """Vectorised code point -> bin map (first occurrence wins; unknown -> len // 2 - 1)."""

    def __init__(self, lookup: list[int]):
        lookup_array = np.asarray(lookup, dtype=np.int64)
        order = np.argsort(lookup_array, kind="stable")
        self.codepoints, first = np.unique(lookup_array[order], return_index=True)
        self.bins = order[first]
        self.unknown_bin = len(lookup) // 2 - 1

    def __call__(self, codepoints: np.ndarray) -> np.ndarray:
        position = np.clip(np.searchsorted(self.codepoints, codepoints), 0, len(self.codepoints) - 1)
        known = self.codepoints[position] == codepoints
        return np.where(known, self.bins[position], self.unknown_bin)


def text_to_bins(text: str, char_to_bin: CharToBin, num_channels: int, group_size: int, strict: bool) -> np.ndarray:
    """Text -> (C, T) int64 bins.

    A trailing remainder shorter than one block is kept when it is exactly a short final group
    (C words of equal length, as `bins_to_text` writes one); otherwise it is an incomplete time
    step: `strict=True` raises ValueError, `strict=False` drops it (forecast streams end anywhere).
    """
    words = text.split()
    bins = char_to_bin(text_to_codepoints("".join(words)))
    block = num_channels * group_size
    whole = bins.size // block
    body = bins[: whole * block].reshape(whole, num_channels, group_size).transpose(1, 0, 2)
    body = body.reshape(num_channels, whole * group_size)
    remainder = bins.size - whole * block
    if not remainder:
        return body
    tail_words = words[-num_channels:]
    if (
        group_size > 1
        and remainder % num_channels == 0
        and len(tail_words) == num_channels
        and all(len(word) == remainder // num_channels for word in tail_words)
    ):
        return np.concatenate([body, bins[whole * block :].reshape(num_channels, -1)], axis=1)
    if strict:
        raise ValueError(
            f"The decoded text has {bins.size} characters, which is not a whole number of time steps "
            f"for {num_channels} channels (group_size {group_size}); {remainder} characters are left over."
        )
    return body
