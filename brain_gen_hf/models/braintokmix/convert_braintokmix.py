"""Reference (brain-gen) `BrainOmniCausalTokenizerSEANetChannelMix` checkpoints -> BrainTokMix."""

from __future__ import annotations

from .configuration_braintokmix import BrainTokMixConfig

# The reference's constructor defaults that differ from ours (a YAML may rely on them).
REFERENCE_DEFAULTS = {
    "lstm_layers": 2,
    "num_quantizers": 4,
    "rotation_trick": True,
    "num_sensors": 68,
    "n_residual_layers": 1,
}
# Unused by the channel-mix model (`sensor_space`, `mask_ratio`) or runtime-only (`compile`).
DROPPED = ("mask_ratio", "compile", "sensor_space")


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> BrainTokMixConfig:
    kwargs = {k: v for k, v in kwargs.items() if k not in DROPPED}
    for key, value in REFERENCE_DEFAULTS.items():
        kwargs.setdefault(key, value)
    return BrainTokMixConfig(**{**kwargs, **overrides})


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    return dict(state)  # module names were kept
