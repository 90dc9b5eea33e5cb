"""`brain-gen-hf evaluate` end to end: the command, bad inputs (one `error:` line, exit 2), 2 accelerate processes
== 1 process, a dataset from the Hub, and the model card's model-index after --push-to-hub."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brain_gen_hf.cli import main

REPO = Path(__file__).resolve().parents[1]
# A small, fast evaluation: the tiny preset with two baselines (a config file, as a user would pass it).
# Batches of one run: each process of the sharded test then forecasts one of the two sessions.
FAST_CONFIG = "baselines: [zero, persistence]\nplots: false\ngenerator: {rollout_batch_size: 1}\n"


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval_config") / "eval.yaml"
    import yaml

    from brain_gen_hf.evaluation.config import TINY

    path.write_text(yaml.safe_dump({**TINY, **yaml.safe_load(FAST_CONFIG)}))
    return path


def _numbers(output: Path) -> dict:
    return json.loads((output / "report.json").read_text())


def _assert_same_numbers(left: dict, right: dict) -> None:
    assert left["setup"]["sessions"] == right["setup"]["sessions"]
    for name in left["forecasters"]:
        for metric, values in left["forecasters"][name]["continuation"].items():
            ours = np.asarray(values["per_context"], dtype=float)
            theirs = np.asarray(right["forecasters"][name]["continuation"][metric]["per_context"], dtype=float)
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-9, err_msg=f"{name} {metric}")
    assert json.dumps(left["comparisons"], sort_keys=True).count("outcome") == json.dumps(
        right["comparisons"], sort_keys=True
    ).count("outcome")


@pytest.fixture(scope="module")
def single_process_run(tiny_eval_model, tiny_meg_dataset, fast_config, tmp_path_factory):
    output = tmp_path_factory.mktemp("cli") / "out"
    argv = ["evaluate", str(tiny_eval_model), str(tiny_meg_dataset), "--split", "train"]
    code = main([*argv, "--config", str(fast_config), "--output", str(output), "--no-progress"])
    assert code == 0
    return output


def test_the_command_writes_the_report(single_process_run, capsys):
    numbers = _numbers(single_process_run)
    assert set(numbers["comparisons"]) == {"zero", "persistence"}
    text = (single_process_run / "report.md").read_text()
    assert "- vs zero:" in text and "- vs persistence:" in text


@pytest.mark.parametrize(
    "case",
    ["missing model", "missing split", "output is a file", "unknown config key", "unknown baseline", "bad repo id"],
)
def test_bad_input_is_one_error_line_and_exit_2(case, tiny_eval_model, tiny_meg_dataset, tmp_path, capsys):
    model, dataset, output = str(tiny_eval_model), str(tiny_meg_dataset), tmp_path / "out"
    extra, expected = [], ""
    if case == "missing model":
        model, extra, expected = str(tmp_path / "no_model"), ["--split", "train"], "does not exist"
    elif case == "missing split":
        extra, expected = ["--split", "test"], "has no 'test' split; it has ['train', 'validation']"
    elif case == "output is a file":
        output.write_text("")
        expected = "is a file, not a folder"
    elif case == "unknown config key":
        config = tmp_path / "bad.yaml"
        config.write_text("samplr: {}\n")
        extra, expected = ["--config", str(config)], "unknown evaluation config keys ['samplr']"
    elif case == "unknown baseline":
        extra, expected = ["--baselines", "zero,oracle"], "unknown baseline(s) ['oracle']"
    else:
        extra, expected = ["--push-to-hub", "not a repo!"], "--push-to-hub 'not a repo!' is not a Hub repo id"
    code = main(["evaluate", model, dataset, "--output", str(output), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    # datasets may print its progress bars first (a first load of the folder); the error itself is one line
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and err.count("error: ") == 1 and "Traceback" not in err, err
    assert expected in last


@pytest.mark.slow
def test_two_accelerate_processes_give_the_single_process_numbers(
    single_process_run, tiny_eval_model, tiny_meg_dataset, fast_config, tmp_path
):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    output = tmp_path / "sharded"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(REPO / "training_scripts" / "evaluate.py"),
        str(tiny_eval_model),
        str(tiny_meg_dataset),
        "--split",
        "train",
        "--config",
        str(fast_config),
        "--output",
        str(output),
        "--no-progress",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    sharded = _numbers(output)
    assert sharded["forecasters"]["model"]["continuation"]["psd_jsd"]["per_context"]
    assert [s["session_index"] for s in sharded["setup"]["sessions"]] == [0, 1]
    assert sharded["forecasters"]["model"]["rollout_stats"]["processes"] == 2  # one session per process
    _assert_same_numbers(sharded, _numbers(single_process_run))


def test_a_dataset_from_the_hub_and_the_model_index_pushed_to_the_card(
    tiny_eval_model, tiny_meg_dataset, fast_config, local_hub, hub_repo_id, tmp_path, capsys
):
    from huggingface_hub import ModelCard

    from brain_gen_hf.data.shards import push_dataset_to_hub

    dataset_repo = hub_repo_id + "-data"
    push_dataset_to_hub(tiny_meg_dataset, dataset_repo)
    output = tmp_path / "out"
    argv = ["evaluate", str(tiny_eval_model), dataset_repo, "--split", "train", "--config", str(fast_config)]
    code = main([*argv, "--output", str(output), "--no-progress", "--push-to-hub", hub_repo_id])
    assert code == 0, capsys.readouterr().err
    numbers = _numbers(output)
    assert numbers["dataset"] == dataset_repo and numbers["setup"]["contexts"] == 2

    card = ModelCard.load(hub_repo_id)
    index = card.data.to_dict()["model-index"]
    result = index[0]["results"][0]
    assert result["dataset"]["type"] == dataset_repo and result["dataset"]["split"] == "train"
    values = {m["type"]: m["value"] for m in result["metrics"]}
    model = numbers["forecasters"]["model"]["continuation"]
    assert values["psd_jsd"] == pytest.approx(model["psd_jsd"]["median"])
    assert values["bits_per_token"] == pytest.approx(numbers["token_summary"]["bits_per_token"])
    assert "PSD JSD" in card.text  # the metrics table of the card body
    files = set(local_hub.api.list_repo_files(hub_repo_id))
    assert {"config.json", "model.safetensors", "evaluation/report.json", "evaluation/report.md"} <= files

    # a second push updates the same card: its model-index and metrics table replaced, not appended
    from brain_gen_hf.evaluation.report import EvaluationReport, push_report_to_hub

    numbers["forecasters"]["model"]["continuation"]["psd_jsd"]["median"] = 0.125
    push_report_to_hub(EvaluationReport(numbers, output), hub_repo_id)
    again = ModelCard.load(hub_repo_id)
    index = again.data.to_dict()["model-index"]
    assert len(index) == 1 and len(index[0]["results"]) == 1
    assert {m["type"]: m["value"] for m in index[0]["results"][0]["metrics"]}["psd_jsd"] == 0.125
    assert again.text.count("## Metrics") == 1 and "| 0.125 |" in again.text
