"""What `AutoTokenizer.from_pretrained` gives for an RVQ FlatGPT folder: a clear error naming the real tokenizer.

Kept apart from the modeling modules so registering it with AutoTokenizer imports nothing else.
"""

from __future__ import annotations

import os


class NestedBrainTokenizer:
    """What `AutoTokenizer` finds for an RVQ FlatGPT folder: nothing to load, and an error that says where the
    tokenizer is. Those LMs tokenize with the brain tokenizer model they hold (a neural codec with codebooks, not
    a text tokenizer), saved inside the LM's own weights."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        raise ValueError(
            f"{pretrained_model_name_or_path} holds an RVQ FlatGPT LM, whose tokenizer is the brain "
            "tokenizer model inside it, not a `transformers` tokenizer: load the LM with "
            "`AutoModelForCausalLM.from_pretrained(...)` and use `model.encode(signal)` / "
            "`model.decode(codes)` (or `model.tokenizer`)"
        )

    def __init__(self, *args, **kwargs) -> None:
        self.from_pretrained(type(self).__name__)
