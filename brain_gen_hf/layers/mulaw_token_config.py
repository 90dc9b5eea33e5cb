"""Config checks of the mu-law token models (WaveNet, Wavenet3D, TASA3D): signal scale and sensor pixels.

Kept free of model code so that the configuration files stay light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..configuration_utils import is_real_number, require


def check_mulaw_max_value(value) -> None:
    require(
        is_real_number(value) and math.isfinite(value) and value > 0,
        f"`mulaw_max_value` must be a positive number (the signal amplitude at the edge of the mu-law range), "
        f"got {value!r}",
    )


def check_sensor_pixels(row_idx, col_idx, image_hw: Sequence[int]) -> tuple[list[int], list[int]]:
    """Validated `(row_idx, col_idx)` as int lists: both given, one entry per channel, inside the image."""
    require(
        row_idx is not None and col_idx is not None,
        "`row_idx` and `col_idx` go together (the image row and column of every channel): pass both",
    )
    rows, cols = _int_list("row_idx", row_idx), _int_list("col_idx", col_idx)
    require(
        len(rows) == len(cols), f"`row_idx` ({len(rows)}) and `col_idx` ({len(cols)}) need one entry per channel each"
    )
    for name, indices, side in (("row_idx", rows, image_hw[0]), ("col_idx", cols, image_hw[1])):
        bad = [i for i in indices if not 0 <= i < side]
        require(
            not bad, f"`{name}` holds {bad[:5]} outside the token image ({image_hw[0]}x{image_hw[1]}: 0..{side - 1})"
        )
    return rows, cols


def check_fill_token(fill_token, quant_levels: int) -> None:
    if fill_token is None:
        return
    require(
        isinstance(fill_token, int) and not isinstance(fill_token, bool) and 0 <= fill_token < quant_levels,
        f"`fill_token` must be a token id in [0, {quant_levels - 1}] (or None: the bin of a zero signal), got "
        f"{fill_token!r}",
    )


def _int_list(name: str, value) -> list[int]:
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays (float or nested entries are refused below)
        value = value.tolist()
    require(
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        f"`{name}` must be a non-empty list of integer pixel indices (one per channel), got {value!r:.80}",
    )
    return list(value)
