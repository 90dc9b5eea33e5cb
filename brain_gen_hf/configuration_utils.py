"""`BrainGenConfig`: the signal contract every brain_gen_hf model config carries.

A checkpoint is only useful if you know what signal it expects: sampling rate, which channels
in which order, their types and sensor geometry, units and normalisation. These fields are
optional (a token model trained on anonymous channels leaves them empty), but when they are set
they are validated here and checked against inputs by `BrainGenPreTrainedModel`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedConfig

# mne channel types we know how to embed; others are allowed but flagged as "misc".
KNOWN_CHANNEL_TYPES = (
    "mag",
    "grad",
    "planar1",
    "planar2",
    "eeg",
    "seeg",
    "ecog",
    "eog",
    "ecg",
    "emg",
    "ref_meg",
    "parcel",
    "misc",
)


# Nested config classes by model_type, consulted before transformers' AutoConfig registry. Exported remote
# code fills it with its own bundled classes, so a nested config never depends on what else a process has
# registered (two remote repos of the same family can live side by side).
SUB_CONFIG_CLASSES: dict[str, type[PreTrainedConfig]] = {}


def sub_config_class(model_type: str) -> type[PreTrainedConfig]:
    """The config class of a nested config's `model_type` (brain_gen_hf families or any transformers model)."""
    if model_type in SUB_CONFIG_CLASSES:
        return SUB_CONFIG_CLASSES[model_type]
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise ValueError(f"unknown model_type {model_type!r} in a nested config; is the family registered?")
    return CONFIG_MAPPING[model_type]


def sub_config_from(value, default_model_type: str | None = None) -> PreTrainedConfig:
    """A nested config from a config object or a dict with `model_type` (else `default_model_type`).

    Composite configs call this in `__post_init__` on a plain dataclass field (no `sub_configs_defaults` spec,
    which transformers < 5.20 lacks): `to_dict` serialises a nested config in full on every release, so
    config.json never holds a diff against another family's defaults.
    """
    if isinstance(value, PreTrainedConfig):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"a nested config must be a config or a dict, got {type(value).__name__}")
    model_type = value.get("model_type", default_model_type)
    require(model_type is not None, "a nested config dict needs a `model_type`")
    return sub_config_class(model_type)(**{k: v for k, v in value.items() if k != "model_type"})


def require(condition: bool, message: str) -> None:
    """Raise a `ValueError` with `message` unless `condition` holds (config validation helper)."""
    if not condition:
        raise ValueError(message)


def require_positive_int(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    require(ok, f"`{name}` must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")


def require_int_list(name: str, value: Any, min_len: int = 1, allow_zero: bool = False) -> None:
    require(
        isinstance(value, (list, tuple)) and len(value) >= min_len,
        f"`{name}` must be a list of at least {min_len} integers, got {value!r}",
    )
    for v in value:
        require_positive_int(f"{name}[...]", v, allow_zero=allow_zero)


def _finite_matrix(name: str, value: Any, width: int) -> list[list[float]]:
    require(isinstance(value, (list, tuple)), f"`{name}` must be a list of [{width} floats] rows, got {type(value)}")
    rows = []
    for i, row in enumerate(value):
        require(
            isinstance(row, (list, tuple)) and len(row) == width and all(is_real_number(v) for v in row),
            f"`{name}[{i}]` must have {width} numbers, got {row!r}",
        )
        row = [float(v) for v in row]
        require(all(math.isfinite(v) for v in row), f"`{name}[{i}]` must be finite (no NaN/inf), got {row}")
        rows.append(row)
    return rows


class BrainGenConfig(PreTrainedConfig):
    r"""
    Base configuration of every brain_gen_hf model: the signal contract.

    Args:
        sampling_rate (`float`, *optional*): sampling rate in Hz of the signal the model expects.
        channel_names (`list[str]`, *optional*): channel names, in the order of the channel axis.
        channel_types (`list[str]`, *optional*): one mne channel type per channel (`mag`, `grad`, `eeg`,
            `parcel`, ...).
        sensor_positions (`list[list[float]]`, *optional*): `(C, 3)` sensor positions in metres (head frame).
        sensor_orientations (`list[list[float]]`, *optional*): `(C, 3)` unit normals of MEG coils.
        units (`str`, *optional*): physical unit of the raw signal before normalisation (`"T"`, `"V"`, ...).
        normalization (`dict`, *optional*): how the signal was normalised (e.g. `{"method": "robust",
            "clip": 10.0}`); per-channel statistics may be included as lists.
        token_rate (`float`, *optional*): tokens per second of signal, for token models.
    """

    model_type = "brain_gen"

    sampling_rate: float | None = None
    channel_names: list[str] | None = None
    channel_types: list[str] | None = None
    sensor_positions: list[list[float]] | None = None
    sensor_orientations: list[list[float]] | None = None
    units: str | None = None
    normalization: dict | None = None
    token_rate: float | None = None

    def __post_init__(self, **kwargs):
        self._validate_signal_contract()
        super().__post_init__(**kwargs)

    def _validate_signal_contract(self) -> None:
        if self.sampling_rate is not None:
            require(
                is_real_number(self.sampling_rate) and math.isfinite(self.sampling_rate) and self.sampling_rate > 0,
                f"`sampling_rate` must be a positive number in Hz, got {self.sampling_rate!r}",
            )
            self.sampling_rate = float(self.sampling_rate)
        lengths = {}
        if self.channel_names is not None:
            self.channel_names = _channel_name_list(self.channel_names)
            lengths["channel_names"] = len(self.channel_names)
        if self.channel_types is not None:
            # A bare string would be split into one-letter channel types.
            require(
                isinstance(self.channel_types, (list, tuple)) and all(isinstance(t, str) for t in self.channel_types),
                f"`channel_types` must be a list of strings (one per channel), got {self.channel_types!r:.80}",
            )
            self.channel_types = list(self.channel_types)
            lengths["channel_types"] = len(self.channel_types)
        if self.sensor_positions is not None:
            self.sensor_positions = _finite_matrix("sensor_positions", self.sensor_positions, 3)
            lengths["sensor_positions"] = len(self.sensor_positions)
        if self.sensor_orientations is not None:
            self.sensor_orientations = _finite_matrix("sensor_orientations", self.sensor_orientations, 3)
            lengths["sensor_orientations"] = len(self.sensor_orientations)
        require(
            len(set(lengths.values())) <= 1,
            f"inconsistent channel metadata: lengths {lengths} must all be equal (one entry per channel)",
        )
        if self.token_rate is not None:
            require(
                is_real_number(self.token_rate) and math.isfinite(self.token_rate) and self.token_rate > 0,
                f"`token_rate` must be a positive number, got {self.token_rate!r}",
            )
        require(
            self.units is None or isinstance(self.units, str),
            f"`units` must be a string such as 'T' or 'V', got {self.units!r}",
        )
        require(
            self.normalization is None or isinstance(self.normalization, dict),
            f"`normalization` must be a dict (e.g. {{'method': 'robust'}}), got {self.normalization!r:.80}",
        )

    @property
    def contract_num_channels(self) -> int | None:
        """Channel count fixed by the signal contract, if any metadata is set."""
        for field in (self.channel_names, self.channel_types, self.sensor_positions, self.sensor_orientations):
            if field is not None:
                return len(field)
        return None

    def check_signal_metadata(
        self,
        *,
        sampling_rate: float | None = None,
        channel_names: Sequence[str] | None = None,
        num_channels: int | None = None,
    ) -> None:
        """Check metadata that came with an input against the contract; raise `ValueError` on mismatch.

        `channel_names` name the input's channels in order (`num_channels` of them, when given). If the config
        has names they must be the same, in the same order: a model never reorders channels silently. Pick and
        reorder a recording with `x[:, config.channel_order(names)]`.
        """
        if sampling_rate is not None and self.sampling_rate is not None:
            require(
                abs(float(sampling_rate) - self.sampling_rate) < 1e-6,
                f"input sampling rate {sampling_rate} Hz does not match the model's {self.sampling_rate} Hz; "
                "resample the recording first",
            )
        if channel_names is None:
            return
        names = _channel_name_list(channel_names)
        if num_channels is not None:
            require(
                len(names) == num_channels,
                f"`channel_names` has {len(names)} names but the input has {num_channels} channels",
            )
        if self.channel_names is None or names == self.channel_names:
            return
        missing = [c for c in self.channel_names if c not in names]
        extra = [c for c in names if c not in self.channel_names]
        if not missing and not extra:
            first = [
                f"{i}: {got!r} where the model expects {want!r}"
                for i, (got, want) in enumerate(zip(names, self.channel_names))
                if got != want
            ]
            problem = f"same channels in a different order (position {'; '.join(first[:3])})"
        else:
            problem = f"missing: {missing[:5]}, unexpected: {extra[:5]}"
        fix = (
            "reorder the channel axis with `x[:, config.channel_order(channel_names)]`"
            if not missing
            else "the recording lacks channels the model was trained on"
        )
        raise ValueError(f"input channels do not match the model's `config.channel_names` ({problem}); {fix}")

    def channel_order(self, channel_names: Sequence[str]) -> list[int]:
        """Indices into `channel_names` that pick and order a recording's channels as `config.channel_names`.

        `x[:, config.channel_order(names)]` is the input the model expects; channels the model does not use are
        dropped, and a channel it needs but the recording lacks raises `ValueError`.
        """
        require(self.channel_names is not None, "the config has no `channel_names` to order channels by")
        names = _channel_name_list(channel_names)
        missing = [c for c in self.channel_names if c not in names]
        require(
            not missing,
            f"the recording lacks channels the model expects: {missing[:5]}"
            + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""),
        )
        position = {name: i for i, name in enumerate(names)}
        return [position[c] for c in self.channel_names]


def is_real_number(value: Any) -> bool:
    """A real number (numpy scalars included), but not a bool (`True` would silently mean 1 Hz)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _channel_name_list(channel_names: Sequence[str]) -> list[str]:
    # A bare string would be split into one-letter channel names.
    require(
        not isinstance(channel_names, str) and all(isinstance(n, str) for n in channel_names),
        f"`channel_names` must be a list of strings, got {channel_names!r:.80}",
    )
    names = list(channel_names)
    require(len(set(names)) == len(names), "`channel_names` contains duplicates")
    return names
