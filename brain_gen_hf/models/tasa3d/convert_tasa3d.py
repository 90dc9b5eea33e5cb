"""Reference (brain-gen) TASA3D checkpoints -> brain_gen_hf configs and state dicts (keys are unchanged)."""

from __future__ import annotations

from .configuration_tasa3d import TASA3DConfig


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> TASA3DConfig:
    return TASA3DConfig(**kwargs, **overrides)


def state_dict_from_reference(reference_name: str, state: dict, config: TASA3DConfig) -> dict:
    return dict(state)
