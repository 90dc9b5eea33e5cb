"""The typed configuration of a dataset build, loadable from YAML (`BuildConfig.from_yaml`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .cleaning import CleaningConfig
from .events import EventsConfig
from .normalization import NormalizationConfig
from .preprocessing import PreprocessingConfig
from .source_space import SourceSpaceConfig
from .splits import SplitConfig


@dataclass
class MuLawConfig:
    """Optional mu-law quantisation stored next to the float data (column `tokens`).

    Like the reference `mulaw_quantize`, each recording is divided by its max |x| first
    (`mulaw_scale` is stored per row)."""

    enabled: bool = False
    mu: int = 255

    def __post_init__(self):
        if not 1 <= self.mu <= 65535:
            raise ValueError(f"mulaw mu must lie in [1, 65535], got {self.mu}")


PARQUET_COMPRESSIONS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")


@dataclass
class ShardConfig:
    max_shard_size_mb: float = 500.0
    row_group_size_mb: float = 64.0  # small row groups keep streaming memory bounded
    compression: str = "zstd"

    def __post_init__(self):
        if self.max_shard_size_mb <= 0 or self.row_group_size_mb <= 0:
            raise ValueError("shard and row-group sizes must be positive")
        if self.compression not in PARQUET_COMPRESSIONS:
            raise ValueError(f"shards.compression must be one of {PARQUET_COMPRESSIONS}, got {self.compression!r}")


@dataclass
class CardConfig:
    license: str = "other"
    pretty_name: str | None = None
    description: str = ""
    citation: str = ""


def _check_types(name: str, section, values: dict) -> None:
    """Scalar keys of a YAML section must have their declared type (a typo'd number is a clear error)."""
    hints = typing.get_type_hints(section)
    for key, value in values.items():
        hint = hints.get(key)
        allowed = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        allowed.discard(type(None))
        if value is None or not allowed:
            continue
        if allowed == {bool}:
            ok, kind = isinstance(value, bool), "true or false"
        elif allowed <= {int, float}:
            ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif allowed == {str}:
            ok, kind = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise ValueError(f"{name}.{key} must be {kind}, got {value!r}")


# (section, key or None for the whole section, default) added after the first release (see content_fingerprint).
ADDED_SETTINGS = (
    ("source_space", None, SourceSpaceConfig()),
    ("events", None, EventsConfig()),
    ("preprocessing", "maxwell_calibration", None),
    ("preprocessing", "maxwell_cross_talk", None),
)

_SECTIONS = {
    "preprocessing": PreprocessingConfig,
    "source_space": SourceSpaceConfig,
    "events": EventsConfig,
    "normalization": NormalizationConfig,
    "cleaning": CleaningConfig,
    "mulaw": MuLawConfig,
    "shards": ShardConfig,
    "splits": SplitConfig,
    "card": CardConfig,
}


@dataclass
class BuildConfig:
    """Everything that decides the content of a built dataset."""

    dataset_name: str | None = None
    layout: str = "auto"  # discovery rules for input folders: auto | bids | omega | mous | camcan
    example_seconds: float | None = None  # if set, recordings without one full window are rejected
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    source_space: SourceSpaceConfig = field(default_factory=SourceSpaceConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    mulaw: MuLawConfig = field(default_factory=MuLawConfig)
    shards: ShardConfig = field(default_factory=ShardConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    card: CardConfig = field(default_factory=CardConfig)

    def __post_init__(self):
        from .discovery import LAYOUTS

        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.example_seconds is not None and not self.example_seconds > 0:
            raise ValueError(f"example_seconds must be positive (or null), got {self.example_seconds}")

    @classmethod
    def from_dict(cls, values: dict | None) -> BuildConfig:
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ValueError(  # noqa: TRY004 (config errors are ValueErrors: the CLI reports them in one line)
                f"a build config is a mapping of keys and sections, got {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown build config keys {sorted(unknown)}; expected {sorted(known)}")
        kwargs = {}
        for key, value in values.items():
            section = _SECTIONS.get(key)
            if section is None:
                kwargs[key] = value
                continue
            value = value or {}
            if not isinstance(value, dict):
                raise ValueError(f"build config section '{key}' must be a mapping of keys, got {value!r}")  # noqa: TRY004
            fields = {f.name for f in dataclasses.fields(section)}
            bad = set(value) - fields
            if bad:
                raise ValueError(f"unknown keys {sorted(bad)} in '{key}'; expected {sorted(fields)}")
            _check_types(key, section, value)
            for name in ("clip_range", "quantile_range"):
                if isinstance(value.get(name), list):
                    value = {**value, name: tuple(value[name])}
            kwargs[key] = section(**value)
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path) -> BuildConfig:
        import yaml

        if not Path(path).is_file():
            raise FileNotFoundError(
                f"build config {path} does not exist (examples: training_scripts/configs/preprocess_*.yaml)"
            )
        with open(path, encoding="utf-8") as handle:
            try:
                values = yaml.safe_load(handle)
            except yaml.YAMLError as err:
                raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from err
        try:
            return cls.from_dict(values)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def content_fingerprint(self) -> str:
        """Hash of the settings that change processed recordings (not shards/splits/card).

        Settings added after the first release are left out while they have their default (off)
        value, so a dataset built before they existed keeps its fingerprint and resumes."""
        content = {
            k: v for k, v in self.to_dict().items() if k not in ("shards", "splits", "card", "dataset_name", "layout")
        }
        for section, key, default in ADDED_SETTINGS:
            if key is None and content[section] == dataclasses.asdict(default):
                del content[section]
            elif key is not None and key in content[section] and content[section][key] == default:
                del content[section][key]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def save_yaml(self, path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
