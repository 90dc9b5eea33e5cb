"""Does the generated signal stay inside the envelope of real signal over a long rollout? (spec pipeline §5.7)

The continuations (context dropped) of every generated and every real run are cut into windows; each window gets the
`compute_summaries` numbers (PSD centroid, 1/f exponent, covariance entropy, band-power ratios, ...). Per window and
metric the real runs give an envelope (5-95 % and 25-75 % quantiles) and the generated runs a median and IQR; the
out-of-envelope rate is the share of generated runs outside the real 5-95 % band, and the IQR ratio
IQR(generated) / IQR(real) says whether the rollouts are as diverse as the recordings (1) or collapsed (< 1).
Writes `rollout_window_metrics.json` and `rollout_window_metrics.png`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import MetricsConfig, as_metrics_config, compute_summaries

# The paper's main sliding-window panels; `plot_metrics: main` selects them.
MAIN_WINDOW_METRICS = ("psd_centroid", "one_over_f_exponent", "cov_eig_entropy", "bandpower_ratio_alpha")
# Panel order of the figure; metrics not listed follow, band-power ratios last.
_PANEL_ORDER = (
    "spatial_connectivity",
    "one_over_f_exponent",
    "dfa_exponent",
    "hurst_exponent",
    "amplitude_kurtosis",
    "amplitude_tail_fraction",
    "cov_eig_entropy",
    "cov_eig_top_frac",
    "psd_entropy",
    "psd_centroid",
    "token_entropy",
    "token_unique_rate",
    "token_repetition_rate",
)
_ENVELOPE_MODES = {"mean": "mean", "avg": "mean", "average": "mean", "true": "mean", "per_feature": "per_feature"}
_OFF = {"none", "off", "false"}
# Reference config keys read as one of ours, first listed first (a steps key beats its seconds key).
_WINDOW_KEYS = (
    ("window_length_steps", "window_length_s"),
    ("window_length_steps", "window_length_seconds"),
    ("window_metrics_window_steps", "window_metrics_window_seconds"),
    ("divergence_window_steps", "divergence_window_seconds"),
)
_STRIDE_KEYS = (
    ("stride_steps", "stride_s"),
    ("stride_steps", "stride_seconds"),
    ("divergence_stride_steps", "divergence_stride_seconds"),
)
_DEFAULT_WINDOW_S = 30.0
# Windows are stacked into one batch for `compute_summaries`; this bounds that batch (values, ~4 bytes each).
_MAX_BATCH_VALUES = 2**23


def _positive(name: str, value, integer: bool) -> None:
    if value is None:
        return
    kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"sliding_window.{name} must be a positive {'integer' if integer else 'number'}, got {value!r}"
        )


@dataclass
class SlidingWindowConfig:
    """Settings of the sliding-window analysis (the paper: 30 s windows every 5 s; the small example 5 s / 2.5 s).

    window_length_steps / window_length_s: the window (steps win over seconds); default 30 s.
    stride_steps / stride_s: the step between window starts; default one window (no overlap).
    out_of_envelope_rate: "mean" (per-metric rates and their mean curve), "per_feature" (per-metric only) or None.
        The reference's code leaves it off unless configured; every paper config sets "mean", so that is the default.
    plot: write rollout_window_metrics.png.
    plot_metrics: the metrics drawn (None: all; "main": the paper's four); the JSON always holds every metric.
    dpi: the figure's resolution (the reference's 300; a 19-panel figure takes seconds to render at 300).
    """

    window_length_steps: int | None = None
    window_length_s: float | None = None
    stride_steps: int | None = None
    stride_s: float | None = None
    out_of_envelope_rate: str | None = "mean"
    plot: bool = True
    plot_metrics: list[str] | None = None
    dpi: int = 300

    def __post_init__(self):
        for name in ("window_length_steps", "stride_steps"):
            _positive(name, getattr(self, name), integer=True)
        for name in ("window_length_s", "stride_s"):
            _positive(name, getattr(self, name), integer=False)
        _positive("dpi", self.dpi, integer=True)
        mode = self.out_of_envelope_rate
        if mode is True or isinstance(mode, str) and mode.strip().lower() in _ENVELOPE_MODES:
            self.out_of_envelope_rate = _ENVELOPE_MODES["true" if mode is True else mode.strip().lower()]
        elif mode is False or mode is None or isinstance(mode, str) and mode.strip().lower() in _OFF:
            self.out_of_envelope_rate = None
        else:
            raise ValueError(f"sliding_window.out_of_envelope_rate must be 'mean', 'per_feature' or null, got {mode!r}")
        if not isinstance(self.plot, bool):
            raise ValueError(f"sliding_window.plot must be true or false, got {self.plot!r}")
        if self.plot_metrics == "main":
            self.plot_metrics = list(MAIN_WINDOW_METRICS)
        elif isinstance(self.plot_metrics, str):
            self.plot_metrics = [self.plot_metrics]
        if self.plot_metrics is not None:
            if not isinstance(self.plot_metrics, (list, tuple)) or not all(
                isinstance(name, str) for name in self.plot_metrics
            ):
                raise ValueError(
                    f"sliding_window.plot_metrics must be a list of metric names or 'main', got {self.plot_metrics!r}"
                )
            self.plot_metrics = list(self.plot_metrics)

    @classmethod
    def from_dict(cls, values: dict | None) -> SlidingWindowConfig:
        """Build from a mapping; the reference's key names (`window_length_seconds`, `divergence_window_steps`,
        `plot_rollout_window_metrics`, `plots: {metrics: [...]}`, ...) are read too."""
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ValueError(f"the sliding_window config must be a mapping, got {type(values).__name__}")  # noqa: TRY004
        values, kwargs = dict(values), {}
        for fields, pairs in (
            (("window_length_steps", "window_length_s"), _WINDOW_KEYS),
            (("stride_steps", "stride_s"), _STRIDE_KEYS),
        ):
            chosen = next(
                (
                    (values.get(steps), values.get(seconds))
                    for steps, seconds in pairs
                    if values.get(steps) is not None or values.get(seconds) is not None
                ),
                None,
            )
            for key in {key for pair in pairs for key in pair}:
                values.pop(key, None)
            if chosen is not None:
                kwargs.update(zip(fields, chosen))
        for ours, theirs in (("plot", "plot_rollout_window_metrics"), ("plot_metrics", "plots")):
            if ours in values and theirs in values:
                raise ValueError(f"sliding_window sets both '{ours}' and its alias '{theirs}'; keep one")
        if "plot_rollout_window_metrics" in values:
            kwargs["plot"] = values.pop("plot_rollout_window_metrics")
        plots = values.pop("plots", None)
        if plots is not None:
            plots = plots[0] if isinstance(plots, list) and plots else plots
            if not isinstance(plots, dict) or set(plots) - {"metrics"}:
                raise ValueError(f"sliding_window.plots must be {{metrics: [...]}}, got {plots!r}")
            kwargs["plot_metrics"] = plots.get("metrics")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown sliding_window config keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**values, **kwargs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def window_steps(self, sfreq: float) -> int:
        return self._steps(
            self.window_length_steps, self.window_length_s, max(5, int(_DEFAULT_WINDOW_S * sfreq)), sfreq
        )

    def stride(self, sfreq: float, window: int) -> int:
        return self._steps(self.stride_steps, self.stride_s, window, sfreq)

    @staticmethod
    def _steps(steps: int | None, seconds: float | None, default: int, sfreq: float) -> int:
        if steps is not None:
            return int(steps)
        if seconds is not None:
            # The reference truncates seconds * sfreq; the epsilon keeps e.g. 0.29 s at 100 Hz at 29 steps.
            return max(1, int(seconds * sfreq + 1e-9))
        return int(default)


def out_of_envelope_rate(generated: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """`(W,)` share of generated runs `(R, W)` outside [lower, upper] per window, over the finite entries only."""
    finite = np.isfinite(generated) & np.isfinite(lower) & np.isfinite(upper)
    with np.errstate(invalid="ignore"):
        outside = ((generated < lower) | (generated > upper)) & finite
    count = finite.sum(axis=0)
    return np.divide(outside.sum(axis=0), count, out=np.full(count.shape, np.nan), where=count > 0)


def iqr_ratio(generated_q25, generated_q75, target_q25, target_q75) -> np.ndarray:
    """IQR(generated) / IQR(real) per window; NaN where the real IQR is 0."""
    real = np.asarray(target_q75) - np.asarray(target_q25)
    gen = np.asarray(generated_q75) - np.asarray(generated_q25)
    return np.divide(gen, real, out=np.full(real.shape, np.nan), where=real > 0)


def _nanmean_curves(curves: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(curves)
    finite = np.isfinite(stacked)
    count = finite.sum(axis=0)
    return np.divide(
        np.where(finite, stacked, 0.0).sum(axis=0), count, out=np.full(count.shape, np.nan), where=count > 0
    )


def _percentiles(values: np.ndarray, qs: tuple[int, ...]) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window gives NaN, as intended
        levels = np.nanpercentile(values, qs, axis=0)
    return {f"q{q:02d}": level for q, level in zip(qs, levels)}


def window_summaries(runs: np.ndarray, config: MetricsConfig, window: int, stride: int) -> dict[str, np.ndarray]:
    """`compute_summaries` of every window of every run: {metric: (R, n_windows)}."""
    total = runs.shape[-1]
    starts = np.arange(0, total - window + 1, stride)
    views = np.lib.stride_tricks.sliding_window_view(runs, window, axis=-1)[:, :, starts]  # (R, C, n, W), no copy
    per_chunk = max(1, _MAX_BATCH_VALUES // (runs.shape[0] * runs.shape[1] * window))
    curves: dict[str, list[np.ndarray]] = {}
    for first in range(0, starts.size, per_chunk):
        chunk = views[:, :, first : first + per_chunk]  # (R, C, n, W)
        batch = np.ascontiguousarray(chunk.transpose(0, 2, 1, 3)).reshape(-1, runs.shape[1], window)
        for name, values in compute_summaries(batch, config).items():
            curves.setdefault(name, []).append(values.reshape(runs.shape[0], chunk.shape[2]))
    return {name: np.concatenate(parts, axis=1) for name, parts in curves.items()}


def _continuations(result) -> tuple[np.ndarray, np.ndarray]:
    generated, target = np.asarray(result.generated), np.asarray(result.target)
    if generated.ndim != 3 or generated.shape != target.shape:
        raise ValueError(
            f"result.generated {generated.shape} and result.target {target.shape} must both be (runs, channels, time)"
        )
    context = int(result.context_steps)
    if 0 <= context < generated.shape[-1]:
        generated, target = generated[..., context:], target[..., context:]
    return generated, target


def sliding_window_analysis(
    result,
    config: SlidingWindowConfig | dict | None = None,
    metrics_config: MetricsConfig | dict | None = None,
    sfreq: float | None = None,
    out_dir: str | Path | None = None,
    plot: bool = True,
) -> dict:
    """The §5.7 sliding-window analysis of a `RolloutResult` (anything with generated/target `(R, C, T)`,
    context_steps and sfreq); returns the `rollout_window_metrics.json` content and, with `out_dir`, writes it and
    (when `plot` and `config.plot`) `rollout_window_metrics.png`.
    """
    config = config if isinstance(config, SlidingWindowConfig) else SlidingWindowConfig.from_dict(config)
    sfreq = float(result.sfreq if sfreq is None else sfreq)
    if not math.isfinite(sfreq) or sfreq <= 0:
        raise ValueError(f"sliding-window analysis needs a positive sampling rate, got sfreq={sfreq}")
    metrics_config = as_metrics_config(metrics_config or {}).with_fs(sfreq)
    generated, target = _continuations(result)
    window = config.window_steps(sfreq)
    stride = config.stride(sfreq, window)
    length = generated.shape[-1]
    if length < window:
        raise ValueError(
            f"the continuations are {length} samples ({length / sfreq:g} s) long, shorter than one sliding window of "
            f"{window} samples; lower sliding_window.window_length_s or generate longer rollouts"
        )
    runs = generated.shape[0]
    curves = window_summaries(np.concatenate([generated, target]), metrics_config, window, stride)
    n_windows = next(iter(curves.values())).shape[1]
    x = (np.arange(n_windows) * stride + window) / sfreq

    metrics, envelope, diversity = {}, {}, {}
    for name, values in curves.items():
        gen, real = values[:runs], values[runs:]
        if not (np.isfinite(gen).any() or np.isfinite(real).any()):
            continue
        g = _percentiles(gen, (25, 50, 75))
        r = _percentiles(real, (5, 25, 50, 75, 95))
        metrics[name] = {
            "generated": {"median": g["q50"], "q25": g["q25"], "q75": g["q75"]},
            "target": r,
        }
        if config.out_of_envelope_rate is not None:
            envelope[name] = out_of_envelope_rate(gen, r["q05"], r["q95"])
        ratio = iqr_ratio(g["q25"], g["q75"], r["q25"], r["q75"])
        if np.isfinite(ratio).any():
            diversity[name] = ratio
    if not metrics:
        raise ValueError("no sliding-window metric is finite on these rollouts (are the windows long enough?)")

    payload = {
        "window_steps": int(window),
        "window_seconds": window / sfreq,
        "stride_steps": int(stride),
        "stride_seconds": stride / sfreq,
        "sfreq": sfreq,
        "x": x.tolist(),
        "metrics": {
            name: {side: {key: curve.tolist() for key, curve in stats.items()} for side, stats in entry.items()}
            for name, entry in metrics.items()
        },
    }
    if envelope:
        mean = _nanmean_curves(list(envelope.values())) if config.out_of_envelope_rate == "mean" else None
        payload["out_of_envelope_rate"] = {
            "mode": config.out_of_envelope_rate,
            "per_metric": {name: rate.tolist() for name, rate in envelope.items()},
            "mean": None if mean is None else mean.tolist(),
        }
    if diversity:
        payload["diversity_proxy"] = {
            "metric": "iqr_ratio",
            "per_metric": {name: ratio.tolist() for name, ratio in diversity.items()},
            "mean": _nanmean_curves(list(diversity.values())).tolist(),
        }
    if out_dir is not None:
        from .report import write_json

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "rollout_window_metrics.json", payload)
        if plot and config.plot:
            plot_window_metrics(payload, out_dir / "rollout_window_metrics.png", config.plot_metrics, dpi=config.dpi)
    return payload


def _panel_names(available: list[str], chosen: list[str] | None) -> list[str]:
    if chosen is not None:
        unknown = [name for name in chosen if name not in available]
        if unknown:
            raise ValueError(f"sliding_window.plot_metrics {unknown} are not window metrics; available: {available}")
        return list(chosen)
    bandpower = [name for name in available if name.startswith("bandpower_ratio_")]
    ordered = [name for name in _PANEL_ORDER if name in available]
    return ordered + [n for n in available if n not in ordered and n not in bandpower] + bandpower


# (title, y label, y limits, colour) of the two summary panels.
_SUMMARY_PANELS = (
    ("Out-of-envelope rate (mean)", "Fraction outside", (0, 1), "#D1495B"),
    ("IQR(gen)/IQR(real) mean", "IQR ratio", None, "#2E8B57"),
)


def summary_curves(payload: dict, names: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The out-of-envelope mean and IQR-ratio mean curves over `names` only (the plotted metrics); None when absent.

    The out-of-envelope curve exists in "mean" mode only, as in the reference."""
    curves = []
    for key, wanted in (("out_of_envelope_rate", "mean"), ("diversity_proxy", "mean")):
        entry = payload.get(key)
        rows = [entry["per_metric"][n] for n in names if n in entry["per_metric"]] if entry else []
        curve = _nanmean_curves(list(_floats(rows))) if rows and entry.get(wanted) is not None else None
        curves.append(curve if curve is not None and np.isfinite(curve).any() else None)
    return curves[0], curves[1]


def plot_window_metrics(payload: dict, path: str | Path, metrics: list[str] | None = None, dpi: int = 300) -> Path:
    """The envelope figure of a `sliding_window_analysis` payload: summary curves (out-of-envelope mean, IQR-ratio
    mean, over the plotted metrics), then per metric the real 5-95 % / 25-75 % bands, real median (dashed) and
    generated median with its IQR. Always PNG (300 dpi by default), as in the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = _panel_names(list(payload["metrics"]), metrics)
    x = np.asarray(payload["x"], dtype=float)
    summaries = [
        (*panel, curve) for panel, curve in zip(_SUMMARY_PANELS, summary_curves(payload, names)) if curve is not None
    ]
    panels = len(summaries) + len(names)
    cols = 3 if panels > 8 else 2 if panels > 1 else 1
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.4 * rows), squeeze=False)
    flat = axes.ravel()
    real, gen = "#5F5F5F", "#1B6DA8"
    for ax, (title, ylabel, ylim, colour, curve) in zip(flat, summaries):
        ax.plot(x, curve, color=colour, lw=2.2)
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
    for ax, name in zip(flat[len(summaries) :], names):
        entry = payload["metrics"][name]
        t, g = (
            {k: _floats(v) for k, v in entry["target"].items()},
            {k: _floats(v) for k, v in entry["generated"].items()},
        )
        ax.fill_between(x, t["q05"], t["q95"], color=real, alpha=0.18)
        ax.fill_between(x, t["q25"], t["q75"], color=real, alpha=0.35)
        ax.plot(x, t["q50"], color=real, lw=1.6, ls="--")
        ax.plot(x, g["median"], color=gen, lw=2.1)
        ax.fill_between(x, g["q25"], g["q75"], color=gen, alpha=0.22)
        band = name.removeprefix("bandpower_ratio_")
        ax.set_title(f"bandpower ratio ({band})" if band != name else name.replace("_", " "), loc="left")
    for index, ax in enumerate(flat):
        if index >= panels:
            ax.axis("off")
        elif index + cols >= panels:  # the lowest panel of its column
            ax.set_xlabel("Rollout time (s)")
    legend = [
        Patch(facecolor=real, alpha=0.18, label="Real 5-95%"),
        Patch(facecolor=real, alpha=0.35, label="Real 25-75%"),
        Line2D([0], [0], color=real, ls="--", lw=1.6, label="Real median"),
        Line2D([0], [0], color=gen, lw=2.1, label="Generated median"),
        Patch(facecolor=gen, alpha=0.22, label="Generated 25-75%"),
    ] + [Line2D([0], [0], color=colour, lw=2.2, label=title) for title, _, _, colour, _ in summaries]
    fig.legend(handles=legend, loc="upper center", ncol=4, frameon=False)
    # Fixed margins (in inches) rather than tight_layout, whose extra text-measuring pass doubles the render time.
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.6 / height, top=1 - 0.9 / height, wspace=0.3, hspace=0.45)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _floats(values) -> np.ndarray:
    """JSON curves (None for NaN) back to float arrays."""
    return np.array(values, dtype=float) if not isinstance(values, np.ndarray) else values.astype(float)
