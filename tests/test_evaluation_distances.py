"""Per-pair distances (brain_gen_hf.evaluation.distances, spec pipeline §5.5 MetricDistances; checklist §7.12).

Expected values come from the construction of the pairs (identical, disjoint spectra, a quarter-period phase shift,
a scaled copy) or from independent library routines (scipy's Jensen-Shannon and Wasserstein distances).
"""

import math

import numpy as np
import pytest

from brain_gen_hf.evaluation.distances import (
    JSD_MAX,
    SIMILARITY_METRICS,
    is_similarity_metric,
    js_distance,
    metric_distances,
    metric_names,
)
from brain_gen_hf.evaluation.metrics import MetricsConfig, compute_window_metrics, take_examples

FS = 100.0
CONFIG = MetricsConfig(fs=FS, fmin=1.0, fmax=50.0)


def white(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def distances(left: np.ndarray, right: np.ndarray, config=CONFIG) -> dict:
    """Distances of pairs (left[i], right[i]) computed the way the divergence analysis does: one metrics pass."""
    metrics = compute_window_metrics(np.concatenate([left, right]), config)
    n = left.shape[0]
    return metric_distances(take_examples(metrics, np.arange(n)), take_examples(metrics, np.arange(n, 2 * n)), config)


def test_names_and_similarity_metrics():
    names = metric_names(CONFIG.bands)
    assert len(names) == len(set(names)) == 16 + 4 * 5
    assert SIMILARITY_METRICS == {"psd_corr"} | {f"psd_corr_{b}" for b in CONFIG.bands}
    assert is_similarity_metric("psd_corr_alpha") and not is_similarity_metric("psd_jsd")
    result = distances(white((2, 3, 400)), white((2, 3, 400), seed=1))
    assert list(result) == names and all(v.shape == (2,) for v in result.values())


def test_identical_inputs_are_at_distance_zero():
    data = white((3, 4, 600))
    result = distances(data, data.copy())
    for name, value in result.items():
        assert np.isfinite(value).all(), name
        expected = 1.0 if is_similarity_metric(name) else 0.0
        np.testing.assert_allclose(value, expected, atol=1e-7, err_msg=name)


def test_js_distance():
    p, q = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    disjoint = js_distance(p, q)
    assert 0.83 < disjoint < 0.84 and disjoint == pytest.approx(math.sqrt(math.log(2)), abs=1e-9)
    assert JSD_MAX == pytest.approx(math.sqrt(math.log(2)))
    assert js_distance(q, p) == disjoint and js_distance(p, p) == 0.0
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(3)
    a, b = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
    assert js_distance(a, b) == pytest.approx(jensenshannon(a, b), rel=1e-9)


def test_spectra_in_disjoint_bands_are_at_normalised_jsd_one():
    t = np.arange(2000) / FS
    low = np.cos(2 * np.pi * 5 * t)[None, None].astype(np.float32)
    high = np.cos(2 * np.pi * 35 * t)[None, None].astype(np.float32)
    result = distances(low, high)
    assert result["psd_jsd"][0] == pytest.approx(1.0, abs=1e-3)  # sqrt(ln 2) / sqrt(ln 2)
    assert result["band_jsd"][0] == pytest.approx(1.0, abs=1e-3)  # all power in theta vs all in gamma
    assert result["bandpower_ratio_theta"][0] == pytest.approx(1.0) and result["bandpower_ratio_gamma"][0] == 1.0
    assert result["psd_corr"][0] < 0.0


def test_correlation_distance():
    x = white((1, 3, 500), seed=4)
    assert distances(x, 3 * x + 10)["correlation"][0] < 1e-8  # invariant to scale and offset
    assert distances(x, -x)["correlation"][0] == pytest.approx(1.0)
    zeros = np.zeros((1, 2, 500), dtype=np.float32)
    assert distances(zeros, zeros)["correlation"][0] == 0.0  # two flat, equal series
    assert distances(zeros, zeros + 1)["correlation"][0] == 0.0  # flat series equal once the mean is removed
    assert distances(zeros, x[:, :2])["correlation"][0] == 1.0  # flat vs varying: no correlation to speak of
    independent = distances(white((1, 16, 4000), seed=5), white((1, 16, 4000), seed=6))["correlation"][0]
    assert independent == pytest.approx(0.5, abs=0.01)


def test_covariance_distance_is_relative_frobenius():
    x = white((1, 3, 500), seed=7)
    assert distances(x, 2 * x)["covariance"][0] == pytest.approx(0.75, rel=1e-5)  # |4C - C| / |4C|
    assert distances(x, np.zeros_like(x))["covariance"][0] == pytest.approx(1.0)  # zero target: relative L2 = 1


def test_quarter_period_phase_shift():
    # Every frequency of a random signal delayed by a quarter period (its Hilbert transform): the same magnitudes,
    # every phase pi/2 apart. DC and Nyquist are removed (they cannot carry that phase and stay real).
    spectrum = np.fft.rfft(white((1, 2, 1000), seed=12).astype(float), axis=-1)
    spectrum[..., [0, -1]] = 0.0
    original = np.fft.irfft(spectrum, n=1000, axis=-1).astype(np.float32)
    shifted = np.fft.irfft(spectrum * np.exp(-0.5j * np.pi), n=1000, axis=-1).astype(np.float32)
    result = distances(original, shifted)
    assert result["fft_magnitude"][0] < 0.05 and result["fft_angle"][0] > result["fft_magnitude"][0]
    assert result["stft_angle"][0] > result["stft_magnitude"][0]
    assert result["fft_angle"][0] == pytest.approx(0.5, abs=1e-3)  # a gap of pi/2 at every weighted bin, over pi
    assert result["correlation"][0] == pytest.approx(0.5, abs=0.05)  # a signal and its Hilbert transform: r ~ 0


def test_magnitude_distance_is_wasserstein_of_the_normalised_log_magnitudes():
    from scipy.stats import wasserstein_distance

    a, b = white((1, 2, 400), seed=8), 2.0 * white((1, 2, 400), seed=9) + 0.3
    metrics = compute_window_metrics(np.concatenate([a, b]), CONFIG)
    result = metric_distances(take_examples(metrics, [0]), take_examples(metrics, [1]), CONFIG)
    expected = []
    for channel in range(2):
        u, v = metrics["fft_magnitude"][0, channel], metrics["fft_magnitude"][1, channel]
        scale = 0.5 * (u.mean() + v.mean())
        expected.append(wasserstein_distance(np.log(u / scale + 1e-12), np.log(v / scale + 1e-12)))
    assert result["fft_magnitude"][0] == pytest.approx(np.mean(expected), rel=1e-4)


def test_coherence_distance():
    a, b, c = white((3, 4000), seed=10)
    coupled = np.stack([a, a, a])[None]  # coherence 1 between every pair
    independent = np.stack([a, b, c])[None]  # ~0
    result = distances(coupled, independent)
    assert result["coherence"][0] > 0.9
    assert all(result[f"coherence_{band}"][0] > 0.9 for band in CONFIG.bands)
    assert distances(independent, independent.copy())["coherence"][0] == 0.0


def test_finite_identity_on_random_data():
    data = white((2, 3, 300), seed=11)
    result = distances(data, data.copy())
    for name in ("amplitude_kurtosis", "amplitude_tail_fraction", "dfa_exponent", "hurst_exponent"):
        assert np.isfinite(result[name]).all() and np.abs(result[name]).max() < 1e-7, name
    for name in ("one_over_f_exponent", "spatial_connectivity", *(f"bandpower_ratio_{b}" for b in CONFIG.bands)):
        assert np.isfinite(result[name]).all() and np.abs(result[name]).max() < 1e-7, name


def test_windows_shorter_than_a_welch_segment_have_nan_spectral_distances():
    result = distances(white((1, 3, 50)), white((1, 3, 50), seed=1))
    for name in ("psd_jsd", "psd_corr", "band_jsd", "stft_magnitude", "stft_angle", "coherence", "psd_jsd_alpha"):
        assert np.isnan(result[name]).all(), name
    assert np.isfinite(result["correlation"]).all() and np.isfinite(result["fft_magnitude"]).all()


def test_bad_pairs_are_value_errors():
    metrics = compute_window_metrics(white((2, 3, 200)), CONFIG)
    other = compute_window_metrics(white((2, 3, 100)), CONFIG)
    with pytest.raises(ValueError, match="differ in shape"):
        metric_distances(metrics, other, CONFIG)
    with pytest.raises(ValueError, match="compute_window_metrics"):
        metric_distances({"psd": metrics["psd"]}, metrics, CONFIG)
    without = compute_window_metrics(white((2, 3, 200)), CONFIG, coherence=False)
    with pytest.raises(ValueError, match="coherence=True"):
        metric_distances(without, without, CONFIG)
    with pytest.raises(ValueError, match="unknown metrics config keys"):
        metric_distances(metrics, metrics, {"fs": 100, "nperseg": 10})
