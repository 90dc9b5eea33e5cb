"""Reference (brain-gen) `BrainOmniCausalForecast` checkpoints -> brain_gen_hf."""

from __future__ import annotations

from ..brainomni.configuration_brainomni import BrainOmniCausalTokenizerConfig
from ..brainomni.convert_brainomni import tokenizer_kwargs_from_reference
from .configuration_brainomni_forecast import BrainOmniCausalForecastConfig

# A Lightning checkpoint path replaces the tokenizer weights in the reference; here the converted state
# dict holds them under `tokenizer.*`.
DROPPED = ("tokenizer_path",)


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> BrainOmniCausalForecastConfig:
    kwargs = {k: v for k, v in kwargs.items() if k not in DROPPED}
    tokenizer = BrainOmniCausalTokenizerConfig(**tokenizer_kwargs_from_reference(kwargs.pop("tokenizer_kwargs")))
    # The reference ignores `num_quantizers_used` and predicts every level: its head weights have Q * K rows.
    kwargs["num_quantizers_used"] = tokenizer.num_quantizers
    return BrainOmniCausalForecastConfig(tokenizer_config=tokenizer, **{**kwargs, **overrides})


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    # The reference stores its RoPE tables (`rope_embedding_layer.freqs/rotate`); they are recomputed here.
    return {k: v for k, v in state.items() if ".rope_embedding_layer." not in k}
