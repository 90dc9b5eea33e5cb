"""Divergence statistics (spec pipeline §5.6 step 9): comparisons, delta signs, horizons, bootstrap CI, Wilcoxon."""

import json

import numpy as np
import pytest

from brain_gen_hf.evaluation.statistics import (
    STATS_JSON,
    STATS_MD,
    BootstrapConfig,
    StatsConfig,
    bootstrap_median_ci,
    comparison_conditions,
    divergence_statistics,
    snap_horizons,
    wilcoxon_test,
)


def condition(runs, context_ids=None):
    runs = np.asarray(runs, dtype=float)
    ids = list(range(len(runs))) if context_ids is None else list(context_ids)
    return {"runs": runs.tolist(), "context_ids": ids}


def divergence(metrics: dict, x, sfreq=100.0) -> dict:
    """A divergence result by hand: metric -> {"gen": runs, control name: runs}."""
    out = {}
    for name, conditions in metrics.items():
        entry = {**condition(conditions["gen"]), "x": list(x)}
        for key in ("target_swap", "prompt_swap", "baseline"):
            entry[key] = condition(conditions[key]) if key in conditions else None
        out[name] = entry
    return {"sfreq": sfreq, "metrics": out}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("correct_vs_target_swap", ("target_swap", "gen")),
        ("correct_vs_prompt_swap", ("prompt_swap", "gen")),
        ("correct_vs_real_real", ("baseline", "gen")),
        ("baseline", ("baseline", "gen")),
        ("prompt_swap_vs_real_real", ("baseline", "prompt_swap")),
        ("target_swap_vs_baseline", ("baseline", "target_swap")),
    ],
)
def test_comparison_names_map_to_conditions(name, expected):
    assert comparison_conditions(name) == expected


def test_unknown_comparison_name_is_an_error():
    with pytest.raises(ValueError, match="unknown comparison 'gen_vs_gen'"):
        StatsConfig.from_dict({"comparisons": ["gen_vs_gen"]})


def test_delta_sign_distance_and_similarity():
    # The reference checklist: psd_corr (similarity) 0.9 correct vs 0.5 control -> positive; covariance
    # (distance) 0.2 correct vs 0.8 control -> positive.
    n = 8
    data = divergence(
        {
            "psd_corr": {"gen": [[0.9]] * n, "target_swap": [[0.5]] * n},
            "covariance": {"gen": [[0.2]] * n, "target_swap": [[0.8]] * n},
        },
        x=[1.0],
    )
    config = StatsConfig.from_dict({"comparisons": ["correct_vs_target_swap"]})
    rows = {row["metric"]: row for row in divergence_statistics(data, config)["comparisons"]}
    assert rows["psd_corr"]["median_delta"] == pytest.approx(0.4)
    assert rows["covariance"]["median_delta"] == pytest.approx(0.6)
    assert rows["psd_corr"]["prob_improvement"] == 1.0 and rows["covariance"]["prob_improvement"] == 1.0
    assert (rows["covariance"]["left"], rows["covariance"]["right"]) == ("target_swap", "gen")
    # An explicit override flips the sign.
    flipped = StatsConfig.from_dict({"comparisons": [{"name": "target", "statistic": {"delta": "gen_minus_control"}}]})
    rows = {row["metric"]: row for row in divergence_statistics(data, flipped)["comparisons"]}
    assert rows["covariance"]["median_delta"] == pytest.approx(-0.6)


def test_median_delta_and_prob_improvement_pair_by_context():
    # gen contexts 0..3; the control holds contexts 1..4 in another order: only 1, 2, 3 pair up.
    gen = condition([[1.0], [2.0], [3.0], [4.0]], context_ids=[0, 1, 2, 3])
    control = condition([[2.5], [0.0], [1.5], [9.0]], context_ids=[3, 2, 1, 4])
    data = {"sfreq": None, "metrics": {"covariance": {**gen, "x": [5.0], "target_swap": control}}}
    config = StatsConfig.from_dict({"comparisons": ["target"], "inference": {}})
    (row,) = divergence_statistics(data, config)["comparisons"]
    # deltas (control - correct): ctx1 1.5-2 = -0.5, ctx2 0-3 = -3, ctx3 2.5-4 = -1.5
    assert row["n"] == 3
    assert row["median_delta"] == pytest.approx(-1.5)
    assert row["prob_improvement"] == 0.0
    assert "ci" not in row and "test" not in row


def test_horizons_snap_to_the_nearest_prefix():
    x = np.array([2.0, 4.0, 10.0])
    assert snap_horizons("all", x) == [(0, 2.0), (1, 4.0), (2, 10.0)]
    assert snap_horizons([2.9, 3.1, 100.0], x) == [(0, 2.0), (1, 4.0), (2, 10.0)]
    n = 6
    data = divergence({"covariance": {"gen": [[0.1, 0.2, 0.3]] * n, "baseline": [[1.0, 1.0, 1.0]] * n}}, x=x)
    rows = divergence_statistics(data, {"comparisons": ["real"], "primary_horizon_s": [9.0]})["comparisons"]
    assert [row["horizon"] for row in rows] == [10.0]
    assert rows[0]["median_delta"] == pytest.approx(0.7)


def test_bootstrap_ci_of_the_median_two_and_three_points():
    # Resampling {1, 5}: the median is 1 (p = 1/4), 3 (1/2) or 5 (1/4), so the 2.5/97.5 percentiles are 1 and 5.
    assert bootstrap_median_ci(np.array([1.0, 5.0]), BootstrapConfig(n_boot=2000, seed=0)) == (1.0, 5.0)
    # Resampling {1, 2, 10}: P(median = 1) = P(median = 10) = 7/27 > 2.5 %.
    assert bootstrap_median_ci(np.array([1.0, 2.0, 10.0]), BootstrapConfig(n_boot=2000, seed=1)) == (1.0, 10.0)
    # One value: every resample is that value.
    assert bootstrap_median_ci(np.array([0.3]), BootstrapConfig()) == (0.3, 0.3)


def test_bootstrap_ci_is_seeded_and_covers_the_median():
    deltas = np.random.default_rng(3).normal(1.0, 1.0, size=40)
    a = bootstrap_median_ci(deltas, BootstrapConfig(n_boot=300, seed=7))
    b = bootstrap_median_ci(deltas, BootstrapConfig(n_boot=300, seed=7))
    assert a == b
    assert a[0] < np.median(deltas) < a[1]
    # The 95 % interval of a median of 40 N(1, 1) draws is about +-0.4 wide; not degenerate, not huge.
    assert 0.2 < a[1] - a[0] < 1.5


def test_wilcoxon_exact_p_value_and_failure():
    # Six positive distinct deltas: the exact two-sided p-value is 2 / 2**6; the smaller rank sum is 0.
    statistic, p_value = wilcoxon_test(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    assert statistic == 0.0
    assert p_value == pytest.approx(2 / 64)


def test_wilcoxon_error_gives_nan_written_as_null(tmp_path, monkeypatch):
    import scipy.stats

    def failing(_):
        raise ValueError("cannot test")

    monkeypatch.setattr(scipy.stats, "wilcoxon", failing)
    assert all(np.isnan(wilcoxon_test(np.array([1.0, 2.0]))))
    data = divergence({"covariance": {"gen": [[0.5]] * 4, "baseline": [[0.7]] * 4}}, x=[1.0])
    divergence_statistics(data, {"comparisons": ["real"]}, out_dir=tmp_path)
    (row,) = json.loads((tmp_path / STATS_JSON).read_text())["comparisons"]
    assert row["median_delta"] == pytest.approx(0.2)
    assert row["test"] == {"type": "wilcoxon_signed_rank", "statistic": None, "p_value": None}


def test_outputs_written_and_markdown_only_with_results(tmp_path):
    n = 6
    data = divergence({"covariance": {"gen": [[0.1], [0.2]] * 3, "target_swap": [[0.5], [0.9]] * 3}}, x=[1.0])
    config = {
        "comparisons": ["correct_vs_target_swap", "correct_vs_prompt_swap"],  # no prompt_swap: skipped
        "inference": {"ci": {"method": "bootstrap", "n_boot": 50, "seed": 0}, "test": {"type": "wilcoxon_signed_rank"}},
    }
    stats = divergence_statistics(data, config, out_dir=tmp_path)
    saved = json.loads((tmp_path / STATS_JSON).read_text())
    assert set(saved) == {"unit_of_replication", "horizon_units", "comparisons"}
    assert saved["unit_of_replication"] == "context" and saved["horizon_units"] == "seconds"
    (row,) = saved["comparisons"]
    assert set(row) == {
        "metric",
        "comparison",
        "control",
        "baseline",
        "left",
        "right",
        "horizon",
        "n",
        "median_delta",
        "prob_improvement",
        "ci",
        "test",
    }
    assert row["n"] == n and set(row["ci"]) == {"method", "n_boot", "low", "high"}
    assert set(row["test"]) == {"type", "statistic", "p_value"}
    assert stats["comparisons"][0]["metric"] == "covariance"
    table = (tmp_path / STATS_MD).read_text().splitlines()
    assert table[0] == (
        "| metric | comparison | horizon | n | median_delta | prob_improvement | ci_low | ci_high | p_value |"
    )
    assert table[2].startswith("| covariance | correct_vs_target_swap | 1.000 | 6 |")

    empty = tmp_path / "empty"
    divergence_statistics(data, {"comparisons": ["correct_vs_prompt_swap"]}, out_dir=empty)
    assert json.loads((empty / STATS_JSON).read_text())["comparisons"] == []
    assert not (empty / STATS_MD).exists()


def test_config_round_trip_and_bad_keys():
    config = StatsConfig.from_dict(
        {
            "comparisons": ["correct_vs_target_swap", {"name": "correct_vs_real_real", "inference": {}}],
            "horizons": [2, 4],
            "inference": {
                "ci": {"method": "bootstrap", "n_boot": 100, "seed": 3},
                "test": {"type": "wilcoxon_signed_rank"},
            },
        }
    )
    assert StatsConfig.from_dict(config.to_dict()) == config
    assert config.horizons == [2.0, 4.0] and config.inference.ci.n_boot == 100
    with pytest.raises(ValueError, match=r"unknown keys \['n_bootstrap'\] in stats.inference.ci"):
        StatsConfig.from_dict({"inference": {"ci": {"n_bootstrap": 10}}})
    with pytest.raises(ValueError, match=r"unknown keys \['horizon'\] in stats"):
        StatsConfig.from_dict({"horizon": "all"})
    with pytest.raises(ValueError, match="horizons must be 'all' or a list of numbers"):
        StatsConfig.from_dict({"horizons": "last"})
    with pytest.raises(ValueError, match="unknown delta direction 'up'"):
        StatsConfig.from_dict({"comparisons": [{"name": "target", "statistic": {"delta": "up"}}]})
    with pytest.raises(ValueError, match="test.type must be 'wilcoxon_signed_rank'"):
        StatsConfig.from_dict({"inference": {"test": {"type": "t_test"}}})


def test_bad_divergence_input():
    data = divergence({"covariance": {"gen": [[0.1]] * 3}}, x=[1.0])
    with pytest.raises(ValueError, match=r"stats.metrics \['psd'\] are not divergence metrics"):
        divergence_statistics(data, {"metrics": ["psd"]})
    reloaded = {"sfreq": 100.0, "metrics": {"covariance": {"x": [1.0], "context_ids": [0], "baseline": None}}}
    reloaded["metrics"]["covariance"]["target_swap"] = {"context_ids": [0]}
    with pytest.raises(ValueError, match="no per-context 'runs'"):
        divergence_statistics(reloaded, {"comparisons": ["target"]})
    with pytest.raises(ValueError, match="needs the dict returned by divergence_analysis"):
        divergence_statistics({"sfreq": 1.0}, None)
