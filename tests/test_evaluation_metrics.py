"""Per-window metrics (brain_gen_hf.evaluation.metrics, spec pipeline §5.5) against values known from math.

Every expected number comes from the signal's construction (a sinusoid's frequency and power, the moments of a
distribution, the scaling of white noise and of a random walk) or from an independent library routine (np.cov,
scipy.signal.coherence), never from the code under test.
"""

import math
from collections import Counter

import numpy as np
import pytest

from brain_gen_hf.evaluation.metrics import (
    MetricsConfig,
    compute_summaries,
    compute_window_metrics,
    take_examples,
)

FS = 100.0
CONFIG = MetricsConfig(fs=FS, fmin=1.0, fmax=50.0)  # the paper's settings


def sinusoid(freq: float, seconds: float, channels: int = 1, amplitude: float = 1.0, phase: float = 0.0):
    t = np.arange(int(seconds * FS)) / FS
    return np.broadcast_to(amplitude * np.cos(2 * np.pi * freq * t + phase), (1, channels, t.size)).astype(np.float32)


def white(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------- spectra
def test_sinusoid_welch_peak_power_and_band_ratios():
    metrics = compute_window_metrics(sinusoid(10.0, 20.0, amplitude=2.0), CONFIG)
    freqs, psd = metrics["psd_freqs"], metrics["psd"][0, 0]
    assert freqs[0] >= 1.0 and freqs[-1] <= 50.0
    np.testing.assert_allclose(np.diff(freqs), 1.0)  # 1 s Welch segments: 1 Hz bins
    assert freqs[np.argmax(psd)] == pytest.approx(10.0)
    # Parseval with density scaling: the PSD sums (times the 1 Hz bin width) to the variance, A^2 / 2 = 2.
    assert psd.sum() * 1.0 == pytest.approx(2.0, rel=0.01)
    ratios = dict(zip(CONFIG.bands, metrics["bandpower_ratios"][0, 0]))
    assert ratios["alpha"] > 0.99
    assert all(ratios[band] < 0.01 for band in ("delta", "theta", "beta", "gamma"))


def test_fft_of_whole_cycle_cosine_and_sine():
    steps = 200
    t = np.arange(steps)
    data = np.stack([3.0 * np.cos(2 * np.pi * 5 * t / steps), 3.0 * np.sin(2 * np.pi * 5 * t / steps)])[None]
    metrics = compute_window_metrics(data.astype(np.float32), CONFIG)
    assert metrics["fft_magnitude"].shape == (1, 2, steps // 2 + 1)
    np.testing.assert_allclose(metrics["fft_magnitude"][0, :, 5], [1.5, 1.5], rtol=1e-5)  # rfft / T = A / 2
    others = np.delete(metrics["fft_magnitude"][0], 5, axis=-1)
    assert others.max() < 1e-5
    np.testing.assert_allclose(metrics["fft_angle"][0, :, 5], [0.0, -np.pi / 2], atol=1e-5)


def test_stft_grid():
    metrics = compute_window_metrics(sinusoid(10.0, 10.0), CONFIG)
    # 100-sample segments every 25 samples without boundary padding: (1000 - 100) / 25 + 1 frames.
    assert metrics["stft_magnitude"].shape == (1, 1, metrics["stft_freqs"].size, 37)
    assert metrics["stft_freqs"][np.argmax(metrics["stft_magnitude"][0, 0].mean(axis=-1))] == pytest.approx(10.0)


def test_fmax_defaults_to_095_nyquist_and_short_windows_have_no_spectrum():
    config = MetricsConfig(fs=FS)
    metrics = compute_window_metrics(white((1, 1, 400)), config)
    assert metrics["psd_freqs"][0] == 1.0 and metrics["psd_freqs"][-1] == 47.0  # fmin 0.5 .. 0.95 * 50
    short = compute_window_metrics(white((2, 3, 50)), config)  # shorter than one 100-sample Welch segment
    assert short["psd"].shape == (2, 3, 0) and short["coherence"].shape == (2, 3, 3, 0)
    assert np.isnan(short["bandpower_ratios"]).all() and np.isnan(short["one_over_f_exponent"]).all()
    unknown_rate = compute_window_metrics(white((1, 2, 400)), MetricsConfig(fs=None))
    assert unknown_rate["psd"].shape == (1, 2, 0) and unknown_rate["stft_magnitude"].shape == (1, 2, 0, 0)


def test_one_over_f_exponent_of_white_noise_and_random_walk():
    noise = white((1, 8, 6000))
    assert np.abs(compute_window_metrics(noise, CONFIG)["one_over_f_exponent"]).mean() < 0.1
    walk_metrics = compute_window_metrics(np.cumsum(noise, axis=-1), CONFIG)
    freqs = walk_metrics["psd_freqs"].astype(float)
    # The PSD of a discrete random walk is proportional to 1 / (4 sin^2(pi f / fs)): its log-log slope on this grid.
    theory = -np.polyfit(np.log10(freqs), np.log10(1.0 / (4 * np.sin(np.pi * freqs / FS) ** 2)), 1)[0]
    assert walk_metrics["one_over_f_exponent"].mean() == pytest.approx(theory, abs=0.25)


# ---------------------------------------------------------------------------------------------- scaling exponents
def test_dfa_and_hurst_of_white_noise_and_random_walk():
    noise = white((1, 8, 4000), seed=1)
    walk = np.cumsum(noise, axis=-1)
    noise_metrics, walk_metrics = compute_window_metrics(noise, CONFIG), compute_window_metrics(walk, CONFIG)
    # DFA: alpha = 0.5 for uncorrelated noise, 1.5 for its integral.
    assert noise_metrics["dfa_exponent"].mean() == pytest.approx(0.5, abs=0.08)
    assert walk_metrics["dfa_exponent"].mean() == pytest.approx(1.5, abs=0.1)
    # std(x[t + lag] - x[t]) ~ lag^H: flat for white noise (H = 0), sqrt(lag) for a random walk (H = 0.5).
    assert np.abs(noise_metrics["hurst_exponent"]).mean() < 0.05
    assert walk_metrics["hurst_exponent"].mean() == pytest.approx(0.5, abs=0.05)


def test_dfa_and_hurst_scales_follow_the_config():
    # 0.1 .. 2 s at 100 Hz, 8 log-spaced points: round(10 * 20 ** (k / 7)).
    np.testing.assert_array_equal(CONFIG.dfa_scales_for(4000), [10, 15, 24, 36, 55, 85, 130, 200])
    np.testing.assert_array_equal(CONFIG.hurst_lags_for(4000), [10, 15, 24, 36, 55, 85, 130, 200])
    # Capped at half the window; steps override seconds; without fs the bounds are fractions of the window.
    assert CONFIG.dfa_scales_for(200).max() == 100
    assert MetricsConfig(fs=FS, dfa_min_scale=4, dfa_max_scale=16, dfa_scales=3).dfa_scales_for(1000).tolist() == [
        4,
        8,
        16,
    ]
    assert MetricsConfig(fs=None).dfa_scales_for(1000)[[0, -1]].tolist() == [50, 500]
    assert MetricsConfig(fs=None).hurst_lags_for(1000)[[0, -1]].tolist() == [20, 200]
    assert np.isnan(compute_window_metrics(white((1, 1, 7)), CONFIG)["dfa_exponent"]).all()  # T < 8


# ---------------------------------------------------------------------------------------------- amplitude statistics
def test_kurtosis_and_tail_fraction_of_known_distributions():
    rng = np.random.default_rng(2)
    n = 200_000
    data = np.stack([rng.standard_normal(n), rng.laplace(size=n), rng.uniform(-1, 1, n)])[None].astype(np.float32)
    metrics = compute_window_metrics(data[..., :n], MetricsConfig(fs=None))
    # Excess kurtosis: Gaussian 0, Laplace 3, uniform -6/5.
    kurtosis = metrics["amplitude_kurtosis"][0]
    assert kurtosis[0] == pytest.approx(0.0, abs=0.05)
    assert kurtosis[1] == pytest.approx(3.0, abs=0.25)
    assert kurtosis[2] == pytest.approx(-1.2, abs=0.01)
    # P(|x| > 3 sigma) of a Gaussian = 2 (1 - Phi(3)) = 0.0026998; a uniform never exceeds sqrt(3) sigma.
    tails = metrics["amplitude_tail_fraction"][0]
    assert tails[0] == pytest.approx(0.0026998, abs=4e-4)
    assert tails[2] == 0.0


def test_flat_channel_has_no_kurtosis_or_tail_fraction():
    data = np.stack([np.full(100, 2.0), np.arange(100.0)])[None].astype(np.float32)
    metrics = compute_window_metrics(data, CONFIG)
    assert np.isnan(metrics["amplitude_kurtosis"][0, 0]) and np.isfinite(metrics["amplitude_kurtosis"][0, 1])
    assert np.isnan(metrics["amplitude_tail_fraction"][0, 0])
    assert metrics["spatial_connectivity"][0] == 0.0  # a flat channel correlates with nothing


# ---------------------------------------------------------------------------------------------- covariance
def test_covariance_matches_np_cov_and_a_hand_computed_case():
    data = white((3, 4, 50), seed=3)
    metrics = compute_window_metrics(data, CONFIG)
    for example in range(3):
        np.testing.assert_allclose(metrics["covariance"][example], np.cov(data[example]), rtol=1e-5, atol=1e-7)
    hand = compute_window_metrics(np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]]), CONFIG)["covariance"][0]
    np.testing.assert_allclose(hand, [[1.0, 2.0], [2.0, 4.0]])
    assert np.isnan(compute_window_metrics(white((1, 2, 1)), CONFIG)["covariance"]).all()  # T < 2


def test_spatial_connectivity():
    a, b = white((2, 1000), seed=4)
    identical = compute_window_metrics(np.stack([a, a, a])[None], CONFIG)["spatial_connectivity"][0]
    assert identical == pytest.approx(1.0)
    assert compute_window_metrics(np.stack([a, -2 * a])[None], CONFIG)["spatial_connectivity"][0] == pytest.approx(1.0)
    # Pairs (0, 1) = 1, (0, 2) = (1, 2) = |corr(a, b)|, close to 0: the mean is about 1/3.
    mixed = compute_window_metrics(np.stack([a, a, b])[None], CONFIG)["spatial_connectivity"][0]
    assert mixed == pytest.approx((1 + 2 * abs(np.corrcoef(a, b)[0, 1])) / 3, rel=1e-4)
    assert np.isnan(compute_window_metrics(a[None, None], CONFIG)["spatial_connectivity"][0])  # one channel


# ---------------------------------------------------------------------------------------------- coherence
def test_coherence_of_a_signal_with_itself_and_with_independent_noise():
    a, b = white((2, 6000), seed=5)
    metrics = compute_window_metrics(np.stack([a, a, b])[None], CONFIG)
    coherence = metrics["coherence"][0]
    assert coherence.shape == (3, 3, metrics["coherence_freqs"].size)
    np.testing.assert_allclose(coherence[0, 1], 1.0, atol=1e-5)
    np.testing.assert_allclose(coherence[[0, 1, 2], [0, 1, 2]], 1.0, atol=1e-5)
    assert coherence[0, 2].mean() < 0.05  # ~1 / (number of segments) for independent noise
    np.testing.assert_array_equal(metrics["coherence_freqs"], metrics["psd_freqs"])


def test_coherence_matches_scipy_without_detrending():
    from scipy.signal import coherence

    data = white((1, 2, 1500), seed=6)
    data[0, 1] += 0.5 * data[0, 0]
    metrics = compute_window_metrics(data, CONFIG)
    freqs, expected = coherence(data[0, 0], data[0, 1], fs=FS, nperseg=100, noverlap=50, detrend=False)
    keep = (freqs >= 1.0) & (freqs <= 50.0)
    np.testing.assert_allclose(metrics["coherence"][0, 0, 1], expected[keep], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------- summaries
def test_summaries_of_known_signals():
    a = white((1, 4, 2000), seed=7)
    sine = sinusoid(10.0, 20.0, channels=4)
    summaries = compute_summaries(np.concatenate([a, sine + 1e-3 * a]), CONFIG)
    assert set(summaries) >= {"psd_centroid", "cov_eig_entropy", "bandpower_ratio_alpha", "token_entropy"}
    assert all(value.shape == (2,) for value in summaries.values())
    # Independent equal-variance channels: eigenvalues ~equal (entropy ~1); one shared signal: one eigenvalue.
    assert summaries["cov_eig_entropy"][0] > 0.98 and summaries["cov_eig_entropy"][1] < 0.01
    assert summaries["cov_eig_top_frac"][1] == pytest.approx(1.0, abs=1e-3)
    assert summaries["psd_centroid"][1] == pytest.approx(10.0, abs=0.1)
    assert summaries["psd_entropy"][0] > 0.98 and summaries["psd_entropy"][1] < 0.4
    assert summaries["bandpower_ratio_alpha"][1] > 0.99
    assert summaries["spatial_connectivity"][1] == pytest.approx(1.0, abs=1e-4)
    assert np.isnan(summaries["token_entropy"]).all()  # real-valued data are not tokens


def test_token_statistics_match_a_naive_count():
    rng = np.random.default_rng(8)
    tokens = rng.integers(0, 4, size=(3, 5, 40))
    summaries = compute_summaries(tokens, CONFIG)
    for b in range(3):
        entropies = []
        for t in range(40):
            counts = np.array(list(Counter(tokens[b, :, t].tolist()).values()), dtype=float)
            p = counts / counts.sum()
            entropies.append(-(p * np.log2(p)).sum())
        assert summaries["token_entropy"][b] == pytest.approx(np.mean(entropies))
        unique = len(set(tokens[b].ravel().tolist())) / tokens[b].size
        assert summaries["token_unique_rate"][b] == pytest.approx(unique)
        assert summaries["token_repetition_rate"][b] == pytest.approx(1 - unique)
    # Integer-valued floats count as tokens; every channel equal at each step is 0 bits.
    same = np.repeat(np.arange(10.0)[None, None], 3, axis=1)
    assert compute_summaries(same, CONFIG)["token_entropy"][0] == 0.0


def test_take_examples_keeps_the_frequency_grids():
    metrics = compute_window_metrics(white((4, 2, 300)), CONFIG)
    picked = take_examples(metrics, np.array([2, 0]))
    np.testing.assert_array_equal(picked["psd"], metrics["psd"][[2, 0]])
    assert picked["psd_freqs"] is metrics["psd_freqs"] and picked["coherence"].shape[0] == 2


# ---------------------------------------------------------------------------------------------- config and bad input
def test_config_from_dict():
    config = MetricsConfig.from_dict({}, sfreq=123)
    assert config.fs == 123 and config.fmin == 0.5 and config.welch_nperseg_s == 1.0 and config.tail_sigma == 3.0
    assert config.bands["alpha"] == (8.0, 13.0) and config.max_frequency == pytest.approx(0.95 * 61.5)
    assert MetricsConfig.from_dict({"fs": 50}, sfreq=None).fs == 50
    assert MetricsConfig.from_dict({"fs": 50}, sfreq=200).fs == 50  # a configured rate wins
    assert MetricsConfig.from_dict({"bands": {"mu": [8, 12]}}).bands == {"mu": (8.0, 12.0)}
    assert MetricsConfig.from_dict(CONFIG.to_dict()) == CONFIG
    assert MetricsConfig(fs=None).with_fs(250).fs == 250 and CONFIG.with_fs(250).fs == FS


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"welch_seconds": 1}, "unknown metrics config keys \\['welch_seconds'\\]"),
        ({"fs": 0}, "metrics.fs must be positive"),
        ({"fs": -100}, "metrics.fs must be positive"),
        ({"fs": float("nan")}, "metrics.fs must be a finite number"),
        ({"fmin": 10, "fmax": 5}, "fmax"),
        ({"welch_noverlap_frac": 1.0}, "welch_noverlap_frac must lie in \\[0, 1\\)"),
        ({"dfa_scales": 1}, "dfa_scales must be an integer >= 2"),
        ({"hurst_min_lag": 0}, "hurst_min_lag must be a positive integer"),
        ({"bands": {"alpha": [13, 8]}}, "bands.alpha must satisfy 0 <= lo < hi"),
        ({"bands": {"alpha": 8}}, "bands.alpha must be \\[lo, hi\\]"),
        ({"tail_sigma": True}, "tail_sigma must be a finite number"),
    ],
)
def test_bad_config_is_a_value_error_naming_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        MetricsConfig.from_dict(values, sfreq=100)


@pytest.mark.parametrize("function", [compute_window_metrics, compute_summaries])
def test_bad_signals_are_value_errors(function):
    with pytest.raises(ValueError, match=r"\(batch, channels, time\), got 2 dimensions"):
        function(white((4, 100)), CONFIG)
    with pytest.raises(ValueError, match="empty"):
        function(np.zeros((1, 0, 100)), CONFIG)
    for bad in (math.nan, math.inf):
        data = white((1, 2, 100))
        data[0, 1, 7] = bad
        with pytest.raises(ValueError, match=r"1 NaN/inf values \(the first at index \[0, 1, 7\]\)"):
            function(data, CONFIG)
    with pytest.raises(ValueError, match="real numbers"):
        function(np.ones((1, 2, 10), dtype=complex), CONFIG)
    with pytest.raises(ValueError, match="unknown metrics config keys"):
        function(white((1, 2, 100)), {"fs": 100, "sfreq": 100})
