"""accelerate training: exact resume, config errors, data/model contract checks, atomic checkpoints, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from brain_gen_hf.training.arguments import load_run_config, parse_run_config
from brain_gen_hf.training.checkpointing import list_checkpoints, resolve_resume
from brain_gen_hf.training.optim import lr_multiplier, parameter_groups
from brain_gen_hf.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
WAVENET = dict(
    quant_levels=64,
    quant_emb=8,
    residual_channels=8,
    dilation_channels=8,
    skip_channels=8,
    head_channels=8,
    dilations=[1, 2],
)


def run_config(dataset, output_dir, **overrides):
    config = dict(
        task="wavenet",
        model_config=WAVENET,
        dataset=str(dataset),
        example_seconds=0.5,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split="validation",
        output_dir=str(output_dir),
        max_steps=6,
        learning_rate=1e-3,
        warmup_steps=2,
        log_with="none",
        progress_bar=False,
        checkpoint_every=3,
    )
    config.update(overrides)
    return config


def test_resumed_run_reproduces_every_later_loss(tiny_meg_dataset, tmp_path):
    config = run_config(tiny_meg_dataset, tmp_path / "full", eval_every=3, gradient_accumulation_steps=2)
    full = train(*parse_run_config(config))
    assert sorted(full.losses) == [1, 2, 3, 4, 5, 6]
    assert len(set(full.losses.values())) > 1

    config = {**config, "output_dir": str(tmp_path / "split")}
    first = train(*parse_run_config(config), stop_after_steps=3)
    assert sorted(first.losses) == [1, 2, 3]
    assert first.final_model_dir is None  # a preempted run has no final model yet
    resumed = train(*parse_run_config({**config, "resume_from": "latest"}))
    assert resumed.losses == full.losses  # exact, every step after the resume point included
    assert resumed.eval_losses == full.eval_losses

    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    model = AutoModel.from_pretrained(resumed.final_model_dir)
    assert model.config.in_channels == model.config.contract_num_channels
    assert model.config.sampling_rate == 100.0
    assert "Training data" in (resumed.final_model_dir / "README.md").read_text()


def test_unknown_or_mistyped_keys_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="learning_rat"):
        parse_run_config({"task": "wavenet", "dataset": "x", "learning_rat": 1e-3})
    with pytest.raises(ValueError, match="lr_schedule"):
        parse_run_config({"task": "wavenet", "dataset": "x", "lr_schedule": "cosine_typo"})
    path = tmp_path / "run.yaml"
    path.write_text("task: wavenet\ndataset: d\nmax_steps: 5\n")
    merged = load_run_config(path, ["--max_steps=7", "--model_config.quant_levels=32"])
    assert merged["max_steps"] == 7 and merged["model_config"] == {"quant_levels": 32}
    with pytest.raises(ValueError, match="--key=value"):
        load_run_config(path, ["max_steps"])


def test_dataset_not_matching_the_model_contract_is_rejected(tiny_meg_dataset, tmp_path):
    from brain_gen_hf.models.wavenet.configuration_wavenet import WavenetFullChannelConfig
    from brain_gen_hf.models.wavenet.modeling_wavenet import WavenetFullChannelModel

    other = WavenetFullChannelModel(WavenetFullChannelConfig(in_channels=5, **WAVENET))
    other.save_pretrained(tmp_path / "other")
    config = run_config(tiny_meg_dataset, tmp_path / "run", pretrained=str(tmp_path / "other"))
    with pytest.raises(ValueError, match="in_channels is 102 but the model expects 5"):
        train(*parse_run_config(config))


def test_interrupted_checkpoint_save_keeps_previous_checkpoint(tiny_meg_dataset, tmp_path):
    config = run_config(tiny_meg_dataset, tmp_path / "run", max_steps=3, eval_split=None)
    train(*parse_run_config(config))
    [complete] = list_checkpoints(tmp_path / "run")
    json.loads((complete / "trainer_state.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    broken = complete.parent / "step-000009.tmp"  # what a crash in the middle of a save leaves behind
    (broken / "state").mkdir(parents=True)
    (broken / "model").mkdir()
    assert resolve_resume("latest", tmp_path / "run") == complete
    resumed = train(*parse_run_config({**config, "resume_from": "latest", "max_steps": 4}))
    assert resumed.step == 4


def test_optimizer_groups_and_warmup_follow_the_reference():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decay, no_decay = parameter_groups(model, 0.1)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    kwargs = dict(warmup_steps=4, total_steps=10, min_lr_ratio=0.0)
    assert [lr_multiplier(s, schedule="linear_warmup", **kwargs) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_multiplier(9, schedule="cosine", **kwargs) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_keep_identical_parameters(strategy, tiny_meg_dataset, tmp_path):
    """`accelerate launch` with 2 CPU processes (DDP, or FSDP2 full sharding): identical parameters on both ranks,
    only the main process writes, and the saved final model holds the full (gathered) weights."""
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(run_config(tiny_meg_dataset, tmp_path / "ddp", max_steps=3, eval_split=None, checkpoint_every=0))
    )
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "DDP_REPORT_DIR": str(tmp_path)}
    launch = (
        ["--multi_gpu"]
        if strategy == "ddp"
        else ["--use_fsdp", "--fsdp_version", "2", "--fsdp_sharding_strategy", "FULL_SHARD"]
    )
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launch,
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(REPO / "tests" / "ddp_train_script.py"),
        "--config",
        str(config),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["world_size"] == reports[1]["world_size"] == 2
    assert reports[0]["param_checksum"] == reports[1]["param_checksum"]
    assert reports[0]["losses"] == reports[1]["losses"]
    written = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert written == ["checkpoints", "final_model"], written
    assert len(list_checkpoints(tmp_path / "ddp")) == 1
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    final = AutoModel.from_pretrained(tmp_path / "ddp" / "final_model")
    assert float(sum(p.double().sum() for p in final.parameters())) == pytest.approx(reports[0]["param_checksum"])


@pytest.mark.parametrize("path", sorted((REPO / "training_scripts" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    """Every example config is valid: run configs through the trainer's parser, preprocess configs through
    the dataset builder's."""
    if path.name.startswith("preprocess"):
        from brain_gen_hf.data.config import BuildConfig

        BuildConfig.from_yaml(path)
    else:
        model_args, data_args, run_args = parse_run_config(load_run_config(path))
        from brain_gen_hf.training.tasks import get_task

        get_task(model_args.task)


def test_checkpoints_pushed_to_the_hub_reload_by_repo_id_and_resume(tiny_meg_dataset, tmp_path, local_hub, hub_repo_id):
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    config = run_config(tiny_meg_dataset, tmp_path / "full", max_steps=4, checkpoint_every=2, eval_split=None)
    full = train(*parse_run_config(config))

    # A preempted run pushes its step-2 checkpoint; another machine resumes from the Hub repo alone.
    pushed = {**config, "output_dir": str(tmp_path / "preempted"), "push_to_hub": True, "hub_model_id": hub_repo_id}
    train(*parse_run_config(pushed), stop_after_steps=2)
    files = set(local_hub.api.list_repo_files(hub_repo_id))
    assert any(f.startswith("checkpoints/step-000002/state/") for f in files)
    assert "model.safetensors" not in files  # no final model yet
    with local_hub.fresh_cache():
        resumed = train(
            *parse_run_config({**pushed, "output_dir": str(tmp_path / "elsewhere"), "resume_from": hub_repo_id})
        )
        assert resumed.losses == full.losses  # steps 3 and 4 recomputed after the Hub resume, exactly
        assert {"config.json", "model.safetensors", "README.md"} <= set(local_hub.api.list_repo_files(hub_repo_id))
        model = AutoModel.from_pretrained(hub_repo_id)  # the final model, by repo id
    assert model.config.in_channels == 102
    assert "final train loss" in (tmp_path / "elsewhere" / "final_model" / "README.md").read_text()


def test_mfu_is_against_the_devices_peak_or_not_reported():
    from brain_gen_hf.training.throughput import ThroughputMeter, device_peak, gpu_peak_flops, matmul_peak_flops

    meter = ThroughputMeter(n_params=10, unit="tokens", window_seconds=0.5, peak_flops=1e9)
    meter.add(units=400, windows=4, seconds=2.0)
    assert meter.mfu() == pytest.approx(200 * 6 * 10 / 1e9)  # 200 tokens/s x 6 FLOPs per parameter
    assert meter.metrics()["throughput/mfu"] == pytest.approx(1.2e-5) and meter.summary().endswith("MFU 0.00%")
    unknown = ThroughputMeter(n_params=10, unit="tokens", window_seconds=0.5, peak_flops=None)
    unknown.add(units=400, windows=4, seconds=2.0)
    assert unknown.mfu() is None and "throughput/mfu" not in unknown.metrics() and "MFU" not in unknown.summary()

    cpu = device_peak(torch.device("cpu"))  # measured: a torch.mm probe on this machine
    assert (
        cpu.flops == matmul_peak_flops(dtype=torch.float32) and cpu.flops > 0 and "measured on this CPU" in cpu.source
    )
    assert gpu_peak_flops("NVIDIA H200", torch.bfloat16, tf32=False) == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe", torch.float32, tf32=False) == 51.2e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB", torch.float32, tf32=True) == 156e12
    assert gpu_peak_flops("NVIDIA L40S", torch.float16, tf32=False) == 362e12
    assert gpu_peak_flops("NVIDIA L40", torch.bfloat16, tf32=False) is None  # not an L4, and not in the table
    assert device_peak(torch.device("meta")).flops is None


def test_trainer_prints_mfu_against_the_measured_cpu_peak(tiny_meg_dataset, tmp_path, capsys):
    train(
        *parse_run_config(
            run_config(tiny_meg_dataset, tmp_path / "run", max_steps=2, eval_split=None, checkpoint_every=0)
        )
    )
    out = capsys.readouterr().out
    assert "MFU is computed against the float32 torch.mm peak measured on this CPU" in out, out
    assert "throughput over the last steps:" in out and "tokens/s, MFU " in out, out
