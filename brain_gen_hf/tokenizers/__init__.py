"""Signal tokenizers built on HF `tokenizers` and mu-law quantisation (token sampling: `brain_gen_hf.forecasting`).

Names are resolved lazily so importing this package stays free of torch and transformers.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "mulaw_encode": "mulaw",
    "mulaw_decode": "mulaw",
    "FlatSignalTokenizer": "tokenization_flat_utils",
    "AmplitudeTokenizer": "tokenization_amplitude",
    "AmplitudeMixTokenizer": "tokenization_amplitude",
    "DelimitedTokenizer": "tokenization_delimited",
    "BPETokenizer": "tokenization_bpe",
    "train_bpe_tokenizer": "tokenization_bpe",
    "load_tokenizer": "loading",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
