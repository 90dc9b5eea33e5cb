"""What differs between the transformers releases we support (5.17 through 5.24), read off public names.

transformers 5.24 renamed the KV-cache keyword and output field from `past_key_values` to `cache`; earlier
releases pass and read `past_key_values`. Our models accept both keywords and fill the field the installed
release reads, so `generate()` threads the cache through on every supported release.
"""

from __future__ import annotations

from dataclasses import fields

from transformers.modeling_outputs import BaseModelOutputWithPast

# The keyword transformers' decoders take and `generate()` passes, and the output field it reads the cache from.
CACHE_KWARG = "cache" if "cache" in {f.name for f in fields(BaseModelOutputWithPast)} else "past_key_values"


def cache_from_kwargs(cache=None, past_key_values=None):
    """The KV cache a caller passed under either name (`cache` on 5.24+, `past_key_values` before)."""
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("pass the KV cache once, as `cache` (or `past_key_values` on transformers < 5.24), not both")
    return cache if cache is not None else past_key_values


def cache_of(output):
    """The KV cache held by a transformers model output, whichever name the installed release gives it."""
    return getattr(output, CACHE_KWARG, None)
