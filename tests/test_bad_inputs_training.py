"""Bad inputs to training, pretokenizing, tokenizers and the quickstart: each is a one-line error naming the file
and the problem (scripts exit with code 2, no traceback), or is handled and says what it did."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from brain_gen_hf.training.arguments import (
    load_run_config,
    parse_run_config,
    read_run_config,
)
from brain_gen_hf.training.checkpointing import list_checkpoints
from brain_gen_hf.training.throughput import ThroughputMeter
from brain_gen_hf.training.trainer import train
from tests.conftest import SHARED, require_shared
from tests.datasets_fixtures import PARQUET_DAMAGE, damage_parquet
from tests.test_training import run_config

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "training_scripts" / "train.py"
PRETOKENIZE = REPO / "training_scripts" / "pretokenize.py"
EEG = SHARED / "data" / "real" / "eeg"


def run_script(*args, timeout=300):
    result = subprocess.run(
        [sys.executable, *map(str, args)], check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    return result


def assert_one_line_error(result, *fragments):
    """Exit code 2, exactly one `error: ...` line on stderr, no traceback, naming every fragment."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


# ------------------------------------------------------------------ run config (train.py)
BAD_RUN_CONFIGS = {
    "invalid_yaml": ("task: wavenet\ndataset: d\n  oops: [\n", "is not valid YAML"),
    "wrong_type": ("task: wavenet\ndataset: d\nlearning_rate: fast\n", "learning_rate must be a number, got 'fast'"),
    "not_a_mapping": ("- task\n- wavenet\n", "must hold a mapping of run settings"),
    "dict_expected": ("task: wavenet\ndataset: d\nmodel_config: 5\n", "model_config must be a mapping"),
    "missing_dataset": ("task: wavenet\n", "needs ['dataset']"),
    "unknown_key": ("task: wavenet\ndataset: d\nlearning_rat: 0.1\n", "learning_rat"),
    # checked by `train` too, but only the config reader knows the file
    "unknown_model_config_key": (
        "task: wavenet\ndataset: d\nmodel_config: {dilatons: [1, 2]}\n",
        "unknown `model_config` keys ['dilatons'] for wavenet_full_channel; valid keys: [",
    ),
    "unknown_task": ("task: wavenett\ndataset: d\n", "unknown task 'wavenett'"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUN_CONFIGS))
def test_train_script_bad_run_config_is_one_line_naming_file(case, tmp_path):
    text, problem = BAD_RUN_CONFIGS[case]
    config = tmp_path / f"{case}.yaml"
    config.write_text(text)
    result = run_script(TRAIN, "--config", config, f"--output_dir={tmp_path / 'run'}")
    assert_one_line_error(result, str(config), problem)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--max_steps=abc"], "max_steps must be an integer, got 'abc'"),
        (["--model_config={a: ["], "is not valid YAML"),
        (["max_steps"], "overrides are written --key=value"),
    ],
    ids=["wrong_type", "invalid_yaml", "not_key_value"],
)
def test_train_script_bad_override_is_one_line(args, problem, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("task: wavenet\ndataset: d\n")
    assert_one_line_error(run_script(TRAIN, "--config", config, *args), problem)


def test_train_script_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(run_script(TRAIN, "--config", missing), f"run config {missing} does not exist")


def test_run_config_values_are_type_checked_and_yaml_1_1_floats_read(tmp_path):
    with pytest.raises(ValueError, match="learning_rate must be a number, got 'fast'"):
        parse_run_config({"task": "wavenet", "dataset": "d", "learning_rate": "fast"})
    with pytest.raises(ValueError, match="compile must be true or false, got 'yes please'"):
        parse_run_config({"task": "wavenet", "dataset": "d", "compile": "yes please"})
    with pytest.raises(ValueError, match="batch_size must be an integer, got 2.5"):
        parse_run_config({"task": "wavenet", "dataset": "d", "batch_size": 2.5})
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        parse_run_config({"task": "wavenet", "dataset": "d", "learning_rate": float("nan")})
    # PyYAML reads `1e-3` (no dot) as a string: a float field takes it as the number it spells.
    path = tmp_path / "run.yaml"
    path.write_text("task: wavenet\ndataset: d\nlearning_rate: 1e-3\nmax_grad_norm: null\n")
    assert isinstance(load_run_config(path)["learning_rate"], str)
    _, _, run_args = read_run_config(path)
    assert run_args.learning_rate == 1e-3 and run_args.max_grad_norm is None
    with pytest.raises(ValueError, match=rf"{path} with overrides --warmup_steps=x: warmup_steps must be an integer"):
        read_run_config(path, ["--warmup_steps=x"])


# ------------------------------------------------------------------ damaged tokenizer files
def _saved_flat_tokenizers(root: Path) -> dict[str, Path]:
    from brain_gen_hf.tokenizers import (
        AmplitudeTokenizer,
        DelimitedTokenizer,
        train_bpe_tokenizer,
    )

    signals = np.random.default_rng(0).standard_normal((2, 3, 200)).astype(np.float32)
    tokenizers = {
        "amplitude": AmplitudeTokenizer(mu=15, num_channels=3),
        "delimited": DelimitedTokenizer(mu=15, num_channels=3),
        "bpe": train_bpe_tokenizer(signals, vocab_size=40, mu=15),
    }
    for name, tokenizer in tokenizers.items():
        tokenizer.save_pretrained(root / name)
    return {name: root / name for name in tokenizers}


DAMAGE = {
    "not_json": (lambda text: "not json at all", "is not valid JSON"),
    "truncated": (lambda text: text[: len(text) // 2], "is not valid JSON"),
    "empty": (lambda text: "", "is not valid JSON"),
    "not_an_object": (lambda text: "[1, 2]", "holds a JSON list, not an object"),
    "no_model": (lambda text: "{}", "is not a valid `tokenizers` file"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_tokenizer_json_is_a_value_error_naming_the_file(damage, tmp_path):
    from transformers import AutoTokenizer

    import brain_gen_hf  # noqa: F401

    edit, problem = DAMAGE[damage]
    for name, folder in _saved_flat_tokenizers(tmp_path).items():
        path = folder / "tokenizer.json"
        path.write_text(edit(path.read_text()))
        with pytest.raises(ValueError, match="tokenizer") as info:
            AutoTokenizer.from_pretrained(folder)
        message = str(info.value)
        assert str(path) in message and problem in message, (name, message)
        assert "\n" not in message


def test_damaged_tokenizer_config_is_named_when_loading_by_class(tmp_path):
    from brain_gen_hf.tokenizers import AmplitudeTokenizer

    folder = _saved_flat_tokenizers(tmp_path)["amplitude"]
    (folder / "tokenizer_config.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"tokenizer_config.json is not valid JSON"):
        AmplitudeTokenizer.from_pretrained(folder)


def test_disagreeing_tokenizer_files_name_the_folder(tmp_path):
    from transformers import AutoTokenizer

    import brain_gen_hf  # noqa: F401

    folder = _saved_flat_tokenizers(tmp_path)["amplitude"]
    saved = json.loads((folder / "tokenizer.json").read_text())
    saved["model"]["vocab"].pop(next(iter(saved["model"]["vocab"])))
    (folder / "tokenizer.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=rf"{folder}.*do(es)? not match"):
        AutoTokenizer.from_pretrained(folder)


def test_load_tokenizer_names_a_missing_or_damaged_file(tmp_path):
    """AutoTokenizer reads tokenizer_config.json itself (a bare JSONDecodeError; without it a generic tokenizer):
    `load_tokenizer` checks the files first."""
    from brain_gen_hf.tokenizers import load_tokenizer

    config_damage = {
        "{oops": "is not valid JSON",
        "[1, 2]": "holds a JSON list, not an object",
        '{"mu": 15}': "tokenizer_class is None, not a brain_gen_hf signal tokenizer",
    }
    for name, folder in _saved_flat_tokenizers(tmp_path).items():
        assert (
            type(load_tokenizer(folder)).__name__
            == {"amplitude": "AmplitudeTokenizer", "bpe": "BPETokenizer", "delimited": "DelimitedTokenizer"}[name]
        )
        config, backend = folder / "tokenizer_config.json", folder / "tokenizer.json"
        saved_config, saved_backend = config.read_text(), backend.read_text()
        for text, problem in config_damage.items():
            config.write_text(text)
            with pytest.raises(ValueError, match="tokenizer_config.json") as info:
                load_tokenizer(folder)
            assert str(config) in str(info.value) and problem in str(info.value), (name, str(info.value))
        config.unlink()
        with pytest.raises(ValueError, match="has tokenizer.json but no tokenizer_config.json") as info:
            load_tokenizer(folder)
        assert str(folder) in str(info.value)
        backend.write_text("{oops")  # both wrong: the damaged file comes first
        with pytest.raises(ValueError, match="tokenizer.json is not valid JSON"):
            load_tokenizer(folder)
        config.write_text(saved_config)
        for edit, problem in DAMAGE.values():
            backend.write_text(edit(saved_backend))
            with pytest.raises(ValueError, match="tokenizer") as info:
                load_tokenizer(folder)
            assert str(backend) in str(info.value) and problem in str(info.value), (name, str(info.value))
        backend.unlink()
        with pytest.raises(ValueError, match="no tokenizer.json"):
            load_tokenizer(folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no saved tokenizer"):
        load_tokenizer(tmp_path / "empty")


def test_load_tokenizer_checks_the_files_of_a_hub_repo(local_hub, hub_repo_id, tmp_path):
    from brain_gen_hf.tokenizers import load_tokenizer

    folder = _saved_flat_tokenizers(tmp_path)["delimited"]
    local_hub.api.create_repo(hub_repo_id)
    local_hub.api.upload_folder(repo_id=hub_repo_id, folder_path=str(folder))
    assert type(load_tokenizer(hub_repo_id)).__name__ == "DelimitedTokenizer"
    local_hub.api.upload_file(path_or_fileobj=b"{oops", path_in_repo="tokenizer_config.json", repo_id=hub_repo_id)
    with pytest.raises(ValueError, match=r"tokenizer_config.json is not valid JSON"):
        load_tokenizer(hub_repo_id)


def test_bpe_tokenizer_without_tokenizer_json_is_refused_not_untrained(tmp_path):
    from transformers import AutoTokenizer

    import brain_gen_hf  # noqa: F401

    folder = _saved_flat_tokenizers(tmp_path)["bpe"]
    (folder / "tokenizer.json").unlink()  # its merges: without them the tokenizer would load untrained
    with pytest.raises(ValueError, match=rf"{folder} has no tokenizer.json, which holds the vocabulary and merges"):
        AutoTokenizer.from_pretrained(folder)


def test_unknown_model_config_key_names_the_run_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: wavenet\ndataset: d\n")
    with pytest.raises(
        ValueError,
        match=rf"{path} with overrides --model_config.dilatons=\[1\]: unknown "
        r"`model_config` keys \['dilatons'\] for wavenet_full_channel; valid keys",
    ):
        read_run_config(path, ["--model_config.dilatons=[1]"])
    path.write_text("task: classifier\ndataset: d\nmodel_config: {num_clases: 2}\n")
    with pytest.raises(
        ValueError,
        match=rf"{path}: unknown `model_config` keys \['num_clases'\] for "
        "classifier_continuous",
    ):
        read_run_config(path)


# ------------------------------------------------------------------ pretokenize.py
def test_pretokenize_script_bad_tokenizer_is_one_line(tiny_meg_dataset, tmp_path):
    from brain_gen_hf.models.wavenet.configuration_wavenet import (
        WavenetFullChannelConfig,
    )
    from brain_gen_hf.models.wavenet.modeling_wavenet import WavenetFullChannelModel
    from tests.test_training import WAVENET

    WavenetFullChannelModel(WavenetFullChannelConfig(in_channels=3, **WAVENET)).save_pretrained(tmp_path / "wavenet")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{oops")
    cases = {
        tmp_path / "missing": "does not exist",
        tmp_path / "wavenet": "holds a wavenet_full_channel model, not a brain tokenizer",
        tmp_path / "broken": "config.json",
    }
    for tokenizer, problem in cases.items():
        result = run_script(
            PRETOKENIZE, "--tokenizer", tokenizer, "--dataset", tiny_meg_dataset, "--output", tmp_path / "tokens"
        )
        assert_one_line_error(result, str(tokenizer), problem)
    assert not (tmp_path / "tokens").exists()


def _token_folder(root: Path, columns: dict | None = None) -> Path:
    """A pretokenized folder as training_scripts/pretokenize.py writes it (codes of 64 windows, 0.64 s at 100 Hz)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    codes = np.random.default_rng(0).integers(0, 64, size=(64, 256)).astype(np.uint16)
    columns = columns or {"row": np.zeros(64, dtype=np.int64), "start": np.arange(64) * 64, "codes": list(codes)}
    (root / "data").mkdir(parents=True)
    pq.write_table(pa.table(columns), root / "data" / "train-00000-of-00001.parquet")
    (root / "tokenization.json").write_text(
        json.dumps({"example_seconds": 0.64, "sampling_rate": 100.0, "codebook_size": 64, "num_quantizers": 2})
    )
    return root


def _token_data_args(dataset: Path):
    from brain_gen_hf.training.arguments import DataArguments

    return DataArguments(dataset=str(dataset), example_seconds=0.64, eval_split=None)


@pytest.mark.parametrize("damage", PARQUET_DAMAGE)
def test_a_damaged_token_shard_is_named(damage, tmp_path):
    from brain_gen_hf.training.training_data import load_training_data

    folder = _token_folder(tmp_path / "tokens")
    splits, info = load_training_data(_token_data_args(folder))
    assert info.pretokenized and splits["train"][0]["codes"].shape == (256,)
    shard = folder / "data" / "train-00000-of-00001.parquet"
    damage_parquet(shard, damage)
    with pytest.raises(ValueError, match="damaged Parquet shard") as info:
        load_training_data(_token_data_args(folder))
    message = str(info.value)
    assert str(shard) in message and "training_scripts/pretokenize.py" in message and "\n" not in message


def test_train_script_damaged_token_shard_is_one_line(tmp_path):
    folder = _token_folder(tmp_path / "tokens")
    shard = folder / "data" / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    config = tmp_path / "lm.yaml"
    config.write_text(
        f"task: flatgpt\nmodel_type: flatgpt\ndataset: {folder}\nexample_seconds: 0.64\n"
        f"eval_split: null\noutput_dir: {tmp_path / 'run'}\nlog_with: none\n"
    )
    assert_one_line_error(
        run_script(TRAIN, "--config", config), str(shard), "damaged Parquet shard", "training_scripts/pretokenize.py"
    )


def test_token_folders_without_codes_or_shards_say_how_to_make_one(tmp_path):
    from brain_gen_hf.data.pretokenize import load_token_datasets
    from brain_gen_hf.training.training_data import load_training_data

    wrong = _token_folder(tmp_path / "wrong", {"row": np.arange(4), "signal": [np.zeros(3, np.float32)] * 4})
    with pytest.raises(ValueError, match=r"the 'train' shards have no \['codes'\] column") as info:
        load_training_data(_token_data_args(wrong))
    assert str(wrong) in str(info.value) and "training_scripts/pretokenize.py" in str(info.value)

    no_shards = _token_folder(tmp_path / "no_shards")
    shutil.rmtree(no_shards / "data")
    with pytest.raises(FileNotFoundError, match="holds no Parquet shards") as info:
        load_training_data(_token_data_args(no_shards))
    assert "training_scripts/pretokenize.py" in str(info.value)
    with pytest.raises(FileNotFoundError, match="pretokenized folder .* does not exist.*training_scripts/pretokenize"):
        load_token_datasets(tmp_path / "missing")

    for text, problem in (("{oops", "is not valid JSON"), ('{"codebook_size": 64}', "lacks ['example_seconds'")):
        (no_shards / "tokenization.json").write_text(text)
        with pytest.raises(ValueError, match="tokenization.json") as info:
            load_training_data(_token_data_args(no_shards))
        assert str(no_shards / "tokenization.json") in str(info.value) and problem in str(info.value)


def test_every_token_shard_is_read_and_a_lost_tokenization_json_is_named(tmp_path):
    from brain_gen_hf.training.training_data import load_training_data

    folder = _token_folder(tmp_path / "tokens")
    first = folder / "data" / "train-00000-of-00002.parquet"
    (folder / "data" / "train-00000-of-00001.parquet").rename(first)
    shutil.copy(first, folder / "data" / "train-00001-of-00002.parquet")
    splits, _ = load_training_data(_token_data_args(folder))
    assert len(splits["train"]) == 128  # both shards, not the last one of each split

    (folder / "tokenization.json").unlink()
    with pytest.raises(ValueError, match="holds token shards .* but no tokenization.json") as info:
        load_training_data(_token_data_args(folder))
    assert f"training_scripts/pretokenize.py with --output {folder}" in str(info.value)


def test_a_missing_flatgpt_dataset_also_says_how_to_pretokenize(tmp_path):
    from brain_gen_hf.training.training_data import load_training_data

    missing = tmp_path / "my_tokens"
    with pytest.raises(FileNotFoundError) as info:
        load_training_data(_token_data_args(missing), "flatgpt")
    message = str(info.value)
    assert str(missing) in message and "brain-gen-hf preprocess" in message
    assert "training_scripts/pretokenize.py" in message and f"--output {missing}" in message


# ------------------------------------------------------------------ resume
def test_resume_latest_with_only_an_incomplete_checkpoint_says_it_starts_at_step_0(tiny_meg_dataset, tmp_path, capsys):
    config = run_config(tiny_meg_dataset, tmp_path / "run", max_steps=2, eval_split=None, checkpoint_every=0)
    broken = tmp_path / "run" / "checkpoints" / "step-000005.tmp"  # a save interrupted before it completed
    (broken / "state").mkdir(parents=True)
    result = train(*parse_run_config({**config, "resume_from": "latest"}))
    out = capsys.readouterr().out
    assert "no complete checkpoint" in out and str(broken) in out and "starts from step 0" in out, out
    assert sorted(result.losses) == [1, 2]

    with pytest.raises(ValueError, match="incomplete checkpoint"):
        train(*parse_run_config({**config, "resume_from": str(broken)}))


def test_resume_latest_skipping_a_newer_incomplete_checkpoint_says_so(tiny_meg_dataset, tmp_path, capsys):
    config = run_config(tiny_meg_dataset, tmp_path / "run", max_steps=3, eval_split=None, checkpoint_every=2)
    train(*parse_run_config(config), stop_after_steps=2)
    [complete] = list_checkpoints(tmp_path / "run")
    (complete.parent / "step-000003.tmp").mkdir()
    capsys.readouterr()
    train(*parse_run_config({**config, "resume_from": "latest"}))
    out = capsys.readouterr().out
    assert "step-000003.tmp" in out and f"resuming from the newest complete one, {complete}" in out, out


def _tensorboard_scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_resumed_run_logs_each_step_once_to_tensorboard(tiny_meg_dataset, tmp_path):
    config = run_config(
        tiny_meg_dataset,
        tmp_path / "run",
        max_steps=4,
        eval_split=None,
        checkpoint_every=2,
        log_with="tensorboard",
        log_every=1,
    )
    train(*parse_run_config(config), stop_after_steps=3)  # logged steps 1-3, checkpoints at 2 and 3
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step-000003")  # as if it crashed after logging step 3
    resumed = train(*parse_run_config({**config, "resume_from": "latest"}))
    scalars = _tensorboard_scalars(tmp_path / "run" / "logs" / "brain_gen_hf", "train/loss")
    assert [step for step, _ in scalars] == [1, 2, 3, 4]
    for step, value in scalars:
        assert value == pytest.approx(resumed.losses[step], rel=1e-6)
    windows = _tensorboard_scalars(tmp_path / "run" / "logs" / "brain_gen_hf", "throughput/windows_per_s")
    assert [step for step, _ in windows] == [1, 2, 3, 4] and all(value > 0 for _, value in windows)


# ------------------------------------------------------------------ what the trainer says
def test_trainer_prints_outputs_and_validation_losses(tiny_meg_dataset, tmp_path, capsys):
    config = run_config(tiny_meg_dataset, tmp_path / "run", max_steps=2, eval_every=1, checkpoint_every=0)
    result = train(*parse_run_config(config))
    out = capsys.readouterr().out
    assert f"checkpoints in {tmp_path / 'run' / 'checkpoints'}" in out
    assert f"final model in {tmp_path / 'run' / 'final_model'}" in out
    for step, loss in result.eval_losses.items():
        assert f"step {step}: train loss" in out and f"validation loss {loss:.4f}" in out, out

    from transformers import AutoConfig

    import brain_gen_hf  # noqa: F401

    saved = AutoConfig.from_pretrained(result.final_model_dir)  # the dataset's units and normalisation
    assert saved.units == "T"
    assert saved.normalization["method"] == "robust" and "norm_scale" in saved.normalization["statistics"]


def test_throughput_is_in_windows_and_signal_seconds():
    meter = ThroughputMeter(n_params=10, unit="signal_samples", window_seconds=0.5, peak_flops=1e9)
    meter.add(units=400, windows=4, seconds=2.0)
    metrics = meter.metrics()
    assert metrics["throughput/windows_per_s"] == 2.0
    assert metrics["throughput/signal_seconds_per_s"] == 1.0
    assert not any("samples" in key or "tokens" in key for key in metrics)
    assert meter.postfix() == {"windows/s": "2.0", "signal-s/s": "1.0"}
    tokens = ThroughputMeter(n_params=10, unit="tokens", window_seconds=0.5, peak_flops=1e9)
    tokens.add(units=400, windows=4, seconds=2.0)
    assert tokens.metrics()["throughput/tokens_per_s"] == 200.0 and tokens.postfix()["tokens/s"] == "200"


# ------------------------------------------------------------------ quickstart on EEG, LM card contract
@pytest.mark.parametrize(
    "recording, config, channels",
    [
        ("test_raw.set", None, 32),
        ("test_reduced.edf", "preprocess_short_recordings.yaml", None),
    ],
    ids=["eeglab-default-config", "edf-short-config"],
)
def test_quickstart_runs_on_eeg_and_the_lm_card_shows_the_contract(recording, config, channels, tmp_path):
    path = require_shared(EEG / recording)
    output = tmp_path / "qs"
    args = [
        "-m",
        "brain_gen_hf.cli",
        "quickstart",
        "--output",
        output,
        "--input",
        path,
        "--tokenizer-steps",
        "2",
        "--lm-steps",
        "2",
        "--batch-size",
        "4",
        "--no-progress",
    ]
    if config:
        args += ["--config", REPO / "training_scripts" / "configs" / config]
    result = run_script(*args, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((output / "summary.json").read_text())
    assert summary["data"] == "user recordings" and torch.isfinite(torch.tensor(summary["forecast_mse"]))
    if channels is not None:
        assert summary["channels"] == channels
    evaluation = summary["evaluation"]  # recordings too short for the evaluation skip it, saying why
    assert "report" in evaluation or re.search(r"no session has a clean segment of \d+ samples", evaluation["skipped"])
    card = (output / "lm" / "final_model" / "README.md").read_text()
    assert f"| channels | {summary['channels']} ({summary['channels']} eeg) |" in card
    assert "| units | V |" in card and '"method": "robust"' in card
    assert "not fixed" not in card and "held brain tokenizer (`braintokmix`)" in card


# ------------------------------------------------------------------ README: the data step comes first
def _readme_train_commands() -> list[list[str]]:
    import shlex

    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Train\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.strip()]


def test_readme_train_section_builds_the_dataset_it_trains_on():
    commands = _readme_train_commands()
    preprocess = commands[0]
    assert preprocess[:2] == ["brain-gen-hf", "preprocess"], commands[0]
    built = preprocess[preprocess.index("--output") + 1]
    first_train = next(c for c in commands if "training_scripts/train.py" in c)
    config = REPO / first_train[first_train.index("--config") + 1]
    overrides = [arg for arg in first_train if arg.startswith("--") and "=" in arg]
    assert f"--dataset={built}" in overrides
    _, data_args, _ = read_run_config(config, overrides)
    assert data_args.dataset == built


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("eval_every", -1, "eval_every must be 0 or more"),  # was: never evaluated, silently
        ("checkpoint_every", -1, "checkpoint_every must be 0 or more"),  # was: a checkpoint every step
        ("keep_last", -1, "keep_last must be 0 or more"),
        ("warmup_steps", -5, "warmup_steps must be 0 or more"),
        ("early_stopping_patience", -1, "early_stopping_patience must be 0 or more"),
        ("log_every", 0, "log_every must be positive"),
        ("max_grad_norm", -1.0, "max_grad_norm must be a positive number"),  # was: every gradient flipped
        ("max_grad_norm", 0.0, "max_grad_norm must be a positive number"),  # was: silently no clipping
        ("min_lr_ratio", 2.0, "min_lr_ratio must lie in [0, 1]"),
        ("batch_size", 0, "batch_size must be positive"),
        ("eval_batch_size", 0, "eval_batch_size must be positive"),  # was: silently batch_size
        ("max_eval_batches", 0, "max_eval_batches must be positive"),  # was: validation loss 0.0
        ("num_workers", -1, "num_workers must be 0 or more"),
        ("hub_model_id", "bad id!!", "hub_model_id 'bad id!!' is not a Hub repo id"),  # was: refused after training
    ],
)
def test_out_of_range_run_settings_are_refused_before_work_starts(key, value, problem, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "task: wavenet\ndataset: somewhere\npush_to_hub: true\nhub_model_id: me/model\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="run.yaml") as err:
        read_run_config(config, [f"--{key}={value}"])
    assert problem in str(err.value), err.value


def test_an_output_dir_under_a_file_is_refused_before_training(tiny_meg_dataset, tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    for output in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        started = __import__("time").perf_counter()
        with pytest.raises(NotADirectoryError, match="is a file, not a folder; choose another output_dir"):
            train(*parse_run_config(run_config(tiny_meg_dataset, output, max_steps=50)))
        assert __import__("time").perf_counter() - started < 30  # before, not after, the 50 steps
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_resuming_with_another_model_config_names_the_changed_key(tiny_meg_dataset, tmp_path):
    config = run_config(tiny_meg_dataset, tmp_path / "run", max_steps=2, eval_split=None, checkpoint_every=2)
    train(*parse_run_config(config))
    [checkpoint] = list_checkpoints(tmp_path / "run")
    wider = {
        **config,
        "model_config": {
            **config["model_config"],
            "residual_channels": 2 * config["model_config"].get("residual_channels", 8),
        },
        "output_dir": str(tmp_path / "other"),
        "resume_from": str(checkpoint),
        "max_steps": 4,
    }
    with pytest.raises(ValueError, match=r"cannot resume from .*model_config\.residual_channels was"):
        train(*parse_run_config(wider))


def test_a_missing_eval_split_is_a_warning_not_silence(tiny_meg_dataset, tmp_path, capsys):
    config = run_config(
        tiny_meg_dataset, tmp_path / "run", max_steps=1, eval_split="valid", eval_every=1, checkpoint_every=0
    )
    result = train(*parse_run_config(config))
    out = capsys.readouterr().out
    assert "has no split 'valid'" in out and "no validation runs" in out, out
    assert result.eval_losses == {}


@pytest.mark.parametrize("resume_from", ["./no/such/run", "org/missing-run"])
def test_an_unfetchable_resume_from_says_what_it_expected(resume_from, tmp_path, monkeypatch):
    import huggingface_hub

    from brain_gen_hf.training.checkpointing import resolve_resume

    def unreachable(*args, **kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("cannot reach the Hub and nothing is cached")

    if "missing" in resume_from:
        monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(ValueError, match=r"resume_from '.*' is not a local folder and could not be fetched"):
        resolve_resume(resume_from, tmp_path)


def test_failed_hub_uploads_keep_the_run_going_and_the_final_model(tiny_meg_dataset, tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi
    from transformers import PreTrainedModel

    try:
        import httpx2 as httpx  # huggingface_hub's HTTP client here; its errors are not OSErrors
    except ImportError:
        import httpx

    def offline(*args, **kwargs):
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    monkeypatch.setattr(PreTrainedModel, "push_to_hub", offline)
    config = run_config(
        tiny_meg_dataset,
        tmp_path / "run",
        max_steps=2,
        eval_split=None,
        checkpoint_every=1,
        push_to_hub=True,
        hub_model_id="me/model",
    )
    with pytest.raises(OSError, match="uploading the final model to me/model failed .* is kept locally"):
        train(*parse_run_config(config))
    out = capsys.readouterr().out
    assert out.count("WARNING: uploading checkpoint") == 2, out
    assert (tmp_path / "run" / "final_model" / "config.json").is_file()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-000001", "step-000002"]


def _tiny_brain_tokenizer():
    from transformers import AutoConfig, AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.quickstart import TOKENIZER_CONFIG

    # num_sensors: the 102 magnetometers of tiny_meg_dataset
    return AutoModel.from_config(AutoConfig.for_model("braintokmix", **TOKENIZER_CONFIG, num_sensors=102))


def test_pretokenize_never_writes_into_a_dataset_folder(tiny_meg_dataset, tmp_path):
    from brain_gen_hf.data.pretokenize import pretokenize_dataset

    dataset = tmp_path / "dataset"
    shutil.copytree(tiny_meg_dataset, dataset)
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine", encoding="utf-8")
    for output, problem in (
        (dataset, "is the dataset being tokenized"),  # was: its shards replaced by tokens
        (tmp_path / "mine", "is not a pretokenized folder .* nothing was written"),
        (tiny_meg_dataset, "is not a pretokenized folder"),
    ):  # another dataset
        with pytest.raises(ValueError, match=problem):
            pretokenize_dataset(_tiny_brain_tokenizer(), str(dataset), output, example_seconds=2.56, progress=False)
    assert {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("kwargs", "error", "problem"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),  # was: one batch of everything
        ({"splits": ["valid"]}, ValueError, r"has no split\(s\) \['valid'\]"),  # was: an empty token folder
        ({"output": "notes.txt"}, NotADirectoryError, "is a file, not a folder"),
    ],
)
def test_pretokenize_bad_arguments_are_refused_before_writing(tiny_meg_dataset, tmp_path, kwargs, error, problem):
    from brain_gen_hf.data.pretokenize import pretokenize_dataset

    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    output = tmp_path / kwargs.pop("output", "tokens")
    with pytest.raises(error, match=problem):
        pretokenize_dataset(
            _tiny_brain_tokenizer(), str(tiny_meg_dataset), output, example_seconds=2.56, progress=False, **kwargs
        )
    assert not (tmp_path / "tokens").exists() and (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_pretokenize_script_checks_the_hub_repo_id_first(tmp_path):
    result = run_script(
        PRETOKENIZE,
        "--tokenizer",
        tmp_path / "no-tokenizer",
        "--dataset",
        tmp_path / "no-data",
        "--output",
        tmp_path / "tokens",
        "--push_to_hub",
        "bad id!!",
    )
    assert_one_line_error(result, "--push_to_hub 'bad id!!' is not a Hub repo id")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--tokenizer-steps", "-1"], "--tokenizer-steps must be a positive integer"),
        (["--lm-steps", "0"], "--lm-steps must be a positive integer"),  # was: after the tokenizer had trained
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--output", "notes.txt/qs"], "notes.txt is a file, not a folder"),  # was: [Errno 17] File exists
    ],
)
def test_quickstart_bad_arguments_fail_before_any_work(args, problem, tmp_path, capsys):
    from brain_gen_hf.cli import main

    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    args = [a.replace("notes.txt", str(tmp_path / "notes.txt")) for a in args]
    code = main(["quickstart", "--output", str(tmp_path / "qs"), "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and problem in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "qs").exists()


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("notes.txt", "is a file"),  # was: "not a valid JSON file"
        ("empty", "has no config.json, so it is not a saved model folder"),  # was: "Should have a `model_type` key"
        ("missing", "does not exist"),  # was: a Hub request, then a connection error
    ],
)
def test_export_remote_code_names_what_is_not_a_model_folder(target, problem, tmp_path, capsys):
    from brain_gen_hf.cli import main

    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    code = main(["export-remote-code", str(tmp_path / target)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and problem in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt"]


def test_pretokenize_reruns_into_its_own_interrupted_output(tiny_meg_dataset, tmp_path):
    from brain_gen_hf.data.pretokenize import TOKENIZATION_FILE, pretokenize_dataset

    tokens = tmp_path / "tokens"
    (tokens / "data").mkdir(parents=True)  # interrupted after the first split, before tokenization.json
    (tokens / "data" / "train-00000-of-00001.tmp").write_bytes(b"partial")
    counts = pretokenize_dataset(
        _tiny_brain_tokenizer(), str(tiny_meg_dataset), tokens, example_seconds=2.56, progress=False
    )
    assert counts and (tokens / TOKENIZATION_FILE).is_file()


def test_train_script_ctrl_c_is_one_line(monkeypatch, capsys):
    from brain_gen_hf.training import trainer

    sys.path.insert(0, str(TRAIN.parent))
    try:
        import train as train_script
    finally:
        sys.path.remove(str(TRAIN.parent))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", interrupted)
    config = REPO / "training_scripts" / "configs" / "wavenet_small.yaml"
    assert train_script.main(["--config", str(config)]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted;") and "--resume_from=latest" in err and len(err.splitlines()) == 1, err


def test_pretokenize_rerun_of_some_splits_never_mixes_two_tokenizers(tiny_meg_dataset, tmp_path):
    from brain_gen_hf.data.pretokenize import pretokenize_dataset, read_tokenization

    tokens = tmp_path / "tokens"
    torch.manual_seed(0)
    first = _tiny_brain_tokenizer()
    pretokenize_dataset(first, str(tiny_meg_dataset), tokens, example_seconds=2.56, splits=["train"], progress=False)
    train_shard = tokens / "data" / "train-00000-of-00001.parquet"
    before = train_shard.read_bytes()
    torch.manual_seed(1)
    other = _tiny_brain_tokenizer()  # other weights: its codes must not join the first tokenizer's
    with pytest.raises(ValueError, match=r"split\(s\) \['train'\] made with another tokenizer_fingerprint"):
        pretokenize_dataset(
            other, str(tiny_meg_dataset), tokens, example_seconds=2.56, splits=["validation"], progress=False
        )
    assert not (tokens / "data" / "validation-00000-of-00001.parquet").exists()
    assert train_shard.read_bytes() == before
    # The same tokenizer adds the split, and tokenization.json lists both.
    counts = pretokenize_dataset(
        first, str(tiny_meg_dataset), tokens, example_seconds=2.56, splits=["validation"], progress=False
    )
    assert set(read_tokenization(tokens)["windows"]) == {"train", "validation"} and counts["validation"] > 0
    # Every split again: the other tokenizer replaces the whole folder.
    pretokenize_dataset(other, str(tiny_meg_dataset), tokens, example_seconds=2.56, progress=False)
    assert train_shard.read_bytes() != before
