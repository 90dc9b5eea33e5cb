"""How far apart two windows of brain signal are: the per-pair distances of the rollout evaluation (spec §5.5).

`metric_distances(left, right, config)` takes two `compute_window_metrics` results indexed to the same pairs (e.g.
`take_examples(metrics, left_index)` and `take_examples(metrics, right_index)`; for the "correct" condition left is
the generated and right the real continuation) and returns one number per pair and metric. Every metric is a distance
(0 = identical) except those in `SIMILARITY_METRICS` (`psd_corr*`, higher is better). "Channel mean" below is a mean
over the channels' finite values.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import DEFAULT_BANDS, MetricsConfig, as_metrics_config, nanmean, trapezoid

# The Jensen-Shannon distance (natural logs) of two disjoint distributions; divides the JS distances into [0, 1].
JSD_MAX = math.sqrt(math.log(2.0))
_EPS = 1e-12


def metric_names(bands=DEFAULT_BANDS) -> list[str]:
    """Every name `metric_distances` returns, in a fixed order: the unbanded metrics, then each banded family."""
    names = [
        "correlation",
        "covariance",
        "amplitude_kurtosis",
        "amplitude_tail_fraction",
        "dfa_exponent",
        "hurst_exponent",
        "one_over_f_exponent",
        "spatial_connectivity",
        "psd_jsd",
        "psd_corr",
        "band_jsd",
        "stft_magnitude",
        "stft_angle",
        "fft_magnitude",
        "fft_angle",
        "coherence",
    ]
    for family in ("psd_jsd", "psd_corr", "bandpower_ratio", "coherence"):
        names.extend(f"{family}_{band}" for band in bands)
    return names


def is_similarity_metric(name: str) -> bool:
    """Whether higher is better for `name` (the PSD correlations); every other metric is a distance."""
    return name == "psd_corr" or name.startswith("psd_corr_")


SIMILARITY_METRICS = frozenset(name for name in metric_names() if is_similarity_metric(name))


def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance sqrt(JS) with natural logs along the last axis (0 .. sqrt(ln 2)).

    Both inputs are floored at 1e-12 and renormalised first, the reference's handling of empty bins; that floor is
    why this is not scipy.spatial.distance.jensenshannon (which keeps zeros exact).
    """
    p = np.clip(p, _EPS, None)
    q = np.clip(q, _EPS, None)
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = 0.5 * (p + q)
    divergence = 0.5 * (p * (np.log(p) - np.log(m))).sum(axis=-1) + 0.5 * (q * (np.log(q) - np.log(m))).sum(axis=-1)
    return np.sqrt(np.maximum(divergence, 0.0))


def correlation_distance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`(n,)` channel mean of (1 - r) / 2 for the Pearson r of each channel's two time series `(n, C, T)`.

    A channel where either series is (nearly) flat has no correlation: its distance is 0 if the two mean-removed
    series agree (atol 1e-8), else 1.
    """
    a = left.astype(np.float64) - left.mean(axis=-1, keepdims=True, dtype=np.float64)
    b = right.astype(np.float64) - right.mean(axis=-1, keepdims=True, dtype=np.float64)
    denom = a.std(axis=-1) * b.std(axis=-1)
    defined = denom >= 1e-8
    r = np.clip(np.divide((a * b).mean(axis=-1), denom, out=np.zeros_like(denom), where=defined), -1.0, 1.0)
    flat = np.where(np.isclose(a, b, atol=1e-8, rtol=0.0).all(axis=-1), 0.0, 1.0)
    return np.where(defined, 0.5 * (1.0 - r), flat).mean(axis=-1)


def relative_l2(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`(n,)` ||l - r|| / max(||l||, ||r||, 1e-12) over all but the first axis (Frobenius for matrices)."""
    a = left.reshape(left.shape[0], -1)
    b = right.reshape(right.shape[0], -1)
    scale = np.maximum(np.maximum(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)), _EPS)
    return np.linalg.norm(a - b, axis=1) / scale


def _spectral_jsd(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Channel-mean JS distance of two `(n, C, F)` spectra, each normalised to a distribution, scaled into [0, 1]."""
    if left.shape[-1] == 0:
        return np.full(left.shape[0], np.nan)
    p = left / np.clip(left.sum(axis=-1, keepdims=True), _EPS, None)
    q = right / np.clip(right.sum(axis=-1, keepdims=True), _EPS, None)
    return nanmean(js_distance(p, q), axis=1) / JSD_MAX


def _spectral_corr(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Channel-mean Pearson correlation of two `(n, C, F)` spectra across frequency; NaN with fewer than 2 bins."""
    if left.shape[-1] < 2:
        return np.full(left.shape[0], np.nan)
    a = left.astype(np.float64) - left.mean(axis=-1, keepdims=True, dtype=np.float64)
    b = right.astype(np.float64) - right.mean(axis=-1, keepdims=True, dtype=np.float64)
    denom = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    corr = np.divide((a * b).sum(axis=-1), denom, out=np.full(denom.shape, np.nan), where=denom > 0)
    return nanmean(corr, axis=1)


def _band_jsd(freqs: np.ndarray, left: np.ndarray, right: np.ndarray, bands) -> np.ndarray:
    """Channel-mean JS distance of the band-power distributions (trapezoid power per band, an empty band 1e-12)."""
    if freqs.size == 0:
        return np.full(left.shape[0], np.nan)
    powers = []
    for side in (left, right):
        power = np.full(side.shape[:2] + (len(bands),), _EPS)
        for index, (lo, hi) in enumerate(bands.values()):
            in_band = (freqs >= lo) & (freqs < hi)
            if in_band.any():
                power[..., index] = trapezoid(side[..., in_band], freqs[in_band], axis=-1)
        power = power + _EPS
        powers.append(power / power.sum(axis=-1, keepdims=True))
    return nanmean(js_distance(*powers), axis=1) / JSD_MAX


def _log_magnitude_pair(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both magnitudes `(n, C, ...)` flattened per channel, divided by the pair's mean magnitude, in log."""
    a = left.reshape(left.shape[:2] + (-1,))
    b = right.reshape(right.shape[:2] + (-1,))
    scale = np.clip(0.5 * (np.abs(a).mean(axis=-1) + np.abs(b).mean(axis=-1)), _EPS, None)[..., None]
    return np.log(a / scale + _EPS), np.log(b / scale + _EPS)


def magnitude_wasserstein(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`(n,)` channel mean of the 1-D Wasserstein-1 distance between the two channels' log-magnitude values.

    For samples of equal size W1 is the mean gap between the sorted values (what scipy.stats.wasserstein_distance
    computes for one pair); sorting all pairs and channels at once keeps it vectorised.
    """
    if left.size == 0 or right.size == 0:
        return np.full(left.shape[0], np.nan)
    u, v = _log_magnitude_pair(left, right)
    length = min(u.shape[-1], v.shape[-1])
    gaps = np.abs(np.sort(u[..., :length], axis=-1) - np.sort(v[..., :length], axis=-1))
    return nanmean(gaps.mean(axis=-1), axis=1)


def phase_distance(left_angle, right_angle, left_magnitude, right_magnitude) -> np.ndarray:
    """`(n,)` channel mean of the wrapped phase difference, weighted by the mean magnitude, divided by pi."""
    if left_angle.size == 0:
        return np.full(left_angle.shape[0], np.nan)
    # |angle(exp(i (a - b)))|, the wrapped difference in [0, pi], without the complex round trip.
    gap = np.abs(left_angle - right_angle) % (2 * np.pi)
    gap = np.minimum(gap, 2 * np.pi - gap)
    weight = np.clip(0.5 * (left_magnitude + right_magnitude), 0.0, None)
    axes = tuple(range(2, gap.ndim))
    total = weight.sum(axis=axes)
    mean_gap = np.divide((weight * gap).sum(axis=axes), total, out=np.full(total.shape, np.nan), where=total > 0)
    return nanmean(mean_gap, axis=1) / np.pi


def _coherence_distances(left: dict, right: dict, bands) -> dict[str, np.ndarray]:
    """`coherence`: mean |coh_l - coh_r| over channel pairs i != j and frequencies; `coherence_{band}` per band."""
    n = left["signal"].shape[0]
    freqs = left.get("coherence_freqs")
    if "coherence" not in left or "coherence" not in right:
        raise ValueError(
            "metric_distances needs `coherence` in both window metrics: call compute_window_metrics(coherence=True)"
        )
    a, b = left["coherence"], right["coherence"]
    channels = a.shape[1]
    results = {"coherence": np.full(n, np.nan)} | {f"coherence_{band}": np.full(n, np.nan) for band in bands}
    if freqs is None or freqs.size == 0 or channels < 2:
        return results
    off_diagonal = ~np.eye(channels, dtype=bool)
    results["coherence"] = nanmean(nanmean(np.abs(a - b)[:, off_diagonal], axis=-1), axis=1)
    for band, (lo, hi) in bands.items():
        in_band = (freqs >= lo) & (freqs < hi)
        if in_band.any():
            gap = np.abs(nanmean(a[..., in_band], axis=-1) - nanmean(b[..., in_band], axis=-1))
            results[f"coherence_{band}"] = nanmean(gap[:, off_diagonal], axis=1)
    return results


def _check_pair(left: dict, right: dict) -> None:
    for side, metrics in (("left", left), ("right", right)):
        if not isinstance(metrics, dict) or "signal" not in metrics:
            raise ValueError(f"{side} must be the dict of compute_window_metrics (with its `signal` entry)")
    if left["signal"].shape != right["signal"].shape:
        raise ValueError(
            f"left and right windows differ in shape {left['signal'].shape} vs {right['signal'].shape}; "
            "compare windows of the same length and channel count"
        )


def metric_distances(left: dict, right: dict, config: MetricsConfig) -> dict[str, np.ndarray]:
    """Every §5.5 distance `(n_pairs,)` between paired window metrics (see the module docstring; names as in
    `metric_names(config.bands)`). NaN where a metric is undefined (e.g. a window shorter than one Welch segment)."""
    _check_pair(left, right)
    bands = as_metrics_config(config).bands
    freqs = left["psd_freqs"]
    results = {
        "correlation": correlation_distance(left["signal"], right["signal"]),
        "covariance": relative_l2(left["covariance"], right["covariance"]),
    }
    for name in (
        "amplitude_kurtosis",
        "amplitude_tail_fraction",
        "dfa_exponent",
        "hurst_exponent",
        "one_over_f_exponent",
    ):
        results[name] = nanmean(np.abs(left[name] - right[name]), axis=1)
    results["spatial_connectivity"] = np.abs(left["spatial_connectivity"] - right["spatial_connectivity"])
    psd_l, psd_r = left["psd"], right["psd"]
    results["psd_jsd"] = _spectral_jsd(psd_l, psd_r)
    results["psd_corr"] = _spectral_corr(psd_l, psd_r)
    results["band_jsd"] = _band_jsd(freqs, psd_l, psd_r, bands)
    for prefix in ("stft", "fft"):
        magnitude_l, magnitude_r = left[f"{prefix}_magnitude"], right[f"{prefix}_magnitude"]
        results[f"{prefix}_magnitude"] = magnitude_wasserstein(magnitude_l, magnitude_r)
        results[f"{prefix}_angle"] = phase_distance(
            left[f"{prefix}_angle"], right[f"{prefix}_angle"], magnitude_l, magnitude_r
        )
    coherence = _coherence_distances(left, right, bands)
    results["coherence"] = coherence.pop("coherence")
    n = psd_l.shape[0]
    ratio_l, ratio_r = left["bandpower_ratios"], right["bandpower_ratios"]
    relative = np.clip(np.abs(ratio_l - ratio_r) / np.clip(0.5 * (ratio_l + ratio_r), 1e-6, None), 0.0, 1.0)
    for index, (band, (lo, hi)) in enumerate(bands.items()):
        in_band = (freqs >= lo) & (freqs < hi)
        banded = in_band.any()
        results[f"psd_jsd_{band}"] = _spectral_jsd(psd_l[..., in_band], psd_r[..., in_band]) if banded else _nan(n)
        results[f"psd_corr_{band}"] = _spectral_corr(psd_l[..., in_band], psd_r[..., in_band])
        results[f"bandpower_ratio_{band}"] = nanmean(relative[..., index], axis=1)
    results.update(coherence)
    return {name: results[name] for name in metric_names(bands)}


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)
