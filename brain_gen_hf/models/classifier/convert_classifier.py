"""Reference (brain-gen) classifier checkpoints -> brain_gen_hf configs and state dicts.

The base model is converted by its own family's converter (found through `brain_gen_hf.conversion`); this
module only nests its config and re-prefixes its weights under `base_model.`.
"""

from __future__ import annotations

import torch

from ...configuration_utils import require
from .configuration_classifier import (
    ClassifierContinuousConfig,
    ClassifierQuantizedConfig,
    ClassifierQuantizedImageConfig,
)

_CONFIGS = {
    "ClassifierContinuous": ClassifierContinuousConfig,
    "ClassifierQuantized": ClassifierQuantizedConfig,
    "ClassifierQuantizedImage": ClassifierQuantizedImageConfig,
}
# brain_gen_hf base model_type -> the reference model name its converter is registered under
_REFERENCE_BASE_NAMES = {
    "wavenet_full_channel": "WavenetFullChannel",
    "wavenet3d": "Wavenet3D",
    "tasa3d": "TASA3D",
    "bendr_forecast": "BENDRForecast",
}
_BASE_PREFIX = "base_model."


def _as_int_list(name: str, value) -> list[int]:
    if isinstance(value, torch.Tensor):
        require(not value.is_floating_point(), f"reference `{name}` must hold integer indices, got {value.dtype}")
        value = value.flatten().tolist()
    return [int(v) for v in value]


def config_from_reference(reference_name: str, kwargs: dict, base_overrides: dict | None = None, **overrides):
    """`base_overrides` go to the base family's converter (e.g. `{"encoder_norm": "reference"}` for BENDR)."""
    from ...conversion import config_from_reference as base_config_from_reference

    kwargs = dict(kwargs)
    base_config = base_config_from_reference(
        kwargs.pop("base_model_name"), kwargs.pop("model_args"), **(base_overrides or {})
    )
    fields = {"base_config": base_config, "num_classes": kwargs.pop("num_classes")}
    if reference_name == "ClassifierQuantized":
        # The reference repeats sizes the base already fixes; they must agree with it.
        require(
            kwargs.pop("num_channels") == base_config.in_channels,
            f"reference `num_channels` must equal the base's in_channels ({base_config.in_channels})",
        )
        require(
            kwargs.pop("d_model") == base_config.residual_channels,
            f"reference `d_model` must equal the base's hidden width residual_channels "
            f"({base_config.residual_channels})",
        )
        fields["red_dim"] = kwargs.pop("red_dim")
    elif reference_name == "ClassifierQuantizedImage":
        fields["row_idx"] = _as_int_list("row_idx", kwargs.pop("row_idx"))
        fields["col_idx"] = _as_int_list("col_idx", kwargs.pop("col_idx"))
        fields["image_size"] = kwargs.pop("image_size")
        fields["red_dim"] = kwargs.pop("red_dim")
        require(
            kwargs.pop("num_channels") == len(fields["row_idx"]),
            "reference `num_channels` must equal the number of sensor pixels (len(row_idx))",
        )
        quant_levels = kwargs.pop("quant_levels", 256)  # the reference constructor's default
        require(
            quant_levels == base_config.quant_levels,
            f"reference `quant_levels` ({quant_levels}) must equal the base's ({base_config.quant_levels})",
        )
    require(not kwargs, f"unknown reference {reference_name} arguments: {sorted(kwargs)}")
    return _CONFIGS[reference_name](**fields, **overrides)


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    from ...conversion import _converter

    if reference_name == "ClassifierQuantizedImage":
        # The reference stores the sensor pixels as buffers; here they live in the config.
        for name in ("row_idx", "col_idx"):
            stored = _as_int_list(name, state.pop(name))
            require(
                stored == getattr(config, name),
                f"checkpoint `{name}` {stored} differs from the config's {getattr(config, name)}",
            )
    base_name = _REFERENCE_BASE_NAMES[config.base_config.model_type]
    base_state = {k[len(_BASE_PREFIX) :]: v for k, v in state.items() if k.startswith(_BASE_PREFIX)}
    head_state = {k: v for k, v in state.items() if not k.startswith(_BASE_PREFIX)}
    base_state = _converter(base_name).state_dict_from_reference(base_name, base_state, config.base_config)
    return {**{_BASE_PREFIX + k: v for k, v in base_state.items()}, **head_state}
