"""Signal tokenizers built on HF `tokenizers`, mu-law quantisation and token sampling.

Names are resolved lazily so importing this package stays free of torch and transformers.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "mulaw_encode": "mulaw",
    "mulaw_decode": "mulaw",
    "sample": "sampling",
    "FlatSignalTokenizer": "tokenization_flat_utils",
    "AmplitudeTokenizer": "tokenization_amplitude",
    "AmplitudeMixTokenizer": "tokenization_amplitude",
    "DelimitedTokenizer": "tokenization_delimited",
    "BPETokenizer": "tokenization_bpe",
    "train_bpe_tokenizer": "tokenization_bpe",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
