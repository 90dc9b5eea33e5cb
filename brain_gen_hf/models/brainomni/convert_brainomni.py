"""Reference (brain-gen) `BrainOmniCausalTokenizer` checkpoints -> brain_gen_hf configs and state dicts."""

from __future__ import annotations

from .configuration_brainomni import BrainOmniCausalTokenizerConfig

# The reference's constructor defaults that differ from ours (a YAML may rely on them).
REFERENCE_DEFAULTS = {
    "lstm_layers": 2,
    "num_quantizers": 4,
    "rotation_trick": True,
    "num_sensors": 68,
    "n_residual_layers": 1,
}
# Stored but unused by the reference (`mask_ratio`) or runtime-only (`compile`).
DROPPED = ("mask_ratio", "compile")
RENAMED = {"forecast_decode_window_chunk": "decode_window_chunk", "forecast_decode_max_tokens": "decode_max_tokens"}


def tokenizer_kwargs_from_reference(kwargs: dict) -> dict:
    kwargs = {RENAMED.get(k, k): v for k, v in kwargs.items() if k not in DROPPED}
    for key, value in REFERENCE_DEFAULTS.items():
        kwargs.setdefault(key, value)
    return kwargs


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> BrainOmniCausalTokenizerConfig:
    return BrainOmniCausalTokenizerConfig(**{**tokenizer_kwargs_from_reference(kwargs), **overrides})


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    return dict(state)  # module names were kept
