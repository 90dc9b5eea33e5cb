"""The flat HF tokenizer of an amplitude FlatGPT LM, built from the LM's config.

FlatGPT, FlatGPTEmbeds and FlatGPTMix lay mu-law bins out with the `brain_gen_hf.tokenizers` classes
(`AmplitudeTokenizer`, `AmplitudeMixTokenizer`, `DelimitedTokenizer`): the model encodes and decodes through them,
and `save_pretrained` writes them next to the weights, so `AutoTokenizer.from_pretrained(lm_folder)` gives the
tokenizer the LM was trained with. Everything it needs comes from the LM config: the class
(`tokenizer_config.tokenizer_class`), mu (`vocab_size - 1`; `delimiter_id - 1` for the DelimitedTokenizer) and
the channel count (`input_shape[1] * input_shape[2]`).

The RVQ variants have no flat tokenizer: their tokenizer is the brain tokenizer model inside the LM
(`model.tokenizer`, `model.encode` / `model.decode`).
"""

from __future__ import annotations

import functools

from ...tokenizers.tokenization_amplitude import AmplitudeMixTokenizer, AmplitudeTokenizer
from ...tokenizers.tokenization_delimited import DelimitedTokenizer

# Imported, not looked up by module name: exported remote code bundles only what is imported.
_CLASSES = {cls.__name__: cls for cls in (AmplitudeTokenizer, AmplitudeMixTokenizer, DelimitedTokenizer)}
AMPLITUDE_LM_TYPES = ("flatgpt", "flatgpt_embeds", "flatgpt_mix")


def tokenizer_from_lm_config(config):
    """The flat tokenizer (a `transformers` tokenizer) an amplitude FlatGPT config encodes with; a new object on
    every call, yours to change.

    Raises `ValueError` for another config, naming where that model's tokenizer lives.
    """
    model_type = getattr(config, "model_type", None)
    if model_type not in AMPLITUDE_LM_TYPES:
        if model_type is not None and model_type.startswith("flatgpt"):
            raise ValueError(
                f"a {model_type} LM has no flat tokenizer: its tokenizer is the brain tokenizer model "
                "inside it. Load the LM with `AutoModelForCausalLM.from_pretrained(folder)` and use "
                "`model.encode(signal)` / `model.decode(codes)` (or `model.tokenizer`)"
            )
        raise ValueError(
            f"tokenizer_from_lm_config needs an amplitude FlatGPT config ({', '.join(AMPLITUDE_LM_TYPES)})"
            f", got {type(config).__name__}"
        )
    return _build(config.tokenizer_config.tokenizer_class, config.tokenizer_mu, config.grid_channels)


def layout_tokenizer(config):
    """The same tokenizer, shared per (class, mu, channels): what the model encodes and decodes with internally
    (building one costs ~1 ms, a noticeable share of tokenizing a training batch). Never handed to users."""
    return _shared(config.tokenizer_config.tokenizer_class, config.tokenizer_mu, config.grid_channels)


def _build(name: str, mu: int, channels: int):
    return _CLASSES[name](mu=mu, num_channels=channels)


@functools.lru_cache(maxsize=32)
def _shared(name: str, mu: int, channels: int):
    return _build(name, mu, channels)
