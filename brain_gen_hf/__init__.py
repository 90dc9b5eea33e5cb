"""brain_gen_hf: Hugging Face-native generative models for MEG/EEG.

Importing the package is cheap: it registers every config, model and tokenizer with the
transformers Auto classes lazily (see `registration.py`) and resolves public classes on first
attribute access, so torch and transformers' modeling code load only when a class is used.
"""

from __future__ import annotations

from .lazy import lazy_exports
from .registration import public_names, register_all

__version__ = "0.1.0"

_LAZY = {
    **public_names(),
    "BrainGenConfig": "brain_gen_hf.configuration_utils",
    "BrainGenPreTrainedModel": "brain_gen_hf.modeling_utils",
    "convert_reference_checkpoint": "brain_gen_hf.conversion",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)

register_all()  # last: registering may import submodules, which may read the exports above
