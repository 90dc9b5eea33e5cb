"""What the token-image families (TASA3D, Wavenet3D, the image classifier) share in training: where each channel
sits on the `(H, W)` grid, and a collator that writes exactly the images the model's config reads.

Like `contract.py`, importing this module costs nothing: collators load inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from .contract import DataInfo


def place_sensors(data: DataInfo, image_hw: Sequence[int], fields: dict) -> dict:
    """`fields` plus `row_idx`/`col_idx`: the given pixels, else the layout's channels placed by `grid_indices`."""
    if fields.get("row_idx") is not None or fields.get("col_idx") is not None:
        return fields
    height, width = image_hw
    if height != width:
        raise ValueError(
            f"the {height}x{width} token image is not square: grid_indices places channels on square images "
            "only, so give `row_idx` and `col_idx` (one pixel per channel) in `model_config`"
        )
    from ..data.collators import grid_indices

    rows, cols = grid_indices(data.layout.pos_2d, height)
    return {**fields, "row_idx": rows.tolist(), "col_idx": cols.tolist()}


def token_image_collator(data: DataInfo, pixel_config, token_config, image_hw: Sequence[int], labels: bool = True):
    """An `ImageCollator` of mu-law token images: pixels from `pixel_config.row_idx/col_idx` (else placed from the
    layout), tokens as `token_config` reads them (mu = quant_levels - 1, its `mulaw_max_value`, zero-signal
    fill)."""
    import torch

    from ..data.collators import ImageCollator
    from ..tokenizers.mulaw import mulaw_encode

    mu = token_config.quant_levels - 1
    zero_bin = int(mulaw_encode(torch.zeros(1), mu=mu)[0])
    fill = getattr(token_config, "fill_token", None)
    if fill is not None and fill != zero_bin:
        raise ValueError(
            f"the model's fill_token is {fill}, but training images hold the bin of a zero signal ({zero_bin}) "
            "at pixels without a sensor; set `fill_token` to None or to that bin"
        )
    rows, cols = getattr(pixel_config, "row_idx", None), getattr(pixel_config, "col_idx", None)
    if rows is not None and len(rows) != len(data.layout.names):
        raise ValueError(
            f"the model places {len(rows)} sensor pixels but the dataset has {len(data.layout.names)} channels; "
            "train on a dataset with the model's layout"
        )
    return ImageCollator(
        data.layout,
        image_size=tuple(image_hw),
        quantize=True,
        mu=mu,
        max_value=token_config.mulaw_max_value,
        labels=labels,
        pixels=None if rows is None else (rows, cols),
    )
