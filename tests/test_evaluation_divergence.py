"""Rollout divergence analysis (spec pipeline §5.6): pairs and controls, prefixes, aggregation, outputs, and the
controls on an oracle forecaster (must show a correct-context effect) and a context-blind one (must not)."""

import json
import types

import numpy as np
import pytest
from scipy.signal import lfilter

from brain_gen_hf.evaluation.divergence import (
    ControlConfig,
    DivergenceConfig,
    aggregate_curves,
    divergence_analysis,
    panel_layout,
    resolve_prefix_points,
    select_partners,
    stack_runs,
)
from brain_gen_hf.evaluation.rollouts import RolloutResult
from brain_gen_hf.evaluation.statistics import divergence_statistics

FS = 100.0
BANDS = ("delta", "theta", "alpha", "beta", "gamma")
# Spec §5.6 item 7: every metric of rollout_divergence.json.
SPEC_METRICS = {
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
} | {f"{family}_{band}" for family in ("psd_jsd", "psd_corr", "bandpower_ratio", "coherence") for band in BANDS}
ALL_CONTROLS = {"controls": {"target_swap": True, "prompt_swap": True, "real_real": True}}


def rollouts(generated, target, context_steps, metadata=None, sfreq=FS):
    """Anything with the RolloutResult attributes works."""
    metadata = [{} for _ in range(len(generated))] if metadata is None else metadata
    return types.SimpleNamespace(
        generated=generated,
        target=target,
        context_steps=context_steps,
        total_steps=np.shape(generated)[-1],
        sfreq=sfreq,
        metadata=metadata,
    )


def resonant_noise(rng, peak_hz, shape):
    """An AR(2) resonance at `peak_hz` (pole radius 0.95): each context gets its own spectrum."""
    theta = 2 * np.pi * peak_hz / FS
    a = [1.0, -2 * 0.95 * np.cos(theta), 0.95**2]
    return lfilter([1.0], a, rng.normal(size=shape), axis=-1).astype(np.float32)


def spectra_contexts(rng, n_contexts=12, channels=3, steps=500):
    peaks = np.linspace(3.0, 40.0, n_contexts)
    return np.stack([resonant_noise(rng, peak, (channels, steps)) for peak in peaks])


def test_oracle_forecaster_beats_the_swaps():
    rng = np.random.default_rng(0)
    target = spectra_contexts(rng)
    oracle = target + 1e-3 * rng.normal(size=target.shape).astype(np.float32)  # the true continuation + tiny noise
    metadata = [{"session_index": i, "rollout_index": 0, "dataset_key": "ds", "task_type": "rest"} for i in range(12)]
    result = RolloutResult(oracle, target, context_steps=100, total_steps=500, sfreq=FS, metadata=metadata)
    config = {"prefix_steps": [200], "include_max_prefix": True, **ALL_CONTROLS}
    divergence = divergence_analysis(result, config)
    assert divergence["prefix_steps"] == [200, 400]
    stats = divergence_statistics(divergence, {"metrics": ["psd_jsd", "covariance", "correlation", "coherence"]})
    rows = {(r["metric"], r["comparison"], r["horizon"]): r for r in stats["comparisons"]}
    assert len(rows) == 4 * 3 * 2
    for (_metric, _comparison, _horizon), row in rows.items():
        assert row["n"] == 12
        assert row["median_delta"] > 0 and row["prob_improvement"] == 1.0
        assert row["test"]["p_value"] < 0.05
        assert 0 < row["ci"]["low"] <= row["median_delta"] <= row["ci"]["high"]
    for metric in ("psd_jsd", "covariance", "correlation"):
        entry = divergence["metrics"][metric]
        assert max(entry["median"]) < min(entry["target_swap"]["q25"])


def test_context_blind_forecaster_shows_no_effect():
    rng = np.random.default_rng(1)
    target = np.stack([resonant_noise(rng, 10.0, (3, 500)) for _ in range(12)])
    blind = np.stack([resonant_noise(rng, 10.0, (3, 500)) for _ in range(12)])  # same process, any context
    config = {"prefix_steps": [200], **ALL_CONTROLS}
    divergence = divergence_analysis(rollouts(blind, target, context_steps=100), config)
    stats = divergence_statistics(divergence, {"metrics": ["psd_jsd", "covariance", "correlation"], "horizons": [4]})
    assert len(stats["comparisons"]) == 9
    for row in stats["comparisons"]:
        assert row["test"]["p_value"] > 0.05, row
        assert 0.15 < row["prob_improvement"] < 0.85


def test_identical_rollouts_have_zero_distance_and_the_json_structure(tmp_path):
    rng = np.random.default_rng(2)
    target = spectra_contexts(rng, n_contexts=4, steps=300)
    config = {"prefix_times_s": [1.0], **ALL_CONTROLS}
    divergence_analysis(rollouts(target.copy(), target, context_steps=100), config, out_dir=tmp_path, plot=False)
    saved = json.loads((tmp_path / "rollout_divergence.json").read_text())
    assert set(saved) == {
        "window_steps",
        "window_seconds",
        "stride_steps",
        "stride_seconds",
        "prefix_steps",
        "prefix_seconds",
        "sfreq",
        "metrics",
    }
    assert saved["window_steps"] is None and saved["stride_seconds"] is None  # explicit prefixes
    assert saved["prefix_steps"] == [100, 200] and saved["prefix_seconds"] == [1.0, 2.0] and saved["sfreq"] == FS
    assert set(saved["metrics"]) == SPEC_METRICS
    summary = {"per_run_lengths", "mean", "median", "q25", "q75", "std", "context_ids"}
    for entry in saved["metrics"].values():
        assert set(entry) == summary | {"x", "target_swap", "prompt_swap", "baseline"}
        assert entry["x"] == [1.0, 2.0] and entry["per_run_lengths"] == [2, 2, 2, 2]
        for control in ("target_swap", "prompt_swap", "baseline"):
            assert set(entry[control]) == summary and entry[control]["context_ids"] == [0, 1, 2, 3]
    for name in ("correlation", "covariance", "psd_jsd", "band_jsd", "stft_magnitude", "fft_magnitude", "coherence"):
        assert np.allclose(saved["metrics"][name]["median"], 0.0, atol=1e-6), name
    assert np.allclose(saved["metrics"]["psd_corr"]["median"], 1.0, atol=1e-6)


def correlation_distance(a, b):
    """Spec §5.5 by hand: the channel mean of (1 - Pearson r) / 2."""
    return np.mean([(1 - np.corrcoef(a[c], b[c])[0, 1]) / 2 for c in range(a.shape[0])])


def test_each_control_pairs_the_right_runs():
    # Two runs: every control's partner is the other run, so each curve can be computed by hand.
    rng = np.random.default_rng(8)
    generated, target = rng.normal(size=(2, 2, 2, 150)).astype(np.float32)
    config = {"prefix_steps": [40], "include_max_prefix": False, **ALL_CONTROLS}
    entry = divergence_analysis(rollouts(generated, target, 100), config)["metrics"]["correlation"]
    gen, tgt = generated[..., 100:140], target[..., 100:140]
    expected = {
        "correct": [correlation_distance(gen[i], tgt[i]) for i in (0, 1)],
        "target_swap": [correlation_distance(gen[i], tgt[1 - i]) for i in (0, 1)],
        "prompt_swap": [correlation_distance(gen[1 - i], tgt[i]) for i in (0, 1)],
        "baseline": [correlation_distance(tgt[i], tgt[1 - i]) for i in (0, 1)],
    }
    for name, values in expected.items():
        condition = entry if name == "correct" else entry[name]
        assert np.allclose(np.asarray(condition["runs"])[:, 0], values, atol=1e-5), name
        assert condition["median"][0] == pytest.approx(np.median(values), abs=1e-5)


def test_plot_formats_and_name(tmp_path):
    rng = np.random.default_rng(3)
    target = rng.normal(size=(3, 2, 150)).astype(np.float32)
    config = {
        "prefix_steps": [50],
        "plot_formats": ["png", "pdf"],
        "plots": {"metrics": ["covariance"], "name": "main"},
    }
    divergence_analysis(rollouts(target + 0.1, target, 50), config, out_dir=tmp_path)
    for stem in ("main", "rollout_divergence"):
        for fmt in ("png", "pdf"):
            assert (tmp_path / f"{stem}.{fmt}").stat().st_size > 0
    divergence_analysis(rollouts(target, target, 50), config, out_dir=tmp_path / "none", plot=False)
    assert sorted(p.name for p in (tmp_path / "none").iterdir()) == ["rollout_divergence.json"]
    assert DivergenceConfig.from_dict({}).plot_formats == ["png"]  # the default: png only


def test_panel_layout_bands_start_new_rows():
    names = ["psd_corr_beta", "covariance", "coherence_gamma", "coherence_delta", "my_metric", "correlation"]
    assert panel_layout(names, 5) == [
        "correlation",
        "covariance",
        "my_metric",
        None,
        None,
        "coherence_delta",
        "coherence_gamma",
        None,
        None,
        None,
        "psd_corr_beta",
        None,
        None,
        None,
        None,
    ]


def test_real_real_baseline_is_nan_with_one_run(tmp_path):
    rng = np.random.default_rng(4)
    target = rng.normal(size=(1, 2, 200)).astype(np.float32)
    config = {"prefix_steps": [50], **ALL_CONTROLS}
    divergence = divergence_analysis(rollouts(target + 0.1, target, 100), config, out_dir=tmp_path, plot=False)
    entry = divergence["metrics"]["covariance"]
    assert entry["target_swap"] is None and entry["prompt_swap"] is None  # no partner for a lone context
    assert np.isnan(entry["baseline"]["median"]).all() and entry["baseline"]["context_ids"] == [0]
    saved = json.loads((tmp_path / "rollout_divergence.json").read_text())["metrics"]["covariance"]
    assert saved["baseline"]["median"] == [None, None] and saved["target_swap"] is None
    assert np.isfinite(entry["median"]).all()


def test_partners_respect_match_keys_and_seed():
    metadata = [{"dataset_key": d, "task_type": t} for d in ("a", "b") for t in ("rest", "task") for _ in range(3)]
    metadata.append({"dataset_key": "c", "task_type": "rest"})  # alone in its group
    key = [(m["dataset_key"], m["task_type"]) for m in metadata]
    pairs, context_ids = select_partners(metadata, 1, np.random.default_rng(0), ["dataset_key", "task_type"])
    assert list(context_ids) == list(range(12)) and list(pairs[:, 0]) == list(range(12))
    assert all(key[i] == key[j] and i != j for i, j in pairs)
    again, _ = select_partners(metadata, 1, np.random.default_rng(0), ["dataset_key", "task_type"])
    assert np.array_equal(pairs, again)
    draws = {tuple(select_partners(metadata, 1, np.random.default_rng(s), ["dataset_key"])[0][:, 1]) for s in range(5)}
    assert len(draws) > 1  # the seed decides the partners
    # Two partners out of two candidates: without replacement; five out of two: with replacement.
    two, _ = select_partners(metadata, 2, np.random.default_rng(1), ["dataset_key", "task_type"])
    assert all(
        sorted(two[two[:, 0] == i, 1]) == [j for j in range(12) if key[j] == key[i] and j != i] for i in range(12)
    )
    five, ids = select_partners(metadata, 5, np.random.default_rng(1), ["dataset_key", "task_type"])
    assert len(five) == 60 and list(ids) == [i for i in range(12) for _ in range(5)]
    # Rollouts of one session share a real continuation: never partners.
    sessions = [{"session_index": i // 2} for i in range(6)]
    pairs, _ = select_partners(sessions, 3, np.random.default_rng(0), None)
    assert all(i // 2 != j // 2 for i, j in pairs)


def test_default_match_keys_group_the_swaps():
    rng = np.random.default_rng(5)
    target = rng.normal(size=(6, 2, 120)).astype(np.float32)
    metadata = [{"dataset_key": "ds", "task_type": task, "subject": i} for i, task in enumerate("aabbcc")]
    config = {"prefix_steps": [20], "include_max_prefix": False, "controls": {"target_swap": {"seed": 3}}}
    divergence = divergence_analysis(rollouts(target + 0.5, target, 100, metadata), config)
    swapped = divergence["metrics"]["correlation"]["target_swap"]
    assert swapped["context_ids"] == list(range(6))
    # Within each task pair the partner is the other run: recompute run 0's swap distance by hand (1 - r) / 2.
    gen, other = target[0, :, 100:120] + 0.5, target[1, :, 100:120]
    r = [np.corrcoef(gen[c], other[c])[0, 1] for c in range(2)]
    assert swapped["runs"][0][0] == pytest.approx(np.mean([(1 - v) / 2 for v in r]), abs=1e-5)
    with pytest.raises(ValueError, match=r"match_keys \['site'\] are missing from run 0's metadata"):
        divergence_analysis(rollouts(target, target, 100, metadata), {**config, "match_keys": ["site"]})


def test_prefix_points_from_times_and_steps():
    def points(values, steps=1000, sfreq=FS):
        return resolve_prefix_points(DivergenceConfig.from_dict(values), steps, sfreq)

    assert points({"prefix_times_s": [2, 4.004]}) == ([200, 400, 1000], None, None)
    assert points({"prefix_steps": [250, 250.4], "prefix_times_s": [2.5]}) == ([250, 1000], None, None)
    assert points({"prefix_times_s": [5, 20], "include_max_prefix": False}) == ([500], None, None)
    assert points({"prefix_times_s": [30]}, sfreq=None) == ([30, 1000], None, None)  # no rate: times are steps
    assert points({"evaluation": {"prefix_times_seconds": [1]}}) == ([100, 1000], None, None)
    # Defaults: a 0.5 s window (50 steps at 100 Hz, 20 steps without a rate), stride = window.
    assert points({}, steps=200) == ([50, 100, 150, 200], 50, 50)
    assert points({}, steps=70, sfreq=None) == ([20, 40, 60], 20, 20)
    assert points({"divergence_window_steps": 12, "stride_steps": 20}, steps=60) == ([12, 32, 52], 12, 20)
    assert points({"window_seconds": 0.25}, steps=50)[1] == 25
    with pytest.raises(ValueError, match="window_seconds / stride_seconds need a sampling rate"):
        points({"window_seconds": 0.25}, steps=50, sfreq=None)
    with pytest.raises(ValueError, match="window_steps must be a whole number of steps"):
        points({"window_steps": 2.5})
    with pytest.raises(ValueError, match=r"no divergence prefix point lies in \(0, 100\]"):
        points({"prefix_steps": [500], "include_max_prefix": False}, steps=100)


def test_window_prefixes_in_the_result():
    rng = np.random.default_rng(6)
    target = rng.normal(size=(2, 2, 250)).astype(np.float32)
    divergence = divergence_analysis(rollouts(target, target, 50, sfreq=None), {"stride_steps": 20})
    # Without a rate: window 20 steps; points 20, 40, ..., 200.
    assert (
        divergence["window_steps"] == 20 and divergence["stride_steps"] == 20 and divergence["window_seconds"] is None
    )
    assert divergence["prefix_seconds"] is None
    assert len(divergence["metrics"]["correlation"]["median"]) == (200 - 20) // 20 + 1
    assert np.allclose(divergence["metrics"]["correlation"]["median"], 0.0, atol=1e-6)


def test_aggregate_per_context_then_across():
    curves = np.array([[1.0, np.nan], [3.0, 4.0], [10.0, 10.0], [0.0, 2.0], [0.0, 6.0], [0.0, 1.0]])
    ids = np.array([0, 0, 1, 2, 2, 2])
    mean = aggregate_curves(curves, ids, "mean")
    assert mean["context_ids"] == [0, 1, 2] and mean["per_run_lengths"] == [2, 2, 2]
    assert np.allclose(mean["runs"], [[2.0, 4.0], [10.0, 10.0], [0.0, 3.0]])
    assert np.allclose(mean["median"], [2.0, 4.0]) and np.allclose(mean["mean"], [4.0, 17 / 3])
    assert np.allclose(mean["q25"], [1.0, 3.5]) and np.allclose(mean["q75"], [6.0, 7.0])
    assert np.allclose(mean["std"], [np.std([2.0, 10.0, 0.0]), np.std([4.0, 10.0, 3.0])])
    median = aggregate_curves(curves, ids, "median")
    assert np.allclose(median["runs"], [[2.0, 4.0], [10.0, 10.0], [0.0, 2.0]])
    nan = aggregate_curves(np.full((2, 3), np.nan), np.array([0, 1]))
    assert np.isnan(nan["median"]).all() and np.isnan(nan["std"]).all()


def test_stacking_drops_odd_runs_and_filters_metadata():
    runs = [np.zeros((2, 10)), np.zeros((2, 10)), np.zeros((3, 10)), np.zeros((2, 8))]
    targets = [np.ones((2, 10)), np.ones((2, 10)), np.ones((3, 10)), np.ones((2, 8))]
    metadata = [{"name": n} for n in "abcd"]
    generated, target, kept = stack_runs(runs, targets, metadata)
    assert generated.shape == target.shape == (2, 2, 10) and [m["name"] for m in kept] == ["a", "b"]
    generated, _, kept = stack_runs([np.zeros((2, 10)), np.zeros((2, 10))], [np.zeros((2, 10)), np.ones((2, 9))], None)
    assert generated.shape == (1, 2, 10) and kept == [{}]


def test_bad_input(tmp_path):
    rng = np.random.default_rng(7)
    target = rng.normal(size=(2, 2, 100)).astype(np.float32)
    with pytest.raises(ValueError, match=r"generated \(2, 2, 90\) and target \(2, 2, 100\)"):
        divergence_analysis(rollouts(target[..., :90], target, 50), {})
    with pytest.raises(ValueError, match=r"context_steps \(100\) must lie in \[0, 100\)"):
        divergence_analysis(rollouts(target, target, 100), {})
    with pytest.raises(ValueError, match="3 metadata entries for 2 runs"):
        divergence_analysis(rollouts(target, target, 50, metadata=[{}] * 3), {})
    with pytest.raises(ValueError, match="2 generated runs but 1 target runs"):
        stack_runs(list(target), list(target[:1]), None)
    with pytest.raises(ValueError, match=r"unknown keys \['prefix_time_s'\] in divergence"):
        DivergenceConfig.from_dict({"prefix_time_s": [1]})
    with pytest.raises(ValueError, match=r"unknown keys \['num_swaps'\] in divergence control 'target_swap'"):
        DivergenceConfig.from_dict({"controls": {"target_swap": {"num_swaps": 2}}})
    with pytest.raises(ValueError, match=r"unknown keys \['shuffle'\] in divergence.controls"):
        DivergenceConfig.from_dict({"controls": {"shuffle": True}})
    with pytest.raises(ValueError, match="aggregate must be one of"):
        DivergenceConfig.from_dict({"real_real": {"aggregate": "max"}})
    with pytest.raises(ValueError, match="'stats' is its own section"):
        DivergenceConfig.from_dict({"stats": {}})
    with pytest.raises(ValueError, match=r"plots.lines must be names among"):
        DivergenceConfig.from_dict({"plots": {"lines": ["model"]}})
    with pytest.raises(ValueError, match="prefix_times_s must be positive numbers"):
        DivergenceConfig.from_dict({"prefix_times_s": [-1]})
    with pytest.raises(ValueError, match=r"plots.metrics \['psd'\] are not divergence metrics"):
        divergence_analysis(rollouts(target, target, 50), {"plots": {"metrics": ["psd"]}}, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # checked before anything is written


def test_config_aliases_and_round_trip():
    config = DivergenceConfig.from_dict(
        {
            "prefix_times_s": [2, 4],
            "target_swap": {"num_pairs_per_context": 2, "selection": {"seed": 5, "match_keys": "task_type"}},
            "controls": {"real_real": {"num_real_real_pairs_per_context": 3, "aggregate": "median"}},
            "plot_rollout_divergence": False,
            "plots": [{"metrics": ["covariance"]}],
        }
    )
    assert config.target_swap == ControlConfig(True, 2, ["task_type"], 5, "mean")
    assert config.real_real.num_swaps_per_context == 3 and config.real_real.aggregate == "median"
    assert not config.prompt_swap.enabled and not config.plot and config.plots.metrics == ["covariance"]
    assert DivergenceConfig.from_dict(config.to_dict()) == config
    defaults = DivergenceConfig.from_dict({})
    assert not defaults.target_swap.enabled and not defaults.prompt_swap.enabled and defaults.real_real.enabled
