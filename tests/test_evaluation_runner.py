"""The evaluation runner and its report: config checks, paired comparisons, verdict lines, model-index, strict JSON,
and one end-to-end evaluation of a tiny token LM on SIMULATED MEG (files, keys, determinism of the numbers)."""

import json
import math

import numpy as np
import pytest

from brain_gen_hf.evaluation.config import EvaluationConfig
from brain_gen_hf.evaluation.report import (
    MIN_CONTEXTS_FOR_TEST,
    compare_paired,
    model_index,
    to_json,
    verdict_lines,
)
from brain_gen_hf.evaluation.runner import per_context, shard_blocks


def _strict_loads(text: str):
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------------------------------------- config
def test_unknown_keys_are_named_at_every_level():
    with pytest.raises(ValueError, match=r"unknown evaluation config keys \['samplr'\]"):
        EvaluationConfig.from_dict({"samplr": {}})
    with pytest.raises(ValueError, match="sampler.*num_session"):
        EvaluationConfig.from_dict({"sampler": {"num_session": 3}})
    with pytest.raises(ValueError, match="baseline_options.*not in 'baselines'"):
        EvaluationConfig.from_dict({"baselines": ["zero"], "baseline_options": {"ar": {"order": 2}}})


def test_yaml_sections_merge_into_the_defaults(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("sampler:\n  context_length_steps: 50\ngenerator:\n  rollouts_per_context: 3\n")
    config = EvaluationConfig.from_yaml(path)
    assert config.sampler.context_length_steps == 50 and config.sampler.context_length_s is None
    assert config.sampler.total_length_s == EvaluationConfig().sampler.total_length_s  # kept from the defaults
    assert config.generator.rollouts_per_context == 3 and config.generator.sampling == {"do_sample": True, "top_p": 0.8}
    assert EvaluationConfig.coerce("paper").sampler.total_length_s == 296.96
    assert EvaluationConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()  # round trip
    with pytest.raises(FileNotFoundError, match="preset name"):
        EvaluationConfig.coerce(str(tmp_path / "missing.yaml"))


# ---------------------------------------------------------------------------------------------- report
def test_to_json_writes_non_finite_numbers_as_null():
    text = to_json({"a": float("nan"), "b": np.array([1.0, np.inf]), "c": np.float32(0.5), "d": np.int64(3)})
    assert _strict_loads(text) == {"a": None, "b": [1.0, None], "c": 0.5, "d": 3}


def test_paired_comparison_follows_the_wilcoxon_arithmetic():
    n = 8
    baseline = np.arange(n, dtype=float) + 2.0
    better = compare_paired(baseline - np.arange(1, n + 1), baseline)  # the model lower on every context
    # exact two-sided signed-rank test, all n differences of one sign: p = 2 / 2**n
    assert better["p_value"] == pytest.approx(2 / 2**n)
    assert better["outcome"] == "better" and better["median_delta"] == pytest.approx(4.5)
    assert better["prob_improvement"] == 1.0
    worse = compare_paired(baseline + 1.0 + np.arange(n), baseline)
    assert worse["outcome"] == "worse"
    similarity = compare_paired(baseline + 1.0 + np.arange(n), baseline, higher_is_better=True)
    assert similarity["outcome"] == "better"
    few = compare_paired(baseline[: MIN_CONTEXTS_FOR_TEST - 1] - 1, baseline[: MIN_CONTEXTS_FOR_TEST - 1])
    assert few["p_value"] is None and few["outcome"] == "untested"


def _numbers(model_psd: float, baseline_psd: float, n: int = 8) -> dict:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, n)
    model = np.full(n, model_psd) + noise
    base = np.full(n, baseline_psd) + noise[::-1]
    return {
        "model": "org/model",
        "dataset": "org/data",
        "split": "test",
        "comparisons": {"zero": {"psd_jsd": compare_paired(model, base), "mse": compare_paired(base, model)}},
        "forecasters": {
            "model": {"continuation": {"psd_jsd": {"median": float(np.median(model))}, "mse": {"median": 0.9}}}
        },
        "token_summary": {"bits_per_token": 3.0, "unigram_bits_per_token": 4.0, "perplexity": 8.0},
    }


def test_verdict_lines_say_what_the_numbers_say():
    beats = verdict_lines(_numbers(0.1, 0.5))
    assert beats[0].startswith("vs zero: the model BEATS it on every distributional metric")
    assert "MSE" in beats[0] and "(worse, p=" in beats[0]  # the point error is reported, also when it is worse
    assert "better than the unigram baseline" in beats[1] and "NOT" not in beats[1]
    loses = verdict_lines(_numbers(0.5, 0.1))
    assert loses[0].startswith("vs zero: the model does NOT beat it")
    few = verdict_lines(_numbers(0.1, 0.5, n=3))
    assert few[0].startswith("vs zero: NOT TESTED (3 contexts")


def test_model_index_lists_the_models_numbers():
    index = model_index(_numbers(0.1, 0.5), model_name="model")
    assert index[0]["name"] == "model"
    result = index[0]["results"][0]
    assert result["task"]["type"] == "time-series-forecasting"
    assert result["dataset"] == {"name": "data", "type": "org/data", "split": "test"}
    values = {m["type"]: m["value"] for m in result["metrics"]}
    assert values["psd_jsd"] == pytest.approx(0.1, abs=0.05) and values["mse"] == 0.9
    assert values["bits_per_token"] == 3.0 and values["perplexity"] == 8.0


def test_shards_are_whole_rollout_batches_and_runs_average_per_context():
    blocks = shard_blocks(7, rollouts_per_context=2, batch_size=4)
    assert blocks == [[0, 1], [2, 3], [4, 5], [6]]  # 2 sessions x 2 rollouts fill one batch of 4
    assert shard_blocks(5, rollouts_per_context=3, batch_size=1) == [[0], [1], [2], [3], [4]]
    np.testing.assert_allclose(per_context(np.array([1.0, 3.0, np.nan, 5.0]), [0, 0, 1, 1]), [2.0, 5.0])


# ---------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_report(tiny_eval_model, tiny_meg_dataset, tmp_path_factory):
    from brain_gen_hf.evaluation.runner import evaluate

    output = tmp_path_factory.mktemp("evaluation")
    config = EvaluationConfig.tiny().replace(baselines=["zero", "persistence"])
    return evaluate(tiny_eval_model, tiny_meg_dataset, split="train", config=config, output_dir=output, progress=False)


def test_report_holds_every_analysis_and_the_reference_file_names(tiny_report):
    output = tiny_report.output_dir
    numbers = _strict_loads((output / "report.json").read_text())
    assert numbers["split"] == "train" and set(numbers["forecasters"]) == {"model", "zero", "persistence"}
    assert set(numbers["comparisons"]) == {"zero", "persistence"}
    assert numbers["setup"]["contexts"] == 2 and numbers["setup"]["continuation_seconds"] == pytest.approx(1.28)
    model = numbers["forecasters"]["model"]
    for key in ("continuation", "sliding_window", "divergence", "divergence_stats"):
        assert model[key], key
    for metric in ("psd_jsd", "covariance", "band_jsd", "mse"):
        values = model["continuation"][metric]["per_context"]
        assert len(values) == 2 and all(v is not None and math.isfinite(v) for v in values), metric
    assert {"target_swap", "prompt_swap", "baseline"} <= set(model["divergence"]["metrics"]["psd_jsd"])
    assert numbers["token_summary"]["bits_per_token"] > 0 and numbers["token_summary"]["unigram_bits_per_token"] > 0
    assert numbers["forecasters"]["zero"].get("token_summary") is None
    for name in (
        "rollout_divergence.json",
        "rollout_divergence.png",
        "rollout_divergence_stats.json",
        "rollout_divergence_stats.md",
        "rollout_window_metrics.json",
        "rollout_window_metrics.png",
        "token_summary.json",
        "token_summary.png",
        "paired_rollouts.npz",
        "gen_vs_target_psd.png",
        "gen_vs_target_cov.png",
        "gen_vs_target_stacked_timeseries.png",
        "gen_vs_target_run0_timeseries.png",
        "gen_vs_target_run0_stft.png",
    ):
        assert (output / "model" / name).is_file(), name
    assert (output / "baselines" / "persistence" / "rollout_divergence.json").is_file()
    assert not (output / "baselines" / "persistence" / "token_summary.json").exists()
    assert (output / "eval_config.yaml").is_file()


def test_report_md_opens_with_one_line_per_baseline(tiny_report):
    text = (tiny_report.output_dir / "report.md").read_text()
    verdict = text.split("## Verdict", 1)[1].split("##", 1)[0]
    lines = [line for line in verdict.splitlines() if line.startswith("- ")]
    assert [line.split(":", 1)[0] for line in lines[:2]] == ["- vs zero", "- vs persistence"]
    # two contexts cannot make a paired test significant: the report must not claim a win
    assert all("NOT TESTED (2 contexts" in line for line in lines[:2])
    assert any(line.startswith("- token level:") for line in lines)
    assert any(line.startswith("- correct-context effect") for line in lines)


def test_same_config_gives_the_same_numbers(tiny_report, tiny_eval_model, tiny_meg_dataset, tmp_path):
    from brain_gen_hf.evaluation.runner import evaluate

    config = EvaluationConfig.tiny().replace(baselines=["persistence"], plots=False)
    again = evaluate(tiny_eval_model, tiny_meg_dataset, split="train", config=config, output_dir=tmp_path)
    first, second = tiny_report.numbers["forecasters"], again.numbers["forecasters"]
    for name in ("model", "persistence"):
        for metric in ("psd_jsd", "covariance", "mse"):
            np.testing.assert_allclose(
                second[name]["continuation"][metric]["per_context"],
                first[name]["continuation"][metric]["per_context"],
                rtol=1e-5,
                err_msg=f"{name} {metric}",
            )
