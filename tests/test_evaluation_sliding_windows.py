"""Sliding-window analysis (brain_gen_hf.evaluation.sliding_windows, spec pipeline §5.7; checklist §7.12).

Expected values follow from the construction: window counts and end times from the window arithmetic, envelope rates
from the definition of linearly interpolated percentiles, "far outside" from signals of a different kind.
"""

import json

import numpy as np
import pytest

from brain_gen_hf.evaluation.rollouts import RolloutResult
from brain_gen_hf.evaluation.sliding_windows import (
    MAIN_WINDOW_METRICS,
    SlidingWindowConfig,
    out_of_envelope_rate,
    sliding_window_analysis,
    summary_curves,
)

FS = 100.0


def result(generated: np.ndarray, target: np.ndarray, context_steps: int, sfreq: float = FS) -> RolloutResult:
    generated, target = generated.astype(np.float32), target.astype(np.float32)
    return RolloutResult(
        generated=generated,
        target=target,
        context_steps=context_steps,
        total_steps=generated.shape[-1],
        sfreq=sfreq,
        metadata=[{"session_index": i} for i in range(generated.shape[0])],
    )


def white(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_config_resolution_and_reference_aliases():
    default = SlidingWindowConfig()
    assert default.window_steps(FS) == 3000 and default.stride(FS, 3000) == 3000  # 30 s, stride = window
    assert default.out_of_envelope_rate == "mean" and default.plot and default.dpi == 300
    config = SlidingWindowConfig.from_dict({"window_length_s": 0.25, "stride_s": 0.1})
    assert config.window_steps(FS) == 25 and config.stride(FS, 25) == 10
    steps_win = SlidingWindowConfig.from_dict({"window_length_steps": 12, "window_length_s": 5.0})
    assert steps_win.window_steps(FS) == 12
    aliases = SlidingWindowConfig.from_dict(
        {
            "window_length_seconds": 2.0,
            "divergence_window_steps": 7,  # a lower-priority key: ignored when a window key is set
            "divergence_stride_seconds": 0.5,
            "plot_rollout_window_metrics": False,
            "plots": [{"metrics": ["psd_entropy"]}],
        }
    )
    assert aliases.window_steps(FS) == 200 and aliases.stride(FS, 200) == 50
    assert aliases.plot is False and aliases.plot_metrics == ["psd_entropy"]
    assert SlidingWindowConfig.from_dict({"divergence_window_steps": 7}).window_steps(FS) == 7
    for mode, expected in [("avg", "mean"), ("True", "mean"), (True, "mean"), ("per_feature", "per_feature")]:
        assert SlidingWindowConfig(out_of_envelope_rate=mode).out_of_envelope_rate == expected
    for off in ("none", "off", False, None):
        assert SlidingWindowConfig(out_of_envelope_rate=off).out_of_envelope_rate is None
    assert SlidingWindowConfig(plot_metrics="main").plot_metrics == list(MAIN_WINDOW_METRICS)
    assert SlidingWindowConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"window": 5}, "unknown sliding_window config keys \\['window'\\]"),
        ({"window_length_s": 0}, "window_length_s must be a positive number"),
        ({"stride_steps": 2.5}, "stride_steps must be a positive integer"),
        ({"out_of_envelope_rate": "max"}, "out_of_envelope_rate must be 'mean', 'per_feature' or null"),
        ({"plot": "yes"}, "plot must be true or false"),
        ({"plot": True, "plot_rollout_window_metrics": False}, "both 'plot' and its alias"),
        ({"plots": {"metrics": ["a"], "title": "x"}}, "plots must be"),
    ],
)
def test_bad_config_is_a_value_error(values, message):
    with pytest.raises(ValueError, match=message):
        SlidingWindowConfig.from_dict(values)


def test_out_of_envelope_rate_counts_finite_runs_outside_the_band():
    # The checklist case: generated [[0, 2]] against a real envelope collapsed on 0.
    np.testing.assert_array_equal(out_of_envelope_rate(np.array([[0.0, 2.0]]), np.zeros(2), np.zeros(2)), [0, 1])
    generated = np.array([[0.0, np.nan, 5.0], [1.0, 2.0, np.nan], [-1.0, 0.5, np.nan]])
    rate = out_of_envelope_rate(generated, np.array([-0.5, 0.0, 0.0]), np.array([0.5, 1.0, 1.0]))
    np.testing.assert_allclose(rate, [2 / 3, 1 / 2, 1.0])
    assert np.isnan(out_of_envelope_rate(np.full((2, 1), np.nan), np.zeros(1), np.ones(1))).all()


def test_generated_equal_to_target():
    runs = 6
    target = white((runs, 3, 700))
    payload = sliding_window_analysis(result(target.copy(), target, 100), {"window_length_s": 2.0}, None)
    # 600 continuation samples, 200-sample windows every 200: 3 windows ending at 2, 4, 6 s.
    assert payload["window_steps"] == 200 and payload["stride_steps"] == 200 and payload["x"] == [2.0, 4.0, 6.0]
    # Linear-interpolated 5 % / 95 % quantiles of 6 distinct values lie strictly inside the smallest and largest:
    # exactly 2 of the 6 runs fall outside the real envelope, for every metric with distinct values.
    for name in ("psd_centroid", "one_over_f_exponent", "cov_eig_entropy", "bandpower_ratio_alpha"):
        np.testing.assert_allclose(payload["out_of_envelope_rate"]["per_metric"][name], 2 / runs)
        np.testing.assert_allclose(payload["diversity_proxy"]["per_metric"][name], 1.0)  # identical spreads
        entry = payload["metrics"][name]
        np.testing.assert_allclose(entry["generated"]["median"], entry["target"]["q50"])
    assert payload["diversity_proxy"]["metric"] == "iqr_ratio"


def test_generated_far_outside_the_real_envelope():
    t = np.arange(1100) / FS
    target = white((8, 4, 1100), seed=1)
    # One 10 Hz oscillation shared by every channel (with a trace of noise): narrowband, fully correlated.
    generated = np.cos(2 * np.pi * 10 * t)[None, None] + 0.01 * white((8, 4, 1100), seed=2)
    payload = sliding_window_analysis(result(generated, target, 100), {"window_length_s": 2.0, "stride_s": 1.0}, None)
    assert len(payload["x"]) == (1000 - 200) // 100 + 1
    rates = payload["out_of_envelope_rate"]
    for name in MAIN_WINDOW_METRICS + ("spatial_connectivity", "psd_entropy"):
        np.testing.assert_array_equal(rates["per_metric"][name], 1.0, err_msg=name)
    assert min(rates["mean"]) > 0.8


def test_files_filters_and_summary_over_the_plotted_metrics(tmp_path):
    target = white((4, 3, 600), seed=3)
    generated = 0.5 * white((4, 3, 600), seed=4)
    config = {"window_length_s": 1.0, "stride_s": 0.5, "plot_metrics": ["psd_entropy", "cov_eig_entropy"], "dpi": 40}
    payload = sliding_window_analysis(result(generated, target, 200), config, {"fmin": 1.0}, None, tmp_path)
    assert (tmp_path / "rollout_window_metrics.png").stat().st_size > 0
    written = json.loads(
        (tmp_path / "rollout_window_metrics.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"),
    )
    assert {"spatial_connectivity", "bandpower_ratio_delta", "cov_eig_entropy", "psd_entropy"} <= set(
        written["metrics"]
    )
    assert set(written["metrics"]["psd_entropy"]["target"]) == {"q05", "q25", "q50", "q75", "q95"}
    assert set(written["metrics"]["psd_entropy"]["generated"]) == {"median", "q25", "q75"}
    assert written["out_of_envelope_rate"]["mode"] == "mean" and "token_entropy" not in written["metrics"]
    assert written["window_seconds"] == 1.0 and written["stride_seconds"] == 0.5 and written["sfreq"] == FS
    assert written["x"] == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
    # The figure's summary curves are recomputed over the plotted metrics only.
    envelope, diversity = summary_curves(payload, ["psd_entropy"])
    np.testing.assert_allclose(envelope, payload["out_of_envelope_rate"]["per_metric"]["psd_entropy"])
    np.testing.assert_allclose(diversity, payload["diversity_proxy"]["per_metric"]["psd_entropy"])
    with pytest.raises(ValueError, match="plot_metrics \\['psd_power'\\] are not window metrics"):
        sliding_window_analysis(
            result(generated, target, 200), {**config, "plot_metrics": ["psd_power"]}, {}, None, tmp_path
        )


def test_per_feature_mode_has_no_mean_and_off_mode_no_rates():
    target, generated = white((3, 2, 500), seed=5), white((3, 2, 500), seed=6)
    per_feature = sliding_window_analysis(
        result(generated, target, 100), {"out_of_envelope_rate": "per_feature", "window_length_s": 2.0}
    )
    assert per_feature["out_of_envelope_rate"]["mean"] is None and per_feature["out_of_envelope_rate"]["per_metric"]
    assert summary_curves(per_feature, list(per_feature["metrics"]))[0] is None
    off = sliding_window_analysis(
        result(generated, target, 100), {"out_of_envelope_rate": None, "window_length_s": 2.0}
    )
    assert "out_of_envelope_rate" not in off and "diversity_proxy" in off


def test_context_is_trimmed_and_tokens_get_token_statistics():
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, 5, size=(3, 2, 6)).astype(np.float32)  # integer-valued: token ids
    other = rng.integers(0, 5, size=(3, 2, 6)).astype(np.float32)
    # 6 steps with 2 of context: 4 continuation steps, windows of 2 every 2 -> 2 windows.
    payload = sliding_window_analysis(result(tokens, other, 2, sfreq=10.0), {"window_length_steps": 2}, None)
    assert payload["x"] == [0.2, 0.4] and len(payload["diversity_proxy"]["mean"]) == 2
    assert {"token_entropy", "token_unique_rate", "token_repetition_rate"} <= set(payload["metrics"])
    assert "psd_centroid" not in payload["metrics"]  # 2-sample windows have no spectrum: all-NaN metrics are dropped


def test_bad_inputs_are_value_errors():
    target = white((2, 2, 300))
    with pytest.raises(ValueError, match="shorter than one sliding window of 3000 samples"):
        sliding_window_analysis(result(target, target, 100), {})
    with pytest.raises(ValueError, match="positive sampling rate"):
        sliding_window_analysis(result(target, target, 100), {"window_length_steps": 50}, None, sfreq=0.0)

    class Runs:  # any object with the RolloutResult attributes
        generated, target, context_steps, sfreq = white((2, 2, 300)), white((2, 3, 300)), 100, FS

    with pytest.raises(ValueError, match="must both be \\(runs, channels, time\\)"):
        sliding_window_analysis(Runs(), {"window_length_steps": 50})
    with pytest.raises(ValueError, match="unknown metrics config keys"):
        sliding_window_analysis(result(target, target, 100), {"window_length_steps": 50}, {"welch": 1})
