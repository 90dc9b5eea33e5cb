"""What a window of brain signal looks like: the per-window metrics of the rollout evaluation (spec pipeline §5.5).

`compute_window_metrics` measures every example of a `(B, C, T)` batch at once (covariance, amplitude statistics,
spectra, scaling exponents, within-signal coherence); `compute_summaries` reduces a batch to one number per example and
metric for the sliding-window envelopes; `distances.metric_distances` compares two sets of window metrics.

Every definition is the reference's. Where a library offers a metric of the same name with another definition it is
not used, and the function says why (DFA, 1/f exponent, coherence).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}

# Entries of `compute_window_metrics` that describe the frequency grid, not one example: `take_examples` keeps them.
SHARED_KEYS = ("psd_freqs", "stft_freqs", "coherence_freqs")

# A standard deviation at or below these counts as a flat channel (kurtosis / tail fraction undefined; the DFA
# z-score leaves the series unscaled).
_FLAT_VARIANCE = 1e-12
_FLAT_STD = 1e-12
_DFA_STD_FLOOR = 1e-6


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class MetricsConfig:
    """Settings of the per-window metrics (spec §5.5 `RolloutMetricsConfig`; the paper uses fs 100, fmin 1, fmax 50).

    fs: sampling rate in Hz; None leaves the spectral metrics empty (NaN distances), as in the reference.
    fmin / fmax: the frequency range kept of every spectrum; fmax None means 0.95 * fs / 2.
    welch_nperseg_s / welch_noverlap_frac: Welch segment length (s) and overlap; also the coherence segments.
    stft_nperseg_s / stft_noverlap_frac: the same for the STFT.
    tail_sigma: the amplitude tail threshold, in standard deviations.
    dfa_scales / hurst_lags: how many log-spaced scales (lags); the bounds come from `*_scale` / `*_lag` (steps) or,
        when those are unset, `*_s` (seconds); with neither, from fractions of the window length.
    bands: name -> (lo, hi) Hz, membership lo <= f < hi.
    """

    fs: float | None = None
    fmin: float = 0.5
    fmax: float | None = None
    welch_nperseg_s: float = 1.0
    welch_noverlap_frac: float = 0.5
    stft_nperseg_s: float = 1.0
    stft_noverlap_frac: float = 0.75
    tail_sigma: float = 3.0
    dfa_scales: int = 8
    dfa_min_scale_s: float | None = 0.1
    dfa_max_scale_s: float | None = 2.0
    dfa_min_scale: int | None = None
    dfa_max_scale: int | None = None
    hurst_lags: int = 8
    hurst_min_lag_s: float | None = 0.1
    hurst_max_lag_s: float | None = 2.0
    hurst_min_lag: int | None = None
    hurst_max_lag: int | None = None
    bands: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_BANDS))

    def __post_init__(self):
        def number(name, *, positive=False, allow_none=False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"metrics.{name} must be a finite number, got {value!r}")
            if positive and not value > 0:
                raise ValueError(f"metrics.{name} must be positive, got {value!r}")

        number("fs", positive=True, allow_none=True)
        number("fmin")
        if self.fmin < 0:
            raise ValueError(f"metrics.fmin must be >= 0 Hz, got {self.fmin!r}")
        number("fmax", positive=True, allow_none=True)
        if self.fmax is not None and not self.fmax > self.fmin:
            raise ValueError(f"metrics.fmax ({self.fmax}) must be above metrics.fmin ({self.fmin})")
        for name in ("welch_nperseg_s", "stft_nperseg_s", "tail_sigma"):
            number(name, positive=True)
        for name in ("welch_noverlap_frac", "stft_noverlap_frac"):
            number(name)
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"metrics.{name} must lie in [0, 1), got {getattr(self, name)!r}")
        for prefix, count in (("dfa", "dfa_scales"), ("hurst", "hurst_lags")):
            value = getattr(self, count)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
                raise ValueError(f"metrics.{count} must be an integer >= 2 (a slope needs two points), got {value!r}")
            unit = "scale" if prefix == "dfa" else "lag"
            for bound in ("min", "max"):
                number(f"{prefix}_{bound}_{unit}_s", positive=True, allow_none=True)
                steps = getattr(self, f"{prefix}_{bound}_{unit}")
                if steps is not None and (
                    not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1
                ):
                    raise ValueError(f"metrics.{prefix}_{bound}_{unit} must be a positive integer, got {steps!r}")
            low, high = getattr(self, f"{prefix}_min_{unit}"), getattr(self, f"{prefix}_max_{unit}")
            if low is not None and high is not None and not high > low:
                raise ValueError(f"metrics.{prefix}_max_{unit} ({high}) must be above {prefix}_min_{unit} ({low})")
        object.__setattr__(self, "bands", _check_bands(self.bands))

    @classmethod
    def from_dict(cls, values: dict | None, sfreq: float | None = None) -> MetricsConfig:
        """Build from a config mapping; `sfreq` (the dataset's rate) is used when the mapping sets no `fs`."""
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ValueError(f"the metrics config must be a mapping of keys, got {type(values).__name__}")  # noqa: TRY004
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown metrics config keys {sorted(unknown)}; expected {sorted(known)}")
        values = dict(values)
        if values.get("fs") is None:
            values["fs"] = None if sfreq is None else float(sfreq)
        if values.get("bands") is None:
            values.pop("bands", None)
        return cls(**values)

    def to_dict(self) -> dict:
        """The config as plain JSON types (bands as [lo, hi] lists)."""
        values = dataclasses.asdict(self)
        values["bands"] = {name: [lo, hi] for name, (lo, hi) in self.bands.items()}
        return values

    def with_fs(self, fs: float | None) -> MetricsConfig:
        """This config with `fs` filled in from the data when it sets none (a set `fs` wins, as in the reference)."""
        if self.fs is not None or fs is None:
            return self
        return dataclasses.replace(self, fs=float(fs))

    @property
    def max_frequency(self) -> float | None:
        if self.fs is None:
            return None
        return float(self.fmax) if self.fmax is not None else 0.95 * self.fs / 2.0

    def segment(self, seconds: float, overlap_frac: float) -> tuple[int, int]:
        """(nperseg, noverlap) in steps for a segment length in seconds: at least 8 samples, overlap < nperseg."""
        nperseg = max(8, int(round(seconds * self.fs)))
        return nperseg, min(int(round(overlap_frac * nperseg)), nperseg - 1)

    def dfa_scales_for(self, steps: int) -> np.ndarray:
        """The DFA box sizes used on a window of `steps` samples."""
        low = self._bound(self.dfa_min_scale, self.dfa_min_scale_s, max(4, int(0.05 * steps)))
        high = self._bound(self.dfa_max_scale, self.dfa_max_scale_s, max(low + 1, int(0.5 * steps)))
        return _log_spaced_integers(low, min(high, max(2, steps // 2)), self.dfa_scales)

    def hurst_lags_for(self, steps: int) -> np.ndarray:
        """The Hurst lags used on a window of `steps` samples."""
        low = self._bound(self.hurst_min_lag, self.hurst_min_lag_s, max(2, int(0.02 * steps)))
        high = self._bound(self.hurst_max_lag, self.hurst_max_lag_s, max(low + 1, int(0.2 * steps)))
        return _log_spaced_integers(low, min(high, max(2, steps // 2)), self.hurst_lags)

    def _bound(self, steps: int | None, seconds: float | None, fallback: int) -> int:
        if steps is not None:
            return max(1, int(steps))
        if seconds is not None and self.fs is not None:
            # Truncation (not rounding) is the reference's; the epsilon keeps 0.29 s * 100 Hz at 29 steps.
            return max(1, int(seconds * self.fs + 1e-9))
        return max(1, int(fallback))


def _check_bands(bands) -> dict[str, tuple[float, float]]:
    if not isinstance(bands, dict) or not bands:
        raise ValueError(f"metrics.bands must be a non-empty mapping name -> [lo, hi] Hz, got {bands!r}")
    checked = {}
    for name, edges in bands.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"metrics.bands names must be non-empty strings, got {name!r}")
        if (
            not isinstance(edges, (list, tuple))
            or len(edges) != 2
            or not all(_is_number(edge) and math.isfinite(edge) for edge in edges)
        ):
            raise ValueError(f"metrics.bands.{name} must be [lo, hi] in Hz, got {edges!r}")
        lo, hi = float(edges[0]), float(edges[1])
        if not 0 <= lo < hi:
            raise ValueError(f"metrics.bands.{name} must satisfy 0 <= lo < hi, got [{lo}, {hi}]")
        checked[name] = (lo, hi)
    return checked


def _log_spaced_integers(low: int, high: int, count: int) -> np.ndarray:
    if high <= low:
        return np.array([], dtype=np.int64)
    points = np.unique(np.round(np.logspace(np.log10(low), np.log10(high), count)).astype(np.int64))
    return points[(points >= low) & (points <= high)]


def check_signals(data, name: str = "data") -> np.ndarray:
    """`data` as a finite `(B, C, T)` float32 array, or a ValueError saying what is wrong with it."""
    array = np.asarray(data)
    if array.ndim != 3:
        raise ValueError(f"{name} must be shaped (batch, channels, time), got {array.ndim} dimensions {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); every axis needs at least one entry")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf values (the first at index {first}); clean them first")
    return array


def nanmean(values: np.ndarray, axis) -> np.ndarray:
    """Mean of the finite entries along `axis`; NaN (and no warning) where there are none."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    return np.divide(total, count, out=np.full(np.shape(total), np.nan), where=count > 0)


def trapezoid(y: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    integrate = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 names it trapz
    return integrate(y, x, axis=axis)


def _masked_slope(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x along the last axis over the `valid` points; NaN with fewer than two."""
    x = np.broadcast_to(x, y.shape)
    count = valid.sum(axis=-1)
    safe = np.maximum(count, 1)
    x_mean = np.where(valid, x, 0.0).sum(axis=-1) / safe
    y_mean = np.where(valid, y, 0.0).sum(axis=-1) / safe
    dx = np.where(valid, x - x_mean[..., None], 0.0)
    dy = np.where(valid, y - y_mean[..., None], 0.0)
    sxx = (dx * dx).sum(axis=-1)
    slope = np.divide((dx * dy).sum(axis=-1), sxx, out=np.full(sxx.shape, np.nan), where=(count >= 2) & (sxx > 1e-12))
    return slope


def covariance(data: np.ndarray) -> np.ndarray:
    """`(B, C, C)` sample covariance (T - 1 denominator) of each example; NaN when T < 2."""
    batch, channels, steps = data.shape
    if steps < 2:
        return np.full((batch, channels, channels), np.nan)
    centered = data.astype(np.float64) - data.mean(axis=2, keepdims=True, dtype=np.float64)
    return centered @ centered.transpose(0, 2, 1) / (steps - 1)


def correlation_from_covariance(cov: np.ndarray) -> np.ndarray:
    """Correlation matrices of `(B, C, C)` covariances; a zero-variance channel correlates 0 with the rest."""
    std = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    denom = std[:, :, None] * std[:, None, :]
    corr = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    corr = np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    index = np.arange(cov.shape[1])
    corr[:, index, index] = 1.0
    return corr


def spatial_connectivity(cov: np.ndarray) -> np.ndarray:
    """`(B,)` mean |correlation| over the off-diagonal channel pairs; NaN with one channel."""
    channels = cov.shape[1]
    if channels < 2:
        return np.full(cov.shape[0], np.nan)
    corr = np.abs(correlation_from_covariance(cov))
    return (corr.sum(axis=(1, 2)) - channels) / (channels * (channels - 1))


def amplitude_kurtosis(data: np.ndarray) -> np.ndarray:
    """`(B, C)` excess kurtosis m4 / var^2 - 3 from population moments; NaN for a flat channel."""
    centered = data.astype(np.float64) - data.mean(axis=2, keepdims=True, dtype=np.float64)
    squared = centered * centered
    var = squared.mean(axis=2)
    m4 = (squared * squared).mean(axis=2)
    return np.divide(m4, var * var, out=np.full(var.shape, np.nan), where=var > _FLAT_VARIANCE) - 3.0


def amplitude_tail_fraction(data: np.ndarray, tail_sigma: float) -> np.ndarray:
    """`(B, C)` fraction of samples with |x| > tail_sigma * std(x); |x| is not mean-centred (the reference's)."""
    std = data.std(axis=2, dtype=np.float64)
    fraction = (np.abs(data) > (tail_sigma * std)[..., None]).mean(axis=2)
    return np.where(std > _FLAT_STD, fraction, np.nan)


def fft_spectrum(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(B, C, T//2 + 1)` magnitude and phase of rfft(x) / T; empty when T < 2."""
    steps = data.shape[2]
    if steps < 2:
        empty = np.full(data.shape[:2] + (0,), np.nan, dtype=np.float32)
        return empty, empty.copy()
    spectrum = np.fft.rfft(data, axis=2) / steps
    return np.abs(spectrum).astype(np.float32), np.angle(spectrum).astype(np.float32)


def _frequency_mask(freqs: np.ndarray, config: MetricsConfig) -> np.ndarray:
    return (freqs >= config.fmin) & (freqs <= config.max_frequency)


def welch_psd(data: np.ndarray, config: MetricsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(freqs (F,), psd (B, C, F)): scipy's Welch (Hann, density, constant detrend) within [fmin, fmax].

    Empty (F = 0) without `fs` or when the window is shorter than one Welch segment.
    """
    from scipy.signal import welch

    empty = np.array([], dtype=np.float32), np.full(data.shape[:2] + (0,), np.nan, dtype=np.float32)
    if config.fs is None:
        return empty
    nperseg, noverlap = config.segment(config.welch_nperseg_s, config.welch_noverlap_frac)
    if nperseg > data.shape[2]:
        return empty
    freqs, psd = welch(data, fs=config.fs, nperseg=nperseg, noverlap=noverlap, axis=-1)
    keep = _frequency_mask(freqs, config)
    if not keep.any():
        return empty
    return freqs[keep].astype(np.float32), psd[..., keep].astype(np.float32)


def bandpower_ratios(freqs: np.ndarray, psd: np.ndarray, bands: dict[str, tuple[float, float]]) -> np.ndarray:
    """`(B, C, n_bands)` trapezoid band power over total power (floored at 1e-12); NaN for a band without bins."""
    ratios = np.full(psd.shape[:2] + (len(bands),), np.nan)
    if freqs.size == 0:
        return ratios
    total = np.clip(trapezoid(psd, freqs, axis=-1), 1e-12, None)
    for index, (lo, hi) in enumerate(bands.values()):
        in_band = (freqs >= lo) & (freqs < hi)
        if in_band.any():
            ratios[..., index] = trapezoid(psd[..., in_band], freqs[in_band], axis=-1) / total
    return ratios


def stft_spectrum(data: np.ndarray, config: MetricsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freqs (F,), magnitude, phase (B, C, F, frames)): scipy's STFT without boundary padding, within [fmin, fmax]."""
    from scipy.signal import stft

    empty = np.full(data.shape[:2] + (0, 0), np.nan, dtype=np.float32)
    if config.fs is None:
        return np.array([], dtype=np.float32), empty, empty.copy()
    nperseg, noverlap = config.segment(config.stft_nperseg_s, config.stft_noverlap_frac)
    if nperseg > data.shape[2]:
        return np.array([], dtype=np.float32), empty, empty.copy()
    freqs, _, spectrum = stft(data, fs=config.fs, nperseg=nperseg, noverlap=noverlap, boundary=None, padded=False)
    keep = _frequency_mask(freqs, config)
    spectrum = spectrum[..., keep, :]
    return freqs[keep].astype(np.float32), np.abs(spectrum).astype(np.float32), np.angle(spectrum).astype(np.float32)


def dfa_exponent(data: np.ndarray, config: MetricsConfig) -> np.ndarray:
    """`(B, C)` detrended fluctuation analysis exponent (first-order detrending), NaN when T < 8 or < 2 scales.

    antropy's `detrended_fluctuation` picks its own box sizes from the series length; the reference's boxes are the
    configured log-spaced scales (seconds at fs), so the exponent is computed here to keep windows comparable.
    """
    batch, channels, steps = data.shape
    scales = config.dfa_scales_for(steps)
    if steps < 8 or scales.size < 2:
        return np.full((batch, channels), np.nan)
    series = data.reshape(batch * channels, steps).astype(np.float64)
    series = series - series.mean(axis=1, keepdims=True)
    std = series.std(axis=1, keepdims=True)
    profile = np.cumsum(series / np.where(std > _DFA_STD_FLOOR, std, 1.0), axis=1)
    log_scales, log_fluct = [], []
    for scale in scales.tolist():
        n_boxes = steps // scale
        if n_boxes < 2:
            continue
        boxes = profile[:, : n_boxes * scale].reshape(-1, n_boxes, scale)
        x = np.arange(scale, dtype=np.float64) - (scale - 1) / 2.0
        # Residual energy of each box's least-squares line: sum (y - mean)^2 - (sum x y)^2 / sum x^2.
        box_sum = boxes.sum(axis=2)
        residual = (boxes * boxes).sum(axis=2) - box_sum * box_sum / scale - (boxes @ x) ** 2 / (x * x).sum()
        fluct = np.sqrt(np.clip(residual, 0.0, None).mean(axis=1) / scale)
        log_scales.append(math.log(scale))
        with np.errstate(divide="ignore"):
            log_fluct.append(np.log(np.where(fluct > 0, fluct, np.nan)))
    if len(log_scales) < 2:
        return np.full((batch, channels), np.nan)
    y = np.stack(log_fluct, axis=-1)
    return _masked_slope(np.asarray(log_scales), y, np.isfinite(y)).reshape(batch, channels)


def hurst_exponent(data: np.ndarray, config: MetricsConfig) -> np.ndarray:
    """`(B, C)` slope of log std(x[t + lag] - x[t]) against log lag over the configured lags (0.5 for a random walk)."""
    batch, channels, steps = data.shape
    lags = [lag for lag in config.hurst_lags_for(steps).tolist() if 0 < lag < steps]
    if len(lags) < 2:
        return np.full((batch, channels), np.nan)
    series = data.reshape(batch * channels, steps).astype(np.float64)
    taus = np.stack([(series[:, lag:] - series[:, :-lag]).std(axis=1) for lag in lags], axis=-1)
    with np.errstate(divide="ignore"):
        y = np.log(np.where(taus > 0, taus, np.nan))
    return _masked_slope(np.log(np.asarray(lags, dtype=np.float64)), y, np.isfinite(y)).reshape(batch, channels)


def one_over_f_exponent(freqs: np.ndarray, psd: np.ndarray) -> np.ndarray:
    """`(B, C)` minus the least-squares slope of log10 PSD on log10 f (f > 0, PSD > 0): 0 for white noise.

    specparam/fooof fits an aperiodic curve (offset, optional knee) after removing oscillatory peaks; the reference's
    exponent is this plain log-log regression over the whole [fmin, fmax] range, so it is kept.
    """
    positive = freqs > 0
    if positive.sum() < 2:
        return np.full(psd.shape[:2], np.nan)
    power = psd[..., positive].astype(np.float64)
    valid = np.isfinite(power) & (power > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log10(np.where(valid, power, 1.0))
    return -_masked_slope(np.log10(freqs[positive].astype(np.float64)), y, valid)


def coherence_matrices(data: np.ndarray, config: MetricsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(freqs (F,), coherence (B, C, C, F)): |Pxy|^2 / (Pxx Pyy) between every channel pair of each example.

    The segments are the Welch ones (Hann, same length and overlap) without detrending, the reference's definition;
    scipy.signal.coherence removes each segment's mean and works pair by pair, so the segment spectra come from
    scipy's STFT and the cross-spectra of all pairs from one batched matrix product.
    """
    from scipy.signal import stft

    batch, channels, steps = data.shape
    empty = np.array([], dtype=np.float32), np.full((batch, channels, channels, 0), np.nan, dtype=np.float32)
    if config.fs is None:
        return empty
    nperseg, noverlap = config.segment(config.welch_nperseg_s, config.welch_noverlap_frac)
    if nperseg > steps:
        return empty
    freqs, _, spectrum = stft(
        data, fs=config.fs, nperseg=nperseg, noverlap=noverlap, detrend=False, boundary=None, padded=False
    )
    keep = _frequency_mask(freqs, config)
    if not keep.any():
        return empty
    spectrum = np.ascontiguousarray(spectrum[..., keep, :].transpose(0, 2, 1, 3))  # (B, F, C, segments)
    cross = spectrum @ spectrum.conj().transpose(0, 1, 3, 2)  # (B, F, C, C), the 1/segments cancels in the ratio
    power = np.real(np.diagonal(cross, axis1=2, axis2=3))
    denom = power[..., :, None] * power[..., None, :]
    coherence = np.divide(np.abs(cross) ** 2, denom, out=np.full(denom.shape, np.nan), where=denom > 0)
    coherence = np.clip(coherence, 0.0, 1.0).astype(np.float32)
    return freqs[keep].astype(np.float32), np.moveaxis(coherence, 1, 3)


def compute_window_metrics(data, config: MetricsConfig, *, coherence: bool = True) -> dict[str, np.ndarray]:
    """Every §5.5 metric of each example of a `(B, C, T)` batch.

    Returns per-example arrays (first axis B) `signal` (the float32 input, for the correlation distance),
    `covariance` (B, C, C), `spatial_connectivity` (B,), `amplitude_kurtosis`, `amplitude_tail_fraction`,
    `dfa_exponent`, `hurst_exponent`, `one_over_f_exponent` (B, C), `fft_magnitude`, `fft_angle` (B, C, T//2+1),
    `psd` (B, C, F), `bandpower_ratios` (B, C, n_bands, in `config.bands` order), `stft_magnitude`, `stft_angle`
    (B, C, F', frames) and, unless `coherence=False`, `coherence` (B, C, C, F); plus the shared grids `psd_freqs`,
    `stft_freqs`, `coherence_freqs` (see `SHARED_KEYS`). Use `take_examples` to index it.
    """
    config = as_metrics_config(config)
    data = check_signals(data)
    cov = covariance(data)
    freqs, psd = welch_psd(data, config)
    fft_magnitude, fft_angle = fft_spectrum(data)
    stft_freqs, stft_magnitude, stft_angle = stft_spectrum(data, config)
    metrics = {
        "signal": data,
        "covariance": cov,
        "spatial_connectivity": spatial_connectivity(cov),
        "amplitude_kurtosis": amplitude_kurtosis(data),
        "amplitude_tail_fraction": amplitude_tail_fraction(data, config.tail_sigma),
        "fft_magnitude": fft_magnitude,
        "fft_angle": fft_angle,
        "psd_freqs": freqs,
        "psd": psd,
        "bandpower_ratios": bandpower_ratios(freqs, psd, config.bands),
        "stft_freqs": stft_freqs,
        "stft_magnitude": stft_magnitude,
        "stft_angle": stft_angle,
        "dfa_exponent": dfa_exponent(data, config),
        "hurst_exponent": hurst_exponent(data, config),
        "one_over_f_exponent": one_over_f_exponent(freqs, psd),
    }
    if coherence:
        metrics["coherence_freqs"], metrics["coherence"] = coherence_matrices(data, config)
    return metrics


def take_examples(metrics: dict[str, np.ndarray], index) -> dict[str, np.ndarray]:
    """The window metrics of the examples `index` (an integer array): per-example entries indexed, grids kept."""
    return {key: value if key in SHARED_KEYS else value[index] for key, value in metrics.items()}


def as_metrics_config(config) -> MetricsConfig:
    """`config` as a MetricsConfig (a dict is read with `MetricsConfig.from_dict`)."""
    if isinstance(config, dict):
        return MetricsConfig.from_dict(config)
    if not isinstance(config, MetricsConfig):
        raise ValueError(f"config must be a MetricsConfig (or its dict), got {type(config).__name__}")  # noqa: TRY004
    return config


def compute_summaries(data, config: MetricsConfig) -> dict[str, np.ndarray]:
    """One number per example and metric `(B,)`, the sliding-window envelope metrics (spec §5.5).

    `spatial_connectivity`; channel means of `one_over_f_exponent`, `dfa_exponent`, `hurst_exponent`,
    `amplitude_kurtosis`, `amplitude_tail_fraction`, `bandpower_ratio_{band}`; the covariance spectrum's normalised
    entropy `cov_eig_entropy` and largest share `cov_eig_top_frac`; the channel-mean PSD's normalised entropy
    `psd_entropy` and centroid `psd_centroid` (Hz); and for integer-valued data (token ids) `token_entropy` (bits,
    across channels per step), `token_unique_rate`, `token_repetition_rate` (NaN for real-valued data).
    """
    config = as_metrics_config(config)
    raw = np.asarray(data)
    data = check_signals(raw)
    cov = covariance(data)
    freqs, psd = welch_psd(data, config)
    ratios = bandpower_ratios(freqs, psd, config.bands)
    summaries = {
        "spatial_connectivity": spatial_connectivity(cov),
        "one_over_f_exponent": nanmean(one_over_f_exponent(freqs, psd), axis=1),
        "dfa_exponent": nanmean(dfa_exponent(data, config), axis=1),
        "hurst_exponent": nanmean(hurst_exponent(data, config), axis=1),
        "amplitude_kurtosis": nanmean(amplitude_kurtosis(data), axis=1),
        "amplitude_tail_fraction": nanmean(amplitude_tail_fraction(data, config.tail_sigma), axis=1),
    }
    for index, band in enumerate(config.bands):
        summaries[f"bandpower_ratio_{band}"] = nanmean(ratios[..., index], axis=1)
    summaries["cov_eig_entropy"], summaries["cov_eig_top_frac"] = covariance_spectrum_summary(cov)
    summaries["psd_entropy"], summaries["psd_centroid"] = psd_summary(freqs, psd)
    summaries.update(token_statistics(raw))
    return summaries


def _normalised_entropy(probs: np.ndarray) -> np.ndarray:
    entropy = -(probs * np.log(probs + 1e-12)).sum(axis=-1)
    return entropy / math.log(probs.shape[-1]) if probs.shape[-1] > 1 else entropy


def covariance_spectrum_summary(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(`cov_eig_entropy`, `cov_eig_top_frac`) `(B,)`: entropy / ln C and largest share of the clipped eigenvalues."""
    if not np.isfinite(cov).all():  # T < 2
        nan = np.full(cov.shape[0], np.nan)
        return nan, nan.copy()
    eigenvalues = np.clip(np.linalg.eigvalsh(cov), 0.0, None)
    probs = eigenvalues / np.clip(eigenvalues.sum(axis=-1, keepdims=True), 1e-12, None)
    return _normalised_entropy(probs), probs.max(axis=-1)


def psd_summary(freqs: np.ndarray, psd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(`psd_entropy`, `psd_centroid`) `(B,)` of the channel-mean PSD normalised to a distribution over frequency."""
    if freqs.size == 0:
        nan = np.full(psd.shape[0], np.nan)
        return nan, nan.copy()
    mean_psd = np.clip(nanmean(psd, axis=1), 0.0, None)
    probs = mean_psd / np.clip(mean_psd.sum(axis=-1, keepdims=True), 1e-12, None)
    return _normalised_entropy(probs), (probs * freqs).sum(axis=-1)


def integer_tokens(data: np.ndarray) -> np.ndarray | None:
    """The data as int64 token ids when they are integers (an integer dtype, or every value within 1e-3 of one)."""
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.int64)
    rounded = np.rint(data)
    if np.abs(data - rounded).max() > 1e-3:
        return None
    return rounded.astype(np.int64)


def token_statistics(data: np.ndarray) -> dict[str, np.ndarray]:
    """`token_entropy`, `token_unique_rate`, `token_repetition_rate` `(B,)`; NaN unless the data are token ids."""
    batch, channels, steps = data.shape
    tokens = integer_tokens(data)
    if tokens is None:
        nan = np.full(batch, np.nan)
        return {"token_entropy": nan, "token_unique_rate": nan.copy(), "token_repetition_rate": nan.copy()}
    # Entropy per (example, step) of the values across channels: sort the channels, count each run of equal values.
    per_step = np.sort(tokens.transpose(0, 2, 1).reshape(batch * steps, channels), axis=1)
    starts = np.ones_like(per_step, dtype=bool)
    starts[:, 1:] = per_step[:, 1:] != per_step[:, :-1]
    run = np.cumsum(starts, axis=1) - 1
    rows = np.repeat(np.arange(batch * steps), channels)
    counts = np.bincount(rows * channels + run.ravel(), minlength=batch * steps * channels).astype(np.float64)
    counts = counts.reshape(batch * steps, channels)
    with np.errstate(divide="ignore", invalid="ignore"):
        c_log_c = np.where(counts > 0, counts * np.log2(counts), 0.0).sum(axis=1)
    entropy = (math.log2(channels) - c_log_c / channels).reshape(batch, steps).mean(axis=1)
    flat = np.sort(tokens.reshape(batch, -1), axis=1)
    unique_rate = (1 + (flat[:, 1:] != flat[:, :-1]).sum(axis=1)) / flat.shape[1]
    return {"token_entropy": entropy, "token_unique_rate": unique_rate, "token_repetition_rate": 1.0 - unique_rate}
