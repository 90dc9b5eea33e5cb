"""The typed configuration of a dataset build, loadable from YAML (`BuildConfig.from_yaml`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .cleaning import CleaningConfig
from .normalization import NormalizationConfig
from .preprocessing import PreprocessingConfig
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


@dataclass
class ShardConfig:
    max_shard_size_mb: float = 500.0
    row_group_size_mb: float = 64.0  # small row groups keep streaming memory bounded
    compression: str = "zstd"

    def __post_init__(self):
        if self.max_shard_size_mb <= 0 or self.row_group_size_mb <= 0:
            raise ValueError("shard and row-group sizes must be positive")


@dataclass
class CardConfig:
    license: str = "other"
    pretty_name: str | None = None
    description: str = ""
    citation: str = ""


_SECTIONS = {
    "preprocessing": PreprocessingConfig,
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
    example_seconds: float | None = None  # if set, recordings without one full window are rejected
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    mulaw: MuLawConfig = field(default_factory=MuLawConfig)
    shards: ShardConfig = field(default_factory=ShardConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    card: CardConfig = field(default_factory=CardConfig)

    @classmethod
    def from_dict(cls, values: dict | None) -> "BuildConfig":
        values = dict(values or {})
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
            fields = {f.name for f in dataclasses.fields(section)}
            bad = set(value) - fields
            if bad:
                raise ValueError(f"unknown keys {sorted(bad)} in '{key}'; expected {sorted(fields)}")
            for name in ("clip_range", "quantile_range"):
                if isinstance(value.get(name), list):
                    value = {**value, name: tuple(value[name])}
            kwargs[key] = section(**value)
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path) -> "BuildConfig":
        import yaml

        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(yaml.safe_load(handle))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def content_fingerprint(self) -> str:
        """Hash of the settings that change processed recordings (not shards/splits/card)."""
        content = {k: v for k, v in self.to_dict().items() if k not in ("shards", "splits", "card", "dataset_name")}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def save_yaml(self, path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
