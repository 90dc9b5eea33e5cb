"""The string form of flat token ids: token id k <-> one private-use Unicode character.

Token k is the character U+E000 + k, so a flattened token sequence is a plain Python string, a
`tokenizers` pre-tokenizer can split it per character, and conversion in either direction is one
vectorised numpy pass through UTF-32 (no Python loop per symbol).
"""

from __future__ import annotations

import numpy as np

SYMBOL_BASE = 0xE000
MAX_SYMBOLS = 0xF8FF - SYMBOL_BASE + 1  # size of the BMP private-use area (6400)


def symbol_for_id(token_id: int) -> str:
    return chr(SYMBOL_BASE + token_id)


def symbol_vocab(num_symbols: int) -> dict[str, int]:
    """`{character: id}` for ids `0 .. num_symbols - 1`."""
    if not 0 < num_symbols <= MAX_SYMBOLS:
        raise ValueError(f"num_symbols must be in [1, {MAX_SYMBOLS}], got {num_symbols}.")
    return {symbol_for_id(i): i for i in range(num_symbols)}


def codepoints_to_text(codepoints: np.ndarray) -> str:
    """Join an integer array of Unicode code points into one string."""
    return np.ascontiguousarray(codepoints, dtype="<u4").tobytes().decode("utf-32-le")


def text_to_codepoints(text: str) -> np.ndarray:
    """The int64 code points of `text`."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)


def ids_to_text(ids) -> str:
    """One row of token ids (1-D) -> its string form."""
    return codepoints_to_text(np.asarray(ids, dtype=np.int64) + SYMBOL_BASE)


def text_to_ids(text: str, num_symbols: int) -> np.ndarray:
    """Inverse of `ids_to_text`; raises ValueError on a character outside the symbol range."""
    ids = text_to_codepoints(text) - SYMBOL_BASE
    if ids.size and (ids.min() < 0 or ids.max() >= num_symbols):
        bad = next(ch for ch, i in zip(text, ids) if not 0 <= i < num_symbols)
        raise ValueError(f"Character {bad!r} (U+{ord(bad):04X}) is not one of the {num_symbols} token symbols.")
    return ids
