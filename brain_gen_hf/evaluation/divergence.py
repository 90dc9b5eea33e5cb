"""Rollout divergence: does a generated continuation stay closer to its own real continuation than to others?

Spec pipeline §5.6. Every run's continuation (the context dropped) is cut into growing prefixes `[0, p)`; at each
prefix the per-window metrics of every generated and every real continuation are compared pair by pair:

- correct:      (generated_i, target_i), the model's rollout against what really followed its context;
- target_swap:  (generated_i, target_j), the same rollout against another context's continuation;
- prompt_swap:  (generated_j, target_i), another context's rollout against this continuation;
- real_real:    (target_i, target_j), how far two real continuations are from each other (stored as `baseline`).

Swap partners j are drawn (seeded) among runs sharing the metadata values of `match_keys`. The pair curves are
averaged per context, then summarised across contexts (mean, median, quartiles, std) per prefix.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config_keys import reject_unknown

logger = logging.getLogger(__name__)

DIVERGENCE_JSON = "rollout_divergence.json"
DIVERGENCE_NAME = "rollout_divergence"
CONTROLS = ("target_swap", "prompt_swap", "real_real")
LINES = ("correct", "target_swap", "prompt_swap", "real_real")
DEFAULT_MATCH_KEYS = ("dataset_key", "task_type")
AGGREGATES = ("mean", "median")
# The condition names used in results: the real-vs-real control is the "baseline".
CONDITION_OF_LINE = {
    "correct": "gen",
    "target_swap": "target_swap",
    "prompt_swap": "prompt_swap",
    "real_real": "baseline",
}

BANDS_ORDER = ("delta", "theta", "alpha", "beta", "gamma")
BANDED_PREFIXES = ("coherence_", "psd_jsd_", "psd_corr_", "bandpower_ratio_")
NON_BANDED_ORDER = (
    "correlation",
    "covariance",
    "psd_jsd",
    "psd_corr",
    "band_jsd",
    "coherence",
    "stft_magnitude",
    "stft_angle",
    "fft_magnitude",
    "fft_angle",
    "amplitude_kurtosis",
    "amplitude_tail_fraction",
    "dfa_exponent",
    "hurst_exponent",
    "one_over_f_exponent",
    "spatial_connectivity",
)


def _number_list(name: str, value: Any) -> list[float] | None:
    if value is None:
        return None
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 for v in values):
        raise ValueError(f"divergence {name} must be positive numbers, got {value!r}")
    return [float(v) for v in values]


def _positive_or_none(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
        raise ValueError(f"divergence {name} must be a positive number (or null), got {value!r}")


@dataclass
class ControlConfig:
    """One control condition: how many partners per context, drawn how.

    `match_keys` None means the analysis-level `match_keys`, else `dataset_key` + `task_type` when every run's
    metadata has them, else any other run. The reference draws unseeded when no seed is given; here `seed` defaults
    to 0 so that the same rollouts always give the same report.
    """

    enabled: bool = False
    num_swaps_per_context: int = 1
    match_keys: list[str] | None = None
    seed: int = 0
    aggregate: str = "mean"  # how one context's pair curves are reduced: mean or median (NaN-aware)

    def __post_init__(self):
        if not isinstance(self.enabled, bool):
            raise ValueError(f"divergence control 'enabled' must be true or false, got {self.enabled!r}")
        n = self.num_swaps_per_context
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"divergence num_swaps_per_context must be a positive integer, got {n!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"divergence control seed must be an integer, got {self.seed!r}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"divergence control aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")
        if isinstance(self.match_keys, str):
            self.match_keys = [self.match_keys]
        if self.match_keys is not None:
            self.match_keys = [str(k) for k in self.match_keys]

    @classmethod
    def from_value(cls, name: str, value: Any, default_enabled: bool) -> ControlConfig:
        """A control from `true`/`false`, a dict of keys (enabled unless it says otherwise) or None (default)."""
        if value is None:
            return cls(enabled=default_enabled)
        if isinstance(value, bool):
            return cls(enabled=value)
        section = f"divergence control {name!r}"
        aliases = {"num_pairs_per_context"} | ({"num_real_real_pairs_per_context"} if name == "real_real" else set())
        known = {f.name for f in dataclasses.fields(cls)} | aliases | {"selection", "pairing"}
        reject_unknown(section, value, known)
        values = dict(value)
        for alias in sorted(aliases):  # the reference's other spellings of num_swaps_per_context
            if alias in values:
                if "num_swaps_per_context" in values:
                    raise ValueError(f"{section}: give num_swaps_per_context or {alias}, not both")
                values["num_swaps_per_context"] = values.pop(alias)
        for nested in ("selection", "pairing"):  # the reference also reads seed / match_keys from these
            inner = values.pop(nested, None)
            if inner is None:
                continue
            reject_unknown(f"{section}.{nested}", inner, {"seed", "match_keys"})
            for key, item in inner.items():
                if key in values:
                    raise ValueError(f"{section}: {key} is given both directly and in {nested}")
                values[key] = item
        values.setdefault("enabled", True)
        return cls(**values)


@dataclass
class DivergencePlotConfig:
    metrics: list[str] | None = None  # None: every metric
    lines: list[str] = field(default_factory=lambda: list(LINES))
    title: str | None = None
    name: str = DIVERGENCE_NAME

    def __post_init__(self):
        bad = [line for line in self.lines if line not in LINES]
        if bad or not self.lines:
            raise ValueError(f"divergence plots.lines must be names among {list(LINES)}, got {self.lines!r}")
        if not self.name or "/" in self.name:
            raise ValueError(f"divergence plots.name must be a file stem, got {self.name!r}")


@dataclass
class DivergenceConfig:
    """Settings of the divergence analysis; `from_dict` reads the spec's keys (and the reference's aliases).

    Prefix points come from `prefix_steps` and/or `prefix_times_s` (seconds; steps when there is no sampling rate),
    plus the whole continuation when `include_max_prefix`. With neither given, the points are
    `range(window, Tc + 1, stride)`, window = `window_steps` or `window_seconds` (default max(5, 0.5 s), or 20
    steps without a sampling rate) and stride = `stride_steps` or `stride_seconds` (default: the window).
    """

    prefix_steps: list[float] | None = None
    prefix_times_s: list[float] | None = None
    include_max_prefix: bool = True
    window_steps: int | None = None
    window_seconds: float | None = None
    stride_steps: int | None = None
    stride_seconds: float | None = None
    match_keys: list[str] | None = None
    target_swap: ControlConfig = field(default_factory=lambda: ControlConfig(enabled=False))
    prompt_swap: ControlConfig = field(default_factory=lambda: ControlConfig(enabled=False))
    real_real: ControlConfig = field(default_factory=lambda: ControlConfig(enabled=True))
    plot: bool = True
    plots: DivergencePlotConfig = field(default_factory=DivergencePlotConfig)
    plot_formats: list[str] = field(default_factory=lambda: ["png"])

    _ALIASES = {
        "divergence_window_steps": "window_steps",
        "divergence_window_seconds": "window_seconds",
        "divergence_stride_steps": "stride_steps",
        "divergence_stride_seconds": "stride_seconds",
        "prefix_times_seconds": "prefix_times_s",
        "plot_rollout_divergence": "plot",
    }
    _EVALUATION_KEYS = {"prefix_steps", "prefix_times_s", "prefix_times_seconds", "include_max_prefix"}

    def __post_init__(self):
        self.prefix_steps = _number_list("prefix_steps", self.prefix_steps)
        self.prefix_times_s = _number_list("prefix_times_s", self.prefix_times_s)
        for name in ("window_steps", "window_seconds", "stride_steps", "stride_seconds"):
            _positive_or_none(name, getattr(self, name))
        for name in ("window_steps", "stride_steps"):
            if getattr(self, name) is not None and int(getattr(self, name)) != getattr(self, name):
                raise ValueError(f"divergence {name} must be a whole number of steps, got {getattr(self, name)!r}")
        for name in ("include_max_prefix", "plot"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"divergence {name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.match_keys, str):
            self.match_keys = [self.match_keys]
        if isinstance(self.plot_formats, str):
            self.plot_formats = [self.plot_formats]
        self.plot_formats = [str(fmt).lower().lstrip(".") for fmt in self.plot_formats]
        if not self.plot_formats or not all(self.plot_formats):
            raise ValueError(
                f"divergence plot_formats must name file formats such as png or pdf, got {self.plot_formats}"
            )

    @classmethod
    def from_dict(cls, values: dict | None) -> DivergenceConfig:
        values = {} if values is None else values
        fields = {f.name for f in dataclasses.fields(cls)}
        allowed = fields | set(cls._ALIASES) | {"controls", "evaluation"}
        if isinstance(values, dict) and "stats" in values:
            raise ValueError(
                "divergence: 'stats' is its own section (statistics.StatsConfig; the evaluation config's `stats`)"
            )
        reject_unknown("divergence", values, allowed)
        values = dict(values)
        evaluation = values.pop("evaluation", None)
        if evaluation is not None:  # the reference also reads the prefix keys from an `evaluation` block
            reject_unknown("divergence.evaluation", evaluation, cls._EVALUATION_KEYS)
            for key, item in evaluation.items():
                values.setdefault(key, item)
        for alias, name in cls._ALIASES.items():
            if alias in values:
                if name in values:
                    raise ValueError(f"divergence: give {name} or its alias {alias}, not both")
                values[name] = values.pop(alias)
        controls = values.pop("controls", None) or {}
        reject_unknown("divergence.controls", controls, set(CONTROLS))
        for name in CONTROLS:
            if name in controls and name in values:
                raise ValueError(f"divergence: control {name!r} is given both in controls and at the top level")
            raw = controls.get(name, values.pop(name, None))
            values[name] = ControlConfig.from_value(name, raw, default_enabled=name == "real_real")
        plots = values.pop("plots", None)
        if isinstance(plots, list):  # the reference uses the first entry of a list of plot configs
            plots = plots[0] if plots else None
        if plots is not None:
            reject_unknown("divergence.plots", plots, {f.name for f in dataclasses.fields(DivergencePlotConfig)})
            plots = DivergencePlotConfig(**plots)
        return cls(plots=plots or DivergencePlotConfig(), **values)

    def to_dict(self) -> dict:
        """A dict that `from_dict` reads back into this config."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in CONTROLS:
            out[name] = dataclasses.asdict(getattr(self, name))
        out["plots"] = dataclasses.asdict(self.plots)
        return json.loads(json.dumps(out))

    def control(self, name: str) -> ControlConfig:
        return getattr(self, name)


# ---------------------------------------------------------------------------------------------------- inputs


def stack_runs(
    generated: np.ndarray | Sequence[np.ndarray],
    target: np.ndarray | Sequence[np.ndarray],
    metadata: Sequence[dict] | None,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Stack the runs into `(R, C, T)` arrays with their metadata, keeping one consistent shape.

    3-D arrays must have equal shapes. Lists of `(C, T)` runs follow the reference: runs whose generated and target
    shapes differ are dropped, then the runs of the maximal length and the most common channel count are kept
    (ties: the count seen first).
    """
    if isinstance(generated, np.ndarray) and isinstance(target, np.ndarray):
        if generated.ndim != 3 or generated.shape != target.shape:
            raise ValueError(
                f"generated {generated.shape} and target {target.shape} must be (runs, channels, steps) arrays of "
                f"one shape"
            )
        generated_runs, target_runs = list(generated), list(target)
    else:
        generated_runs, target_runs = [np.asarray(g) for g in generated], [np.asarray(t) for t in target]
    if len(generated_runs) != len(target_runs):
        raise ValueError(f"{len(generated_runs)} generated runs but {len(target_runs)} target runs")
    if not generated_runs:
        raise ValueError("no rollouts to analyse (0 runs)")
    metadata = [{} for _ in generated_runs] if not metadata else list(metadata)
    if len(metadata) != len(generated_runs):
        raise ValueError(f"{len(metadata)} metadata entries for {len(generated_runs)} runs")
    for i, (g, t) in enumerate(zip(generated_runs, target_runs)):
        if g.ndim != 2 or t.ndim != 2:
            raise ValueError(f"run {i}: each run must be (channels, steps), got {g.shape} and {t.shape}")
    kept = [i for i, (g, t) in enumerate(zip(generated_runs, target_runs)) if g.shape == t.shape]
    if len(kept) < len(generated_runs):
        logger.warning(
            "divergence: dropped %d runs whose generated and target shapes differ", len(generated_runs) - len(kept)
        )
    if not kept:
        raise ValueError("no run has matching generated and target shapes")
    longest = max(generated_runs[i].shape[1] for i in kept)
    kept = [i for i in kept if generated_runs[i].shape[1] == longest]
    channels = Counter(generated_runs[i].shape[0] for i in kept).most_common(1)[0][0]
    consistent = [i for i in kept if generated_runs[i].shape[0] == channels]
    if len(consistent) < len(generated_runs):
        logger.warning("divergence: kept %d of %d runs to get one shape", len(consistent), len(generated_runs))
    gen = np.stack([generated_runs[i] for i in consistent]).astype(np.float32, copy=False)
    tgt = np.stack([target_runs[i] for i in consistent]).astype(np.float32, copy=False)
    return gen, tgt, [dict(metadata[i] or {}) for i in consistent]


def resolve_window(config: DivergenceConfig, sfreq: float | None) -> tuple[int, int]:
    """(window, stride) in steps for the default prefix points."""
    if not sfreq and (config.window_seconds is not None or config.stride_seconds is not None):
        raise ValueError("divergence window_seconds / stride_seconds need a sampling rate; give *_steps instead")
    if config.window_steps is not None:
        window = int(config.window_steps)
    elif config.window_seconds is not None and sfreq:
        window = int(config.window_seconds * sfreq)
    else:
        window = max(5, int(0.5 * sfreq)) if sfreq else 20
    if config.stride_steps is not None:
        stride = int(config.stride_steps)
    elif config.stride_seconds is not None and sfreq:
        stride = int(config.stride_seconds * sfreq)
    else:
        stride = window
    if window < 1 or stride < 1:
        raise ValueError(f"divergence window ({window}) and stride ({stride}) must be at least one step")
    return window, stride


def resolve_prefix_points(
    config: DivergenceConfig, continuation_steps: int, sfreq: float | None
) -> tuple[list[int], int | None, int | None]:
    """(prefix points, window, stride): explicit points give a null window and stride."""
    points = [int(round(p)) for p in config.prefix_steps or []]
    points += [int(round(t * sfreq)) if sfreq else int(round(t)) for t in config.prefix_times_s or []]
    if not points:
        window, stride = resolve_window(config, sfreq)
        points = list(range(window, continuation_steps + 1, stride))
        if not points:
            raise ValueError(
                f"the divergence window ({window} steps) is longer than the continuation ({continuation_steps} steps)"
            )
        return points, window, stride
    if config.include_max_prefix:
        points.append(continuation_steps)
    kept = sorted({p for p in points if 0 < p <= continuation_steps})
    if not kept:
        raise ValueError(
            f"no divergence prefix point lies in (0, {continuation_steps}] (the continuation's steps): got {points}"
        )
    return kept, None, None


# ---------------------------------------------------------------------------------------------------- pairs


def resolve_match_keys(control: ControlConfig, config: DivergenceConfig, metadata: list[dict]) -> list[str] | None:
    keys = control.match_keys if control.match_keys is not None else config.match_keys
    if keys is None:
        present = metadata and all(all(k in meta for k in DEFAULT_MATCH_KEYS) for meta in metadata)
        return list(DEFAULT_MATCH_KEYS) if present else None
    for i, meta in enumerate(metadata):
        missing = [k for k in keys if k not in meta]
        if missing:
            raise ValueError(
                f"divergence match_keys {missing} are missing from run {i}'s metadata (keys: {sorted(meta)})"
            )
    return list(keys) or None


def select_partners(
    metadata: list[dict], num_partners: int, rng: np.random.Generator, match_keys: list[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """`(pairs (n, 2) of (context, partner), context ids (n,))`: per context, `num_partners` other runs of its group.

    Partners are drawn without replacement unless more are asked for than the group holds; a context alone in its
    group gets none. When the metadata carry `session_index` (several rollouts of one context), runs of the same
    session are never partners: they share one real continuation, so swapping between them would control nothing
    (the reference, which pairs any two runs, does not guard against this).
    """
    n_runs = len(metadata)
    keys = [tuple(meta.get(k) for k in match_keys) if match_keys else () for meta in metadata]
    sessions = [meta["session_index"] for meta in metadata] if all("session_index" in m for m in metadata) else None
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key].append(index)
    pairs: list[tuple[int, int]] = []
    for context in range(n_runs):
        candidates = [i for i in groups[keys[context]] if i != context]
        if sessions is not None:
            candidates = [i for i in candidates if sessions[i] != sessions[context]]
        if not candidates:
            continue
        chosen = rng.choice(candidates, size=num_partners, replace=num_partners > len(candidates))
        pairs.extend((context, int(partner)) for partner in chosen)
    pairs_array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs_array, pairs_array[:, 0].copy()


@dataclass
class PairSet:
    """Pairs of one condition as indices into `concat(generated, target)` (index R + i is target run i)."""

    name: str
    left: np.ndarray
    right: np.ndarray
    context_ids: np.ndarray
    aggregate: str = "mean"


def build_pairs(config: DivergenceConfig, metadata: list[dict]) -> tuple[list[PairSet], bool]:
    """The pair sets of every enabled condition, and whether real_real is enabled but has no pair (NaN baseline)."""
    n_runs = len(metadata)
    runs = np.arange(n_runs)
    pair_sets = [PairSet("gen", runs, runs + n_runs, runs)]
    baseline_missing = False
    for name in CONTROLS:
        control = config.control(name)
        if not control.enabled:
            continue
        rng = np.random.default_rng(control.seed)
        pairs, context_ids = select_partners(
            metadata, control.num_swaps_per_context, rng, resolve_match_keys(control, config, metadata)
        )
        context, partner = pairs[:, 0], pairs[:, 1]
        if name == "target_swap":
            left, right = context, partner + n_runs
        elif name == "prompt_swap":
            left, right = partner, context + n_runs
        else:
            left, right = context + n_runs, partner + n_runs
        if len(pairs) == 0:
            logger.warning("divergence: no %s pair (each context is alone in its match group)", name)
            baseline_missing = baseline_missing or name == "real_real"
            continue
        pair_sets.append(PairSet(CONDITION_OF_LINE[name], left, right, context_ids, control.aggregate))
    return pair_sets, baseline_missing


# ---------------------------------------------------------------------------------------------------- curves


def pair_distance_curves(
    combined: np.ndarray, points: list[int], left: np.ndarray, right: np.ndarray, metrics_config: Any
) -> dict[str, np.ndarray]:
    """Per metric, the `(n_pairs, n_points)` distances of the pairs over the prefixes `combined[..., :p]`."""
    from .distances import metric_distances
    from .metrics import compute_window_metrics, take_examples

    curves: dict[str, np.ndarray] = {}
    for column, point in enumerate(points):
        # The metrics of every run are computed once per prefix, then shared by all the pairs using that run.
        metrics = compute_window_metrics(combined[:, :, :point], metrics_config)
        distances = metric_distances(take_examples(metrics, left), take_examples(metrics, right), metrics_config)
        for name, values in distances.items():
            if name not in curves:
                curves[name] = np.full((len(left), len(points)), np.nan)
            curves[name][:, column] = values
    return curves


def _per_context(curves: np.ndarray, context_ids: np.ndarray, ids: list[int], reduce: str) -> np.ndarray:
    """`(n_contexts, n_points)`: each context's pair curves reduced with the NaN-aware mean or median."""
    context_ids = np.asarray(context_ids)
    if len(ids) == len(context_ids):  # one pair per context: nothing to reduce, only to order
        return curves[np.argsort(context_ids, kind="stable")]
    reducer = np.nanmedian if reduce == "median" else np.nanmean
    return np.stack([reducer(curves[context_ids == c], axis=0) for c in ids])


def aggregate_curves(curves: np.ndarray, context_ids: np.ndarray, reduce: str = "mean") -> dict:
    """Reduce the pair curves `(n_pairs, n_points)` per context (NaN-mean or median), then summarise across them.

    Every statistic is NaN-aware; a prefix without any finite value gives NaN.
    """
    import warnings

    ids = sorted({int(c) for c in context_ids})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the intended result
        runs = _per_context(np.asarray(curves, dtype=np.float64), context_ids, ids, reduce)
        q25, median, q75 = np.nanpercentile(runs, [25, 50, 75], axis=0)
        mean, std = np.nanmean(runs, axis=0), np.nanstd(runs, axis=0)
    return {
        "runs": runs,
        "context_ids": ids,
        "per_run_lengths": [int(runs.shape[1])] * len(ids),
        "mean": mean,
        "median": median,
        "q25": q25,
        "q75": q75,
        "std": std,
    }


# ---------------------------------------------------------------------------------------------------- analysis


def divergence_analysis(
    result: Any,
    config: DivergenceConfig | dict | None = None,
    metrics_config: Any = None,
    sfreq: float | None = None,
    out_dir: str | Path | None = None,
    plot: bool = True,
) -> dict:
    """Divergence curves of a `RolloutResult` (anything with generated, target, context_steps, sfreq, metadata).

    Returns the content of rollout_divergence.json plus, per metric and condition, the per-context curves `runs`
    (`(n_contexts, n_points)`, what `statistics.divergence_statistics` tests). With `out_dir`, writes
    rollout_divergence.json (without `runs`) and, when `plot` and `config.plot`, the figure.
    """
    from .metrics import MetricsConfig

    if not isinstance(config, DivergenceConfig):
        config = DivergenceConfig.from_dict(config)
    sfreq = getattr(result, "sfreq", None) if sfreq is None else sfreq
    sfreq = float(sfreq) if sfreq else None
    if metrics_config is None or isinstance(metrics_config, dict):
        metrics_config = MetricsConfig.from_dict(metrics_config, sfreq=sfreq)
    else:
        metrics_config = metrics_config.with_fs(sfreq)
    generated, target, metadata = stack_runs(result.generated, result.target, getattr(result, "metadata", None))
    total = generated.shape[2]
    context_steps = int(result.context_steps or 0)
    if not 0 <= context_steps < total:
        raise ValueError(
            f"context_steps ({context_steps}) must lie in [0, {total}) (the rollouts' steps): nothing is left to "
            f"compare after the context"
        )
    continuation = total - context_steps
    points, window, stride = resolve_prefix_points(config, continuation, sfreq)

    pair_sets, baseline_missing = build_pairs(config, metadata)
    combined = np.concatenate([generated[..., context_steps:], target[..., context_steps:]], axis=0)
    left = np.concatenate([p.left for p in pair_sets])
    right = np.concatenate([p.right for p in pair_sets])
    curves = pair_distance_curves(combined, points, left, right, metrics_config)

    x = [p / sfreq for p in points] if sfreq else [float(p) for p in points]
    out_metrics: dict[str, dict] = {}
    for name, values in curves.items():
        offset, conditions = 0, {}
        for pair_set in pair_sets:
            count = len(pair_set.left)
            conditions[pair_set.name] = aggregate_curves(
                values[offset : offset + count], pair_set.context_ids, pair_set.aggregate
            )
            offset += count
        if baseline_missing:  # real_real requested but no two runs can be paired: a NaN baseline
            nan = np.full((len(generated), len(points)), np.nan)
            conditions["baseline"] = aggregate_curves(nan, np.arange(len(generated)))
        entry = conditions.pop("gen")
        entry["x"] = x
        for condition in ("target_swap", "prompt_swap", "baseline"):
            entry[condition] = conditions.get(condition)
        out_metrics[name] = entry

    divergence = {
        "window_steps": window,
        "window_seconds": window / sfreq if window is not None and sfreq else None,
        "stride_steps": stride,
        "stride_seconds": stride / sfreq if stride is not None and sfreq else None,
        "prefix_steps": points,
        "prefix_seconds": [p / sfreq for p in points] if sfreq else None,
        "sfreq": sfreq,
        "metrics": out_metrics,
    }
    divergence = _plain(divergence)
    if plot and config.plot:
        _check_plot_metrics(config.plots, out_metrics)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_divergence_json(divergence, out_dir / DIVERGENCE_JSON)
        if plot and config.plot:
            plot_divergence(divergence, config.plots, config.plot_formats, out_dir)
    return divergence


def _plain(value: Any) -> Any:
    """Arrays and numpy scalars as lists and Python numbers (NaN kept; JSON writing turns it into null)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def without_runs(divergence: dict) -> dict:
    """The rollout_divergence.json content: the divergence dict without the per-context `runs`."""

    def strip(entry: dict | None) -> dict | None:
        if entry is None:
            return None
        return {
            k: strip(v) if k in ("target_swap", "prompt_swap", "baseline") else v
            for k, v in entry.items()
            if k != "runs"
        }

    return {**divergence, "metrics": {name: strip(entry) for name, entry in divergence["metrics"].items()}}


def write_divergence_json(divergence: dict, path: str | Path) -> Path:
    from .report import write_json

    return write_json(path, without_runs(divergence))


# ---------------------------------------------------------------------------------------------------- figure

_COLOURS = {"correct": "#1f5fa8", "target_swap": "#e08a1e", "prompt_swap": "#b8322a", "real_real": "#666666"}
_LABELS = {
    "correct": "Correct",
    "target_swap": "Target swap",
    "prompt_swap": "Prompt swap",
    "real_real": "Real vs real",
}
_TITLES = {
    "correlation": "Correlation distance",
    "covariance": "Covariance distance",
    "psd_jsd": "PSD JS distance",
    "psd_corr": "PSD correlation",
    "band_jsd": "Band-power JS distance",
    "coherence": "Coherence distance",
    "one_over_f_exponent": "1/f exponent distance",
    "spatial_connectivity": "Spatial connectivity distance",
}


def panel_layout(names: Sequence[str], columns: int = 5) -> list[str | None]:
    """Panel order, row-major with `columns` per row and None for an empty panel.

    The metrics without a band come first in a fixed order (unlisted ones after); each banded family then starts a
    new row, its bands ordered delta to gamma.
    """
    banded = {prefix: [n for n in names if n.startswith(prefix)] for prefix in BANDED_PREFIXES}
    in_family = {n for family in banded.values() for n in family}
    plain = [n for n in NON_BANDED_ORDER if n in names and n not in in_family]
    plain += [n for n in names if n not in in_family and n not in plain]

    def band_rank(prefix: str, name: str) -> tuple[int, int | str]:
        band = name[len(prefix) :]
        return (0, BANDS_ORDER.index(band)) if band in BANDS_ORDER else (1, band)

    def pad(panels: list[str | None]) -> list[str | None]:
        return panels + [None] * (-len(panels) % columns)

    layout: list[str | None] = list(plain)
    for prefix, family in banded.items():
        if family:
            layout = pad(layout) + sorted(family, key=lambda n: band_rank(prefix, n))
    return pad(layout)


def _check_plot_metrics(plots: DivergencePlotConfig, metrics: dict) -> None:
    unknown = [n for n in plots.metrics or [] if n not in metrics]
    if unknown:
        raise ValueError(f"divergence plots.metrics {unknown} are not divergence metrics; available: {sorted(metrics)}")


def plot_divergence(
    divergence: dict, plots: DivergencePlotConfig, formats: Sequence[str], out_dir: str | Path
) -> list[Path]:
    """rollout_divergence.<fmt>: per metric, each condition's median across contexts with its IQR shaded."""
    from matplotlib.figure import Figure

    metrics = divergence["metrics"]
    _check_plot_metrics(plots, metrics)
    names = list(metrics) if plots.metrics is None else list(plots.metrics)
    columns = 5 if len(names) > 1 else 1
    layout = panel_layout(names, columns)
    rows = max(1, len(layout) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.0 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    xlabel = "Prefix duration (s)" if divergence.get("sfreq") else "Prefix steps"
    handles: dict[str, Any] = {}
    for ax, name in zip(axes, layout):
        if name is None:
            ax.set_axis_off()
            continue
        entry = metrics[name]
        x = np.asarray(entry["x"], dtype=float)
        for line in plots.lines:
            condition = entry if line == "correct" else entry.get(CONDITION_OF_LINE[line])
            if condition is None:
                continue
            median = np.asarray(condition["median"], dtype=float)
            if not np.isfinite(median).any():
                continue
            colour = _COLOURS[line]
            (handles[line],) = ax.plot(x, median, color=colour, lw=1.8, label=_LABELS[line])
            q25, q75 = np.asarray(condition["q25"], dtype=float), np.asarray(condition["q75"], dtype=float)
            ax.fill_between(x, q25, q75, color=colour, alpha=0.2, lw=0)
        ax.set_title(_TITLES.get(name, name.replace("_", " ")), loc="left", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Correlation" if name.startswith("psd_corr") else "Distance")
        ax.grid(True, axis="y", alpha=0.25)
    if handles:
        order = [line for line in plots.lines if line in handles]
        figure.legend([handles[k] for k in order], [_LABELS[k] for k in order], loc="upper center", ncol=len(order))
    if plots.title:
        figure.suptitle(plots.title)
    # Fixed margins: tight_layout would draw the whole (often 40-panel) figure once more just to measure it.
    top = 1 - 0.6 / (3.0 * rows)
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.45 / (3.0 * rows), top=top, hspace=0.5, wspace=0.3)
    out_dir = Path(out_dir)
    stems = [plots.name] + ([DIVERGENCE_NAME] if plots.name != DIVERGENCE_NAME else [])
    paths = []
    for stem in stems:
        for fmt in formats:
            path = out_dir / f"{stem}.{fmt}"
            figure.savefig(path, dpi=100)
            paths.append(path)
    return paths
