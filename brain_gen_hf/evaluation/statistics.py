"""Paired statistics on the rollout divergence curves (spec pipeline §5.6 step 9).

Each comparison pits a control condition (a swap or the real-vs-real baseline) against the correct pairing, context
by context: `delta = control - correct` for distances and `correct - control` for similarities, so a positive delta
always means the model used its context. Reported per metric and horizon: the median delta, the probability of
improvement, a bootstrap confidence interval of the median and a Wilcoxon signed-rank test.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config_keys import reject_unknown
from .distances import is_similarity_metric

STATS_JSON = "rollout_divergence_stats.json"
STATS_MD = "rollout_divergence_stats.md"

PAPER_COMPARISONS = ("correct_vs_target_swap", "correct_vs_prompt_swap", "correct_vs_real_real")

_RIGHT_MINUS_LEFT = {"right_minus_left", "right", "correct_minus_control", "gen_minus_control"}
_LEFT_MINUS_RIGHT = {"left_minus_right", "left", "control_minus_correct", "control_minus_gen"}


def comparison_conditions(name: str) -> tuple[str, str]:
    """Map a comparison name to its (left, right) conditions, the spec's substring rules in their order."""
    key = name.strip().lower()
    real = "real" in key or "baseline" in key
    if "prompt" in key and real:
        return "baseline", "prompt_swap"
    if "target" in key and real:
        return "baseline", "target_swap"
    if "prompt" in key:
        return "prompt_swap", "gen"
    if "target" in key:
        return "target_swap", "gen"
    if real:
        return "baseline", "gen"
    raise ValueError(
        f"unknown comparison {name!r}: a name must mention 'target' (target swap), 'prompt' (prompt swap) and/or "
        f"'real'/'baseline' (real-vs-real), e.g. {list(PAPER_COMPARISONS)}"
    )


def _delta_direction(delta: str | None) -> str | None:
    if delta is None:
        return None
    token = str(delta).strip().lower()
    if token in _RIGHT_MINUS_LEFT:
        return "right"
    if token in _LEFT_MINUS_RIGHT:
        return "left"
    raise ValueError(
        f"unknown delta direction {delta!r}; expected one of {sorted(_RIGHT_MINUS_LEFT | _LEFT_MINUS_RIGHT)}"
    )


@dataclass
class BootstrapConfig:
    """Percentile bootstrap of the median delta: `n_boot` resamples of the contexts with replacement."""

    n_boot: int = 1000
    seed: int = 0
    confidence_level: float = 0.95

    def __post_init__(self):
        if int(self.n_boot) != self.n_boot or self.n_boot < 1:
            raise ValueError(f"stats inference.ci.n_boot must be a positive integer, got {self.n_boot!r}")
        if not 0 < self.confidence_level < 1:
            raise ValueError(f"stats inference.ci.confidence_level must lie in (0, 1), got {self.confidence_level}")


@dataclass
class InferenceConfig:
    """Which inference to attach to each comparison: a bootstrap CI (`ci`) and/or a Wilcoxon test (`wilcoxon`)."""

    ci: BootstrapConfig | None = field(default_factory=BootstrapConfig)
    wilcoxon: bool = True

    @classmethod
    def from_dict(cls, values: dict | None, section: str = "stats.inference") -> InferenceConfig:
        if values is None:
            return cls()
        reject_unknown(section, values, {"ci", "test"})
        ci = values.get("ci")
        if ci is not None:
            reject_unknown(f"{section}.ci", ci, {"method", "n_boot", "seed", "confidence_level"})
            method = ci.get("method", "bootstrap")
            if method != "bootstrap":
                raise ValueError(f"{section}.ci.method must be 'bootstrap', got {method!r}")
            ci = BootstrapConfig(**{k: v for k, v in ci.items() if k != "method"})
        test = values.get("test")
        if test is not None:
            reject_unknown(f"{section}.test", test, {"type"})
            if test.get("type") != "wilcoxon_signed_rank":
                raise ValueError(f"{section}.test.type must be 'wilcoxon_signed_rank', got {test.get('type')!r}")
        return cls(ci=ci, wilcoxon=test is not None)

    def to_dict(self) -> dict:
        out: dict = {}
        if self.ci is not None:
            out["ci"] = {"method": "bootstrap", **dataclasses.asdict(self.ci)}
        if self.wilcoxon:
            out["test"] = {"type": "wilcoxon_signed_rank"}
        return out


@dataclass
class Comparison:
    name: str
    delta: str | None = None  # None: the metric decides (distance or similarity)
    inference: InferenceConfig | None = None  # None: the stats-level inference

    def __post_init__(self):
        comparison_conditions(self.name)
        _delta_direction(self.delta)

    @property
    def conditions(self) -> tuple[str, str]:
        return comparison_conditions(self.name)

    def to_dict(self) -> str | dict:
        if self.delta is None and self.inference is None:
            return self.name
        out: dict = {"name": self.name, "delta": self.delta}
        if self.inference is not None:
            out["inference"] = self.inference.to_dict()
        return out


@dataclass
class StatsConfig:
    """Settings of the divergence statistics; `from_dict` reads the spec's `stats` block.

    `horizons` is "all" (every prefix point) or a list of horizons in seconds (steps when the rollouts have no
    sampling rate), each snapped to the nearest prefix point. `metrics` None means every metric. `inference`
    defaults to a 1000-resample bootstrap CI (seed 0) and the Wilcoxon test; `inference: {}` turns both off.
    """

    comparisons: list[Comparison] = field(default_factory=lambda: [Comparison(n) for n in PAPER_COMPARISONS])
    horizons: str | list[float] = "all"
    metrics: list[str] | None = None
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    unit_of_replication: str = "context"

    def __post_init__(self):
        if self.horizons is None:  # as in the reference: no horizons means every prefix point
            self.horizons = "all"
        if self.metrics is not None and (
            isinstance(self.metrics, str) or not all(isinstance(m, str) for m in self.metrics)
        ):
            raise ValueError(f"stats metrics must be a list of metric names (or null for all), got {self.metrics!r}")
        if isinstance(self.horizons, str):
            if self.horizons.lower() != "all":
                raise ValueError(f"stats horizons must be 'all' or a list of numbers, got {self.horizons!r}")
        else:
            values = [self.horizons] if isinstance(self.horizons, (int, float)) else list(self.horizons)
            if not values or any(isinstance(h, bool) or not isinstance(h, (int, float)) for h in values):
                raise ValueError(f"stats horizons must be 'all' or a list of numbers, got {self.horizons!r}")
            self.horizons = [float(h) for h in values]

    @classmethod
    def from_dict(cls, values: dict | None) -> StatsConfig:
        values = {} if values is None else values
        known = {f.name for f in dataclasses.fields(cls)} | {"primary_horizon_s", "paired"}
        reject_unknown("stats", values, known)
        values = dict(values)
        if "primary_horizon_s" in values:
            if "horizons" in values:
                raise ValueError("stats: give either horizons or its alias primary_horizon_s, not both")
            values["horizons"] = values.pop("primary_horizon_s")
        if not values.pop("paired", True):
            raise ValueError("stats.paired: only paired comparisons (by context) are implemented; set it to true")
        inference = InferenceConfig.from_dict(values.pop("inference", None))
        comparisons = values.pop("comparisons", None)
        if isinstance(comparisons, str):
            comparisons = [comparisons]
        if comparisons is not None:
            comparisons = [_comparison_from_entry(entry, i) for i, entry in enumerate(comparisons)]
            values["comparisons"] = comparisons
        return cls(inference=inference, **values)

    def to_dict(self) -> dict:
        """The `stats` block that `from_dict` reads back into this config."""
        return {
            "comparisons": [c.to_dict() for c in self.comparisons],
            "horizons": self.horizons if isinstance(self.horizons, str) else list(self.horizons),
            "metrics": None if self.metrics is None else list(self.metrics),
            "inference": self.inference.to_dict(),
            "unit_of_replication": self.unit_of_replication,
        }


def _comparison_from_entry(entry: Any, index: int) -> Comparison:
    if isinstance(entry, str):
        return Comparison(entry)
    section = f"stats.comparisons[{index}]"
    reject_unknown(section, entry, {"name", "statistic", "paired", "inference", "delta"})
    if "name" not in entry:
        raise ValueError(f"{section} needs a 'name', e.g. 'correct_vs_target_swap'")
    if not entry.get("paired", True):
        raise ValueError(f"{section}.paired: only paired comparisons (by context) are implemented")
    statistic = entry.get("statistic") or {}
    # `report` is accepted for reference configs; every statistic is always reported.
    reject_unknown(f"{section}.statistic", statistic, {"report", "delta"})
    delta = statistic.get("delta", entry.get("delta"))
    inference = entry.get("inference")
    if inference is not None:
        inference = InferenceConfig.from_dict(inference, f"{section}.inference")
    return Comparison(str(entry["name"]), delta=delta, inference=inference)


def snap_horizons(horizons: str | list[float], x: np.ndarray) -> list[tuple[int, float]]:
    """(index, x value) of each requested horizon: every point for "all", else the nearest prefix point."""
    if isinstance(horizons, str):
        return [(i, float(v)) for i, v in enumerate(x)]
    out = []
    for horizon in horizons:
        index = int(np.nanargmin(np.abs(x - horizon)))
        out.append((index, float(x[index])))
    return out


def bootstrap_median_ci(deltas: np.ndarray, config: BootstrapConfig) -> tuple[float, float]:
    """Percentile bootstrap CI of the median of `deltas` (finite values), seeded by `config.seed`.

    The reference resamples the deltas with replacement `n_boot` times, takes each resample's median and reports
    the 2.5/97.5 percentiles (linear interpolation); scipy's percentile bootstrap is that same definition.
    """
    if deltas.size == 1:  # every resample of one value is that value (scipy needs two observations)
        return float(deltas[0]), float(deltas[0])
    from scipy.stats import bootstrap

    seed_kw = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"  # scipy < 1.15
    result = bootstrap(
        (deltas,),
        np.median,
        n_resamples=config.n_boot,
        confidence_level=config.confidence_level,
        method="percentile",
        vectorized=True,
        **{seed_kw: np.random.default_rng(config.seed)},
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def wilcoxon_test(deltas: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of scipy's two-sided Wilcoxon signed-rank test; NaNs where scipy cannot test."""
    import warnings

    from scipy.stats import wilcoxon

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-zero or tiny samples: the result is NaN anyway
            result = wilcoxon(deltas)
    except ValueError:
        return math.nan, math.nan
    return float(result.statistic), float(result.pvalue)


def _condition_entry(metric_entry: dict, condition: str) -> dict | None:
    return metric_entry if condition == "gen" else metric_entry.get(condition)


def _paired_curves(left: dict, right: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    for entry, name in ((left, "left"), (right, "right")):
        if "runs" not in entry:
            raise ValueError(
                f"divergence metric {metric!r} ({name} condition) has no per-context 'runs': pass the dict returned "
                f"by divergence_analysis (rollout_divergence.json keeps only the aggregates)"
            )
    left_index = {int(c): i for i, c in enumerate(left["context_ids"])}
    right_index = {int(c): i for i, c in enumerate(right["context_ids"])}
    common = sorted(set(left_index) & set(right_index))
    left_runs = np.asarray([left["runs"][left_index[c]] for c in common], dtype=np.float64)
    right_runs = np.asarray([right["runs"][right_index[c]] for c in common], dtype=np.float64)
    return left_runs, right_runs


def divergence_statistics(
    divergence: dict, config: StatsConfig | dict | None = None, out_dir: str | Path | None = None
) -> dict:
    """Paired control-vs-correct statistics of a `divergence_analysis` result.

    Returns `{unit_of_replication, horizon_units, comparisons: [...]}`; with `out_dir`, writes it as
    rollout_divergence_stats.json, and the table rollout_divergence_stats.md when there are results.
    """
    if not isinstance(config, StatsConfig):
        config = StatsConfig.from_dict(config)
    if "metrics" not in divergence:
        raise ValueError("divergence_statistics needs the dict returned by divergence_analysis (no 'metrics' key)")
    metrics = divergence["metrics"]
    names = list(metrics) if config.metrics is None else config.metrics
    unknown = [m for m in names if m not in metrics]
    if unknown:
        raise ValueError(f"stats.metrics {unknown} are not divergence metrics; available: {sorted(metrics)}")
    results = []
    for metric in names:
        entry = metrics[metric]
        x = np.asarray(entry["x"], dtype=np.float64)
        horizons = snap_horizons(config.horizons, x)
        for comparison in config.comparisons:
            left_key, right_key = comparison.conditions
            left, right = _condition_entry(entry, left_key), _condition_entry(entry, right_key)
            if left is None or right is None:  # that control was not run
                continue
            left_runs, right_runs = _paired_curves(left, right, metric)
            if left_runs.shape[0] == 0:
                continue
            direction = _delta_direction(comparison.delta)
            if direction is None:
                direction = "right" if is_similarity_metric(metric) else "left"
            deltas_all = right_runs - left_runs if direction == "right" else left_runs - right_runs
            inference = comparison.inference or config.inference
            for index, horizon in horizons:
                deltas = deltas_all[:, index]
                deltas = deltas[np.isfinite(deltas)]
                if deltas.size == 0:
                    continue
                row = {
                    "metric": metric,
                    "comparison": comparison.name,
                    # the reference's field names: `control` is the left condition, `baseline` the right one
                    "control": left_key,
                    "baseline": right_key,
                    "left": left_key,
                    "right": right_key,
                    "horizon": horizon,
                    "n": int(deltas.size),
                    "median_delta": float(np.median(deltas)),
                    "prob_improvement": float(np.mean(deltas > 0)),
                }
                if inference.ci is not None:
                    low, high = bootstrap_median_ci(deltas, inference.ci)
                    row["ci"] = {"method": "bootstrap", "n_boot": inference.ci.n_boot, "low": low, "high": high}
                if inference.wilcoxon:
                    statistic, p_value = wilcoxon_test(deltas)
                    row["test"] = {"type": "wilcoxon_signed_rank", "statistic": statistic, "p_value": p_value}
                results.append(row)
    payload = {
        "unit_of_replication": config.unit_of_replication,
        "horizon_units": "seconds" if divergence.get("sfreq") else "steps",
        "comparisons": results,
    }
    if out_dir is not None:
        write_statistics(payload, out_dir)
    return payload


def _fmt(value: float | None, spec: str) -> str:
    return "nan" if value is None or not math.isfinite(value) else format(value, spec)


def statistics_table(comparisons: list[dict]) -> str:
    """The Markdown table of rollout_divergence_stats.md."""
    lines = [
        "| metric | comparison | horizon | n | median_delta | prob_improvement | ci_low | ci_high | p_value |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in comparisons:
        ci, test = row.get("ci"), row.get("test")
        cells = [
            row["metric"],
            row["comparison"],
            _fmt(row["horizon"], ".3f"),
            str(row["n"]),
            _fmt(row["median_delta"], ".4f"),
            _fmt(row["prob_improvement"], ".3f"),
            _fmt(ci["low"], ".4f") if ci else "",
            _fmt(ci["high"], ".4f") if ci else "",
            _fmt(test["p_value"], ".3g") if test else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_statistics(payload: dict, out_dir: str | Path) -> None:
    from .report import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / STATS_JSON, payload)
    if payload["comparisons"]:
        (out_dir / STATS_MD).write_text(statistics_table(payload["comparisons"]), encoding="utf-8")
