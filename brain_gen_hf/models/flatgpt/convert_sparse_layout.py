"""brain-gen's `sparse` and `layout_path` backbone kwargs -> FlatGPT config fields.

Only brain-gen's Qwen video adapters act on them, and `sparse` only when `block_size` is 1 (the block-causal mask
takes precedence); its other backbones store them as unused config attributes. The converted config does what the
reference ran, and says so when a kwarg had no effect there.
"""

from __future__ import annotations

import warnings

from .sensor_layout_positions import load_sensor_positions
from .sparse_attention import DEFAULT_SPARSE_ATTENTION

# brain-gen adapters that read `sparse` / `layout_path`
_VIDEO_ADAPTERS = ("Qwen2_5_Video", "Qwen3_Video", "Qwen2_5_VideoText")


def attention_layout_from_reference(trf_class: str, trf_args: dict) -> dict:
    """`{"sparse_attention": ..., "rope_layout_positions": ...}` for the FlatGPT config (only the keys that apply).

    The layout file is read when converting (`.npy` without unpickling, or JSON); the positions are stored in the
    config, so the converted model needs no file.
    """
    fields = {}
    sparse, layout_path = trf_args.get("sparse", False), trf_args.get("layout_path")
    block_size = int(trf_args.get("block_size", 1))
    if sparse:
        if trf_class not in _VIDEO_ADAPTERS or block_size > 1:
            reason = "its block-causal mask (block_size > 1)" if block_size > 1 else f"backbone {trf_class!r}"
            warnings.warn(f"reference `sparse: true` had no effect with {reason}; converted as dense", stacklevel=2)
        else:
            # brain-gen's mask builder always runs with its defaults; the configs never override them.
            fields["sparse_attention"] = dict(DEFAULT_SPARSE_ATTENTION)
    if layout_path is not None:
        if trf_class not in _VIDEO_ADAPTERS:
            warnings.warn(
                f"reference `layout_path` had no effect with backbone {trf_class!r}; converted without it",
                stacklevel=2,
            )
        else:
            fields["rope_layout_positions"] = load_sensor_positions(layout_path)
    return fields
