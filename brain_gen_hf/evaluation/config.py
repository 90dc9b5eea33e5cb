"""`EvaluationConfig`: one YAML file (or dict, or preset name) for everything `brain-gen-hf evaluate` runs.

Sections map one to one onto the analysis configs (each checks its own keys and values)::

    sampler:        sessions.SessionSamplerConfig       which sessions, context and total length
    generator:      rollouts.RolloutConfig              rollouts per context, batch size, sampling, seed
    metrics:        metrics.MetricsConfig               per-window metric settings (bands, Welch, DFA, ...)
    divergence:     divergence.DivergenceConfig         prefix horizons and the swap controls
    stats:          statistics.StatsConfig              bootstrap CIs and Wilcoxon tests
    sliding_window: sliding_windows.SlidingWindowConfig out-of-envelope and IQR-ratio curves
    token_summary:  token_summary.TokenSummaryConfig    bits/token, perplexity (token language models)

plus the top-level keys `baselines` (names evaluated by the same code as the model), `baseline_options`
(keywords per baseline, e.g. `{ar: {order: 8}}`), `token_batches` / `token_batch_size` (how many windows of
the split the token summary reads), `plots` (the figures) and `baseline_plots` (the baselines' figures too).

Presets: `EvaluationConfig.paper()` (the paper's settings: 61.44 s context, 296.96 s sessions), `small()`
(minutes-long recordings such as the quickstart's) and `tiny()` (seconds; tests).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

# section -> (module of brain_gen_hf.evaluation, config class)
SECTIONS: dict[str, tuple[str, str]] = {
    "sampler": ("sessions", "SessionSamplerConfig"),
    "generator": ("rollouts", "RolloutConfig"),
    "metrics": ("metrics", "MetricsConfig"),
    "divergence": ("divergence", "DivergenceConfig"),
    "stats": ("statistics", "StatsConfig"),
    "sliding_window": ("sliding_windows", "SlidingWindowConfig"),
    "token_summary": ("token_summary", "TokenSummaryConfig"),
}
# TimesFM runs where its weights are on this machine; elsewhere the report says it was skipped and why.
DEFAULT_BASELINES = ("zero", "mean", "persistence", "ar", "timesfm")
PRESETS = ("paper", "small", "tiny")


def section_class(section: str) -> type:
    module, name = SECTIONS[section]
    return getattr(importlib.import_module(f"brain_gen_hf.evaluation.{module}"), name)


def _section_dict(config: Any) -> dict:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(vars(config))


@dataclasses.dataclass
class EvaluationConfig:
    """What to sample, how to generate and which analyses to run; see the module docstring for the sections."""

    sampler: Any = None
    generator: Any = None
    metrics: Any = None
    divergence: Any = None
    stats: Any = None
    sliding_window: Any = None
    token_summary: Any = None
    baselines: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_BASELINES))
    baseline_options: dict[str, dict] = dataclasses.field(default_factory=dict)
    token_batches: int = 4
    token_batch_size: int = 8
    plots: bool = True
    baseline_plots: bool = False  # the baselines' figures too (their JSON numbers are always written)

    def __post_init__(self) -> None:
        for section in SECTIONS:
            value = getattr(self, section)
            if value is None or isinstance(value, dict):
                merged = _merge({section: DEFAULTS[section]}, {section: value or {}})[section]
                setattr(self, section, _build_section(section, merged))
        if isinstance(self.baselines, str):
            self.baselines = [name.strip() for name in self.baselines.split(",") if name.strip()]
        if not isinstance(self.baselines, (list, tuple)) or not all(isinstance(n, str) for n in self.baselines):
            raise ValueError(f"evaluation config 'baselines' must be a list of names, got {self.baselines!r}")
        self.baselines = list(self.baselines)
        if not isinstance(self.baseline_options, dict) or not all(
            isinstance(v, dict) for v in self.baseline_options.values()
        ):
            raise ValueError(
                "evaluation config 'baseline_options' must map a baseline name to its keywords, e.g. {ar: {order: 8}}"
            )
        unknown = sorted(set(self.baseline_options) - set(self.baselines))
        if unknown:
            raise ValueError(f"evaluation config 'baseline_options' names baselines not in 'baselines': {unknown}")
        for key in ("token_batches", "token_batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "token_batches" else 1):
                raise ValueError(f"evaluation config '{key}' must be a non-negative integer, got {value!r}")
        for key in ("plots", "baseline_plots"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"evaluation config '{key}' must be true or false, got {getattr(self, key)!r}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: dict | None) -> EvaluationConfig:
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ValueError(  # noqa: TRY004 (config errors are ValueErrors: the CLI prints them in one line)
                f"an evaluation config is a mapping of sections and keys, got {type(values).__name__}"
            )
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown evaluation config keys {unknown}; expected {known}")
        for section in SECTIONS:
            if values.get(section) is not None and not isinstance(values[section], dict):
                raise ValueError(f"evaluation config section '{section}' must be a mapping of keys")
        return cls(**_merge(DEFAULTS, {k: v for k, v in values.items() if v is not None}))

    @classmethod
    def from_yaml(cls, path: str | Path) -> EvaluationConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            what = "is a folder" if path.exists() else "does not exist"
            raise FileNotFoundError(
                f"evaluation config {path} {what}; pass a YAML file or a preset name ({', '.join(PRESETS)})"
            )
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from err
        try:
            return cls.from_dict(values)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    @classmethod
    def coerce(cls, config: EvaluationConfig | dict | str | Path | None) -> EvaluationConfig:
        """A config from a config, a dict, a preset name, a YAML path, or None (the default config)."""
        if isinstance(config, cls):
            return config
        if config is None or isinstance(config, dict):
            return cls.from_dict(config)
        if isinstance(config, str) and config in PRESETS:
            return getattr(cls, config)()
        if isinstance(config, (str, Path)):
            return cls.from_yaml(config)
        raise ValueError(
            f"config must be an EvaluationConfig, a dict, a YAML path or a preset name {PRESETS}, got "
            f"{type(config).__name__}"
        )

    def to_dict(self) -> dict:
        out = {section: _section_dict(getattr(self, section)) for section in SECTIONS}
        for field in dataclasses.fields(self):
            if field.name not in SECTIONS:
                out[field.name] = getattr(self, field.name)
        return out

    def replace(self, **changes) -> EvaluationConfig:
        """A copy with top-level keys or whole sections (dicts are merged into the section) replaced."""
        values = self.to_dict()
        for key, value in changes.items():
            if key in SECTIONS and isinstance(value, dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return type(self).from_dict(values)

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls) -> EvaluationConfig:
        """The paper's settings (spec 5.8): 296.96 s sessions after a 61.44 s context, 30 s / 5 s windows."""
        return cls.from_dict(_merge(PAPER, {}))

    @classmethod
    def small(cls) -> EvaluationConfig:
        """Minutes-long recordings (the quickstart's held-out sessions): 1.28 s of context, 8.96 s generated."""
        return cls.from_dict(SMALL)

    @classmethod
    def tiny(cls) -> EvaluationConfig:
        """Seconds of signal, few rollouts, few bootstrap resamples: for tests."""
        return cls.from_dict(TINY)


def _build_section(section: str, values: dict) -> Any:
    cls = section_class(section)
    try:
        return cls.from_dict(values)
    except ValueError as err:
        raise ValueError(f"evaluation config section '{section}': {err}") from err


def _merge(defaults: dict, values: dict) -> dict:
    """`values` over `defaults`, per section; a length given in steps replaces the default's seconds."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in defaults.items()}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict) and isinstance(out.get(key), dict):
            section = out[key]
            for given, default in (
                ("context_length_steps", "context_length_s"),
                ("total_length_steps", "total_length_s"),
                ("window_length_steps", "window_length_s"),
                ("stride_steps", "stride_s"),
            ):
                if given in value:
                    section.pop(default, None)
            section.update(value)
        else:
            out[key] = value
    return out


_STATS = {
    "comparisons": ["correct_vs_target_swap", "correct_vs_prompt_swap", "correct_vs_real_real"],
    "horizons": "all",
    "inference": {"ci": {"method": "bootstrap", "n_boot": 1000, "seed": 0}, "test": {"type": "wilcoxon_signed_rank"}},
}
_CONTROLS = {
    "target_swap": {"num_swaps_per_context": 1, "seed": 0},
    "prompt_swap": {"num_swaps_per_context": 1, "seed": 0},
    "real_real": {"num_swaps_per_context": 1, "seed": 0},
}
# The defaults of every config (what a YAML file's sections are merged into): every session of the split,
# 10 s of context and 20 s generated, the paper's controls and statistics at the small example's horizons.
DEFAULTS: dict = {
    "sampler": {"seed": 0, "num_sessions": 0, "context_length_s": 10.0, "total_length_s": 30.0},
    # The paper samples its rollouts (top-p 0.8): a greedy rollout of a brain LM collapses towards a flat signal.
    "generator": {
        "rollouts_per_context": 1,
        "rollout_batch_size": 8,
        "seed": 0,
        "sampling": {"do_sample": True, "top_p": 0.8},
    },
    "metrics": {},
    "divergence": {"prefix_times_s": [2.0, 4.0, 6.0, 8.0, 10.0], "include_max_prefix": True, **_CONTROLS},
    "stats": _STATS,
    "sliding_window": {"window_length_s": 5.0, "stride_s": 2.5},
    "token_summary": {},
}
PAPER = {
    "sampler": {"context_length_s": 61.44, "total_length_s": 296.96},
    "divergence": {
        "prefix_times_s": [20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 250.0],
        "plot_formats": ["png", "pdf"],
    },
    "stats": {**_STATS, "inference": {**_STATS["inference"], "ci": {"method": "bootstrap", "n_boot": 5000, "seed": 0}}},
    "sliding_window": {"window_length_s": 30.0, "stride_s": 5.0},
}
SMALL = {
    # 1.28 s of context: whole tokenizer windows (128 samples at 100 Hz) for the quickstart's LM
    "sampler": {"context_length_s": 1.28, "total_length_s": 10.24},
    "divergence": {"prefix_times_s": [1.0, 2.0, 4.0, 6.0]},
    "sliding_window": {"window_length_s": 2.0, "stride_s": 1.0},
    "stats": {**_STATS, "inference": {**_STATS["inference"], "ci": {"method": "bootstrap", "n_boot": 200, "seed": 0}}},
}
TINY = {
    "sampler": {"context_length_s": 1.28, "total_length_s": 2.56},
    "divergence": {"prefix_times_s": [0.64]},
    "sliding_window": {"window_length_s": 0.64, "stride_s": 0.64},
    "stats": {
        **_STATS,
        "metrics": ["psd_jsd", "band_jsd", "covariance", "coherence"],
        "inference": {**_STATS["inference"], "ci": {"method": "bootstrap", "n_boot": 20, "seed": 0}},
    },
    "token_batches": 1,
    "token_batch_size": 2,
}
