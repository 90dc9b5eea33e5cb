"""Bad inputs to training, pretokenizing, tokenizers and the quickstart: each is a one-line error naming the file
and the problem (scripts exit with code 2, no traceback), or is handled and says what it did."""

import json
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
from tests.test_training import run_config

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "training_scripts" / "train.py"
PRETOKENIZE = REPO / "training_scripts" / "pretokenize.py"
EEG = SHARED / "data" / "real" / "eeg"


def run_script(*args, timeout=300):
    result = subprocess.run([sys.executable, *map(str, args)], check=False, capture_output=True, text=True,
                            timeout=timeout, cwd=REPO)
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
}


@pytest.mark.parametrize("case", sorted(BAD_RUN_CONFIGS))
def test_train_script_bad_run_config_is_one_line_naming_file(case, tmp_path):
    text, problem = BAD_RUN_CONFIGS[case]
    config = tmp_path / f"{case}.yaml"
    config.write_text(text)
    result = run_script(TRAIN, "--config", config, f"--output_dir={tmp_path / 'run'}")
    assert_one_line_error(result, str(config), problem)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, problem", [
    (["--max_steps=abc"], "max_steps must be an integer, got 'abc'"),
    (["--model_config={a: ["], "is not valid YAML"),
    (["max_steps"], "overrides are written --key=value"),
], ids=["wrong_type", "invalid_yaml", "not_key_value"])
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
    tokenizers = {"amplitude": AmplitudeTokenizer(mu=15, num_channels=3),
                  "delimited": DelimitedTokenizer(mu=15, num_channels=3),
                  "bpe": train_bpe_tokenizer(signals, vocab_size=40, mu=15)}
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
    cases = {tmp_path / "missing": "does not exist",
             tmp_path / "wavenet": "holds a wavenet_full_channel model, not a brain tokenizer",
             tmp_path / "broken": "config.json"}
    for tokenizer, problem in cases.items():
        result = run_script(PRETOKENIZE, "--tokenizer", tokenizer, "--dataset", tiny_meg_dataset, "--output",
                            tmp_path / "tokens")
        assert_one_line_error(result, str(tokenizer), problem)
    assert not (tmp_path / "tokens").exists()


# ------------------------------------------------------------------ resume
def test_resume_latest_with_only_an_incomplete_checkpoint_says_it_starts_at_step_0(tiny_meg_dataset, tmp_path,
                                                                                   capsys):
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
    config = run_config(tiny_meg_dataset, tmp_path / "run", max_steps=4, eval_split=None, checkpoint_every=2,
                        log_with="tensorboard", log_every=1)
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
@pytest.mark.parametrize("recording, config, channels", [
    ("test_raw.set", None, 32),
    ("test_reduced.edf", "preprocess_short_recordings.yaml", None),
], ids=["eeglab-default-config", "edf-short-config"])
def test_quickstart_runs_on_eeg_and_the_lm_card_shows_the_contract(recording, config, channels, tmp_path):
    path = require_shared(EEG / recording)
    output = tmp_path / "qs"
    args = ["-m", "brain_gen_hf.cli", "quickstart", "--output", output, "--input", path, "--tokenizer-steps", "2",
            "--lm-steps", "2", "--batch-size", "4", "--no-progress"]
    if config:
        args += ["--config", REPO / "training_scripts" / "configs" / config]
    result = run_script(*args, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((output / "summary.json").read_text())
    assert summary["data"] == "user recordings" and torch.isfinite(torch.tensor(summary["forecast_mse"]))
    if channels is not None:
        assert summary["channels"] == channels
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
